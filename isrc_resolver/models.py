"""Values: results, tracks, enrichment details and run reports, built from Spotify's JSON.

Rows and columns are :mod:`isrc_resolver.schema`'s business, not this module's.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALBUMS_PER_REQUEST",
    "FEATURES_PER_REQUEST",
    "FEATURE_NAMES",
    "Album",
    "AlbumDetails",
    "Artist",
    "AudioFeatures",
    "Candidate",
    "Enrichment",
    "InvalidAnswer",
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
    DEFERRED = "deferred"  # not attempted: the run's request budget (--max-requests) ran out
    NOT_ASKED = "not_asked"  # Spotify is not among the stores asked (--providers)

    @property
    def settled(self) -> bool:
        """A settled row needs no further request (until its cache entry ages out)."""
        return self in (Status.FOUND, Status.NOT_FOUND, Status.INVALID)


class MatchPreference(enum.StrEnum):
    """How to choose among several tracks for one ISRC (see README, "Which match")."""

    EXACT = "exact"
    ORIGINAL = "original"


class FallbackSearch(enum.StrEnum):
    """What a title/artist search may accept for an ISRC missed in every market."""

    OFF = "off"  # no title/artist search
    VERIFIED = "verified"  # only a track whose external_ids.isrc is the ISRC asked for
    FUZZY = "fuzzy"  # that, else the best title/artist match scoring at least min_score


class MatchMethod(enum.StrEnum):
    """How a found track was found."""

    ISRC = "isrc"  # q=isrc: in the first market
    ISRC_MARKET = "isrc_market"  # q=isrc: in a fallback market
    TITLE_ARTIST = "title_artist"  # q=track: artist:, proven by external_ids.isrc
    TITLE_ARTIST_FUZZY = "title_artist_fuzzy"  # q=track: artist:, by similarity only
    OVERRIDE = "override"  # pinned by the user's overrides file (GET /tracks/{id})


TITLE_ARTIST = "title_artist"  # in Result.searched: a title/artist search was made
PINNED = "pinned by the overrides file"  # a pinned result's reason, then its note


class InvalidAnswer(ValueError):
    """A field of an answer from the network has the wrong type or is out of range."""


_LARGEST = 2**53  # integers beyond this are not counts or durations Spotify could mean


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidAnswer(f"{what} is not an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidAnswer(f"{what} is not a list")
    return value


def _text(value: object, what: str, *, required: bool = False) -> str:
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise InvalidAnswer(f"{what} is {type(value).__name__}, not text")


def _whole(value: object, what: str) -> int | None:
    """A whole number: an int, or a float or digit string that is exactly one (safe to
    coerce); anything else (text, fractions, booleans, huge values) is refused."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float | str) and _integral(value):
        number = int(value)
    if number is None or not 0 <= number < _LARGEST:
        raise InvalidAnswer(f"{what} is {value!r:.40}, not a whole number in range")
    return number


def _integral(value: float | str) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return value.isascii() and value.isdigit()


