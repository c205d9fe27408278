"""Values: results, tracks, enrichment details and run reports, built from Spotify's JSON.

Rows and columns are :mod:`isrc_resolver.schema`'s business, not this module's.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RateLimitStop, format_time

__all__ = [
    "ALBUMS_PER_REQUEST",
    "FEATURES_PER_REQUEST",
    "FEATURE_NAMES",
    "Album",
    "AlbumDetails",
    "Artist",
    "AudioFeatures",
    "Enrichment",
    "MatchPreference",
    "Result",
    "RunReport",
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
        """The output columns for this result, by name (see :mod:`isrc_resolver.schema`)."""
        from .schema import result_row

        return result_row(self)


ALBUMS_PER_REQUEST = 20
FEATURES_PER_REQUEST = 100

FEATURE_NAMES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature",
)  # fmt: skip


class Enrichment(enum.StrEnum):
    """What ``--with`` can add."""

    ALBUM = "album"
    AUDIO_FEATURES = "audio-features"

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the output columns this kind adds."""
        from .schema import enrichment_columns

        return tuple(c.name for c in enrichment_columns((self,)))


@dataclass(frozen=True, slots=True)
class AlbumDetails:
    """What the album endpoints add. ``label`` and ``genres`` are only served to apps in
    Extended Quota Mode; for others they are empty."""

    id: str
    label: str | None
    upc: str | None
    total_tracks: int | None
    genres: tuple[str, ...]

    @classmethod
    def from_api(cls, album: Mapping[str, Any]) -> AlbumDetails:
        return cls(
            id=str(album["id"]),
            label=album.get("label") or None,
            upc=(album.get("external_ids") or {}).get("upc"),
            total_tracks=album.get("total_tracks"),
            genres=tuple(album.get("genres") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "upc": self.upc,
            "total_tracks": self.total_tracks,
            "genres": list(self.genres),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlbumDetails:
        return cls(
            data["id"], data["label"], data["upc"], data["total_tracks"], tuple(data["genres"])
        )


@dataclass(frozen=True, slots=True)
class AudioFeatures:
    """Spotify's audio features of one track."""

    id: str
    danceability: float | None
    energy: float | None
    key: int | None
    loudness: float | None
    mode: int | None
    speechiness: float | None
    acousticness: float | None
    instrumentalness: float | None
    liveness: float | None
    valence: float | None
    tempo: float | None
    time_signature: int | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AudioFeatures:
        return cls(str(data["id"]), *(data.get(name) for name in FEATURE_NAMES))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **dict(zip(FEATURE_NAMES, self.values(), strict=True))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AudioFeatures:
        return cls.from_api(data)

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in FEATURE_NAMES)


@dataclass
class RunReport:
    """What a run did. ``statuses`` counts rows; ``unique`` counts distinct valid ISRCs."""

    rows: int = 0
    unique: int = 0
    statuses: Counter[Status] = field(default_factory=Counter)
    cache_hits: int = 0
    requests: int = 0
    throttled: int = 0
    elapsed: float = 0.0
    stop: RateLimitStop | None = None
    interrupted: str | None = None  # the signal's name, when a signal ended the run

    @property
    def exit_code(self) -> int:
        """0 all settled, 1 some errors, 3 stopped by rate limit, 130/143 interrupted."""
        if self.interrupted:
            return 143 if self.interrupted == "SIGTERM" else 130
        if self.stop is not None or self.statuses[Status.RATE_LIMITED]:
            return 3
        if self.statuses[Status.ERROR]:
            return 1
        return 0

    def summary(self) -> str:
        s = self.statuses
        line = (
            f"rows={self.rows} unique={self.unique} found={s[Status.FOUND]} "
            f"not_found={s[Status.NOT_FOUND]} invalid={s[Status.INVALID]} "
            f"errors={s[Status.ERROR]} rate_limited={s[Status.RATE_LIMITED]} "
            f"pending={s[Status.PENDING]} cached={self.cache_hits} requests={self.requests} "
            f"429s={self.throttled} elapsed={self.elapsed:.1f}s"
        )
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "unique": self.unique,
            **{status.value: self.statuses[status] for status in Status},
            "cached": self.cache_hits,
            "requests": self.requests,
            "throttled": self.throttled,
            "elapsed": round(self.elapsed, 3),
            "resume_at": format_time(self.stop.resume_at) if self.stop else None,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
        }
