"""Optional enrichment: album details and audio features for resolved tracks.

Both use Spotify's batch endpoints (``GET /albums?ids=``, 20 at a time, and
``GET /audio-features?ids=``, 100 at a time) through the same client, token, rate gate,
retries and cache as the search. Spotify has closed them to many apps, so a 403 is an
expected answer, not a failure: it is reported once and the columns stay empty.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALBUMS_PER_REQUEST",
    "ALBUM_COLUMNS",
    "AUDIO_FEATURE_COLUMNS",
    "FEATURES_PER_REQUEST",
    "AlbumDetails",
    "AudioFeatures",
    "Enrichment",
]

ALBUMS_PER_REQUEST = 20
FEATURES_PER_REQUEST = 100

ALBUM_COLUMNS: tuple[str, ...] = ("album_label", "album_upc", "album_total_tracks", "album_genres")
_FEATURES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature",
)  # fmt: skip
AUDIO_FEATURE_COLUMNS: tuple[str, ...] = _FEATURES
# Parquet/pandas types of the integer columns; the other feature columns are floats.
INTEGER_COLUMNS = frozenset({"album_total_tracks", "key", "mode", "time_signature"})
TEXT_COLUMNS = frozenset({"album_label", "album_upc", "album_genres"})


class Enrichment(enum.StrEnum):
    """What ``--with`` can add."""

    ALBUM = "album"
    AUDIO_FEATURES = "audio-features"

    @property
    def columns(self) -> tuple[str, ...]:
        return ALBUM_COLUMNS if self is Enrichment.ALBUM else AUDIO_FEATURE_COLUMNS


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

    def values(self) -> tuple[Any, ...]:
        return (self.label, self.upc, self.total_tracks, "; ".join(self.genres) or None)


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
        return cls(str(data["id"]), *(data.get(name) for name in _FEATURES))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **dict(zip(_FEATURES, self.values(), strict=True))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AudioFeatures:
        return cls.from_api(data)

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FEATURES)


def batches(ids: Sequence[str], size: int) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def empty_values(kinds: Sequence[Enrichment]) -> tuple[None, ...]:
    return tuple(None for kind in kinds for _ in kind.columns)
