"""Result values: frozen dataclasses, built from Spotify's JSON and flattened into rows."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OUTPUT_COLUMNS",
    "Album",
    "Artist",
    "MatchPreference",
    "Result",
    "Status",
    "Track",
]


class Status(enum.StrEnum):
    """What happened to one row."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    ERROR = "error"
    RATE_LIMITED = "rate_limited"
    PENDING = "pending"  # not attempted: the run was interrupted first

    @property
    def settled(self) -> bool:
        """A settled row needs no further request (until its cache entry ages out)."""
        return self in (Status.FOUND, Status.NOT_FOUND, Status.INVALID)


class MatchPreference(enum.StrEnum):
    """How to choose among several tracks for one ISRC (see README, "Which match")."""

    EXACT = "exact"
    ORIGINAL = "original"


@dataclass(frozen=True, slots=True)
class Artist:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Album:
    id: str
    name: str
    album_type: str
    release_date: str
    release_date_precision: str
    total_tracks: int | None


@dataclass(frozen=True, slots=True)
class Track:
    id: str
    name: str
    isrc: str | None
    url: str | None
    duration_ms: int | None
    explicit: bool | None
    track_number: int | None
    disc_number: int | None
    artists: tuple[Artist, ...]
    album: Album

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Track:
        """Build from a Spotify TrackObject. Fields Spotify removed are never required."""
        album: Mapping[str, Any] = item.get("album") or {}
        return cls(
            id=str(item["id"]),
            name=str(item.get("name") or ""),
            isrc=(item.get("external_ids") or {}).get("isrc"),
            url=(item.get("external_urls") or {}).get("spotify"),
            duration_ms=item.get("duration_ms"),
            explicit=item.get("explicit"),
            track_number=item.get("track_number"),
            disc_number=item.get("disc_number"),
            artists=tuple(
                Artist(id=str(a.get("id") or ""), name=str(a.get("name") or ""))
                for a in item.get("artists") or ()
            ),
            album=Album(
                id=str(album.get("id") or ""),
                name=str(album.get("name") or ""),
                album_type=str(album.get("album_type") or ""),
                release_date=str(album.get("release_date") or ""),
                release_date_precision=str(album.get("release_date_precision") or ""),
                total_tracks=album.get("total_tracks"),
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """A plain-dict form for the cache; :meth:`from_json` reads it back."""
        return {
            "id": self.id,
            "name": self.name,
            "isrc": self.isrc,
            "url": self.url,
            "duration_ms": self.duration_ms,
            "explicit": self.explicit,
            "track_number": self.track_number,
            "disc_number": self.disc_number,
            "artists": [[a.id, a.name] for a in self.artists],
            "album": [
                self.album.id,
                self.album.name,
                self.album.album_type,
                self.album.release_date,
                self.album.release_date_precision,
                self.album.total_tracks,
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Track:
        album = data["album"]
        return cls(
            id=data["id"],
            name=data["name"],
            isrc=data["isrc"],
            url=data["url"],
            duration_ms=data["duration_ms"],
            explicit=data["explicit"],
            track_number=data["track_number"],
            disc_number=data["disc_number"],
            artists=tuple(Artist(id=i, name=n) for i, n in data["artists"]),
            album=Album(*album),
        )


# The columns a resolved row gains, in order, after the input's own columns.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "isrc_normalized",
    "status",
    "track",
    "album",
    "artist",
    "artists",
    "spotify_track_id",
    "spotify_url",
    "album_id",
    "album_type",
    "release_date",
    "duration_ms",
    "explicit",
    "match_count",
    "error",
)


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome for one ISRC.

    ``match_count`` is Spotify's ``total`` for the search (how many tracks carry this ISRC);
    ``track`` is the one chosen among them. ``error`` is a short reason for ``error`` and
    ``rate_limited`` rows.
    """

    isrc: str
    status: Status
    track: Track | None = None
    match_count: int | None = None
    error: str | None = None

    @classmethod
    def invalid(cls, isrc: str) -> Result:
        """The result for a value that is not an ISRC (it is never sent to Spotify)."""
        return cls(
            isrc,
            Status.INVALID,
            error="not an ISRC (expected 2 letters, 3 letters or digits, 7 digits)",
        )

    @property
    def found(self) -> bool:
        return self.status is Status.FOUND

    def as_row(self) -> dict[str, Any]:
        """The output columns for this result (see :data:`OUTPUT_COLUMNS`)."""
        t = self.track
        return {
            "isrc_normalized": self.isrc,
            "status": self.status.value,
            "track": t.name if t else None,
            "album": t.album.name if t else None,
            "artist": t.artists[0].name if t and t.artists else None,
            "artists": "; ".join(a.name for a in t.artists) if t else None,
            "spotify_track_id": t.id if t else None,
            "spotify_url": t.url if t else None,
            "album_id": t.album.id if t else None,
            "album_type": t.album.album_type if t else None,
            "release_date": t.album.release_date if t else None,
            "duration_ms": t.duration_ms if t else None,
            "explicit": t.explicit if t else None,
            "match_count": self.match_count,
            "error": self.error,
        }
