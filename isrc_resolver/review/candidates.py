"""The candidates table: one row per track a search returned for each found ISRC."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..models import Candidate, MatchMethod, Status
from ..schema import Kind, Row
from .shown import Kept

__all__ = ["CANDIDATE_COLUMNS", "candidate_records"]


CANDIDATE_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("isrc", Kind.TEXT),
    ("rank", Kind.INTEGER),
    ("chosen", Kind.BOOLEAN),
    ("spotify_track_id", Kind.TEXT),
    ("track", Kind.TEXT),
    ("artists", Kind.TEXT),
    ("album", Kind.TEXT),
    ("album_type", Kind.TEXT),
    ("release_date", Kind.TEXT),
    ("duration_ms", Kind.INTEGER),
    ("market", Kind.TEXT),
    ("candidate_isrc", Kind.TEXT),
    ("reason", Kind.TEXT),
)
FROM_NETWORK = ("track", "artists", "album", "album_type", "release_date", "candidate_isrc")

_ALONE = "the chosen track only: answered before candidates were kept"
_BATCH = 2_000  # ISRCs looked up in the cache at a time


def candidate_records(
    rows: Mapping[str, Row], lookup: Callable[[list[str]], Kept]
) -> Iterator[list[dict[str, Any]]]:
    """The candidates of every found ISRC in ``rows``, in chunks of records: those kept
    in the cache (``lookup``), in Spotify's order with the chosen one marked and its
    reason; for an answer cached before candidates were kept, or a pinned one, the chosen
    track alone. ISRCs in order, so that the same answers give the same file."""
    found = sorted(isrc for isrc, row in rows.items() if row.status is Status.FOUND)
    for start in range(0, len(found), _BATCH):
        part = found[start : start + _BATCH]
        searched = [i for i in part if rows[i].get("match_method") != MatchMethod.OVERRIDE]
        kept = lookup(searched) if searched else {}
        chunk: list[dict[str, Any]] = []
        for isrc in part:
            chunk += _of(isrc, rows[isrc], kept.get(isrc))
        yield chunk


def _of(
    isrc: str, row: Row, kept: tuple[tuple[Candidate, ...], str | None] | None
) -> list[dict[str, Any]]:
    chosen_id, market = row.get("spotify_track_id"), row.get("market")
    if kept is not None and any(c.id == chosen_id for c in kept[0]):
        candidates, reason = kept
        return [
            {
                **_record(isrc, c, market),
                "rank": n,
                "chosen": c.id == chosen_id,
                "reason": reason if c.id == chosen_id else None,
            }
            for n, c in enumerate(candidates, start=1)
        ]
    pinned = row.get("match_method") == MatchMethod.OVERRIDE
    return [
        {
            "isrc": isrc,
            "rank": 1,
            "chosen": True,
            "spotify_track_id": chosen_id,
            "track": row.get("track"),
            "artists": row.get("artists"),
            "album": row.get("album"),
            "album_type": row.get("album_type"),
            "release_date": row.get("release_date"),
            "duration_ms": row.get("duration_ms"),
            "market": market,
            "candidate_isrc": None,
            "reason": "pinned by the overrides file" if pinned else _ALONE,
        }
    ]


def _record(isrc: str, c: Candidate, market: str | None) -> dict[str, Any]:
    return {
        "isrc": isrc,
        "spotify_track_id": c.id,
        "track": c.name,
        "artists": "; ".join(c.artists),
        "album": c.album,
        "album_type": c.album_type,
        "release_date": c.release_date,
        "duration_ms": c.duration_ms,
        "market": market,
        "candidate_isrc": c.isrc,
    }