def _measure(value: object, what: str) -> float | int | None:
    """A finite number (audio features: key is -1 when unknown, loudness negative)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    raise InvalidAnswer(f"{what} is {value!r:.40}, not a finite number")


def _flag(value: object, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidAnswer(f"{what} is {value!r:.40}, not true or false")


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
    def from_api(cls, item: object) -> Track:
        """Build from a Spotify TrackObject, checking every field we keep (the answer came
        from the network). Fields Spotify removed are never required. Raises
        :class:`InvalidAnswer` for a field of the wrong type or out of range."""
        track = _object(item, "track")
        album = _object(track.get("album") or {}, "album")
        return cls(
            id=_text(track.get("id"), "id", required=True),
            name=_text(track.get("name"), "name"),
            isrc=_text(_object(track.get("external_ids") or {}, "external_ids").get("isrc"), "isrc")
            or None,
            url=_text(
                _object(track.get("external_urls") or {}, "external_urls").get("spotify"), "url"
            )
            or None,
            duration_ms=_whole(track.get("duration_ms"), "duration_ms"),
            explicit=_flag(track.get("explicit"), "explicit"),
            track_number=_whole(track.get("track_number"), "track_number"),
            disc_number=_whole(track.get("disc_number"), "disc_number"),
            artists=tuple(
                Artist(id=_text(a.get("id"), "artist id"), name=_text(a.get("name"), "artist name"))
                for a in (_object(x, "artist") for x in _list(track.get("artists"), "artists"))
            ),
            album=Album(
                id=_text(album.get("id"), "album id"),
                name=_text(album.get("name"), "album name"),
                album_type=_text(album.get("album_type"), "album_type"),
                release_date=_text(album.get("release_date"), "release_date"),
                release_date_precision=_text(
                    album.get("release_date_precision"), "release_date_precision"
                ),
                total_tracks=_whole(album.get("total_tracks"), "total_tracks"),
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
class Candidate:
    """One of the tracks a search returned for an ISRC, compact: what a person needs to
    tell the versions apart (kept in the cache, written by ``--candidates``)."""

    id: str
    name: str
    artists: tuple[str, ...]
    album: str
    album_type: str
    release_date: str
    duration_ms: int | None
    isrc: str | None

    @classmethod
    def of(cls, track: Track) -> Candidate:
        return cls(
            track.id,
            track.name,
            tuple(a.name for a in track.artists),
            track.album.name,
            track.album.album_type,
            track.album.release_date,
            track.duration_ms,
            track.isrc,
        )

    def to_json(self) -> list[Any]:
        return [
            self.id,
            self.name,
            list(self.artists),
            self.album,
            self.album_type,
            self.release_date,
            self.duration_ms,
            self.isrc,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Candidate:
        id_, name, artists, album, album_type, release_date, duration_ms, isrc = data
        return cls(id_, name, tuple(artists), album, album_type, release_date, duration_ms, isrc)


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome for one ISRC.

    ``match_count`` is Spotify's ``total`` for the search (how many tracks carry this ISRC);
    ``track`` is the one chosen among them. ``error`` is a short reason for ``error`` and
    ``rate_limited`` rows. ``resolved_at`` is when Spotify gave the answer (Unix time);
    ``stale`` marks a cached answer past its age that this run could not refresh, and so
    kept as it was rather than lost. ``method``, ``market`` and ``searched`` say how it was
    found, where, and everywhere it was looked for (for a miss: all the places tried).
    ``candidates``, ``reason`` and ``conflict``: see "Checking and correcting answers" in
    the README.
    """

    isrc: str
    status: Status
    track: Track | None = None
    match_count: int | None = None
    error: str | None = None
    resolved_at: float | None = None
    stale: bool = False
    method: MatchMethod | None = None  # how the track was found
    market: str | None = None  # the market it was found in (None: the default, US)
    searched: tuple[str, ...] = ()  # where it was looked for: markets, then "title_artist"
    # Every track the search returned, in Spotify's order; why the chosen one won; whether
    # the tracks carrying the ISRC are different recordings (None: not known, an answer
    # cached before candidates were kept).
    candidates: tuple[Candidate, ...] = ()
    reason: str | None = None
    conflict: bool | None = None

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


ALBUMS_PER_REQUEST = 20
FEATURES_PER_REQUEST = 100

FEATURE_NAMES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature",
)  # fmt: skip


class Enrichment(enum.StrEnum):
    """Groups of Spotify's columns ``--with`` adds after its own (each store beside
    Spotify adds its group too, named by the store: see ``schema.output_columns``)."""

    ALBUM = "album"
    AUDIO_FEATURES = "audio-features"


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
    def from_api(cls, data: object) -> AlbumDetails:
        album = _object(data, "album")
        genres = _list(album.get("genres"), "genres")
        return cls(
            id=_text(album.get("id"), "id", required=True),
            label=_text(album.get("label"), "label") or None,
            upc=_text(_object(album.get("external_ids") or {}, "external_ids").get("upc"), "upc")
            or None,
            total_tracks=_whole(album.get("total_tracks"), "total_tracks"),
            genres=tuple(_text(g, "genre") for g in genres),
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
    def from_api(cls, data: object) -> AudioFeatures:
        features = _object(data, "audio features")
        values = [_measure(features.get(name), name) for name in FEATURE_NAMES]
        return cls(_text(features.get("id"), "id", required=True), *values)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **dict(zip(FEATURE_NAMES, self.values(), strict=True))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AudioFeatures:
        return cls.from_api(data)

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in FEATURE_NAMES)
