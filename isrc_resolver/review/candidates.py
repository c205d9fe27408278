"""The candidates table: one row per track a search returned for each found ISRC."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..listing import Listing
from ..models import Candidate, MatchMethod, Status
from ..schema import Kind, Row
from ..settings import Settings
from ..store.cache import Cache
from ..store.listings import known_listings
from .shown import Kept

__all__ = ["CANDIDATE_COLUMNS", "Stores", "candidate_records", "stores_of"]

# The other stores' answers for some ISRCs: store -> ISRC -> listing.
Stores = Callable[[list[str]], Mapping[str, Mapping[str, Listing]]]


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
    ("store", Kind.TEXT),  # spotify, or another store asked (--providers)
    ("store_id", Kind.TEXT),  # the track's id on that store (Spotify's: spotify_track_id)
)
FROM_NETWORK = (
    "track", "artists", "album", "album_type", "release_date", "candidate_isrc", "store_id",
)  # fmt: skip

_ALONE = "the chosen track only: answered before candidates were kept"
_BATCH = 2_000  # ISRCs looked up in the cache at a time


def candidate_records(
    rows: Mapping[str, Row], lookup: Callable[[list[str]], Kept], stores: Stores | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The candidates of every found ISRC in ``rows``, in chunks of records: those kept
    in the cache (``lookup``), in Spotify's order with the chosen one marked and its
    reason; for an answer cached before candidates were kept, or a pinned one, the chosen
    track alone. Then each other store's (``stores``: their cached answers by store), the
    chosen track first. ISRCs in order, so that the same answers give the same file."""
    every = sorted(rows)
    for start in range(0, len(every), _BATCH):
        part = every[start : start + _BATCH]
        found = [i for i in part if rows[i].status is Status.FOUND]
        searched = [i for i in found if rows[i].get("match_method") != MatchMethod.OVERRIDE]
        kept = lookup(searched) if searched else {}
        told = stores(part) if stores is not None else {}
        chunk: list[dict[str, Any]] = []
        for isrc in part:
            if rows[isrc].status is Status.FOUND:
                chunk += _of(isrc, rows[isrc], kept.get(isrc))
            for name, listings in told.items():
                if (x := listings.get(isrc)) is not None and x.found:
                    chunk += _store_records(isrc, name, x)
        yield chunk


def stores_of(cache: Cache, settings: Settings) -> Stores:
    """The other stores' last answers in ``cache`` (however old), for :func:`candidate_records`."""

    def read(isrcs: list[str]) -> dict[str, dict[str, Listing]]:
        now = cache.clock()
        return {
            name: known_listings(cache.lookup_details, now, name, isrcs, settings)
            for name in settings.second
        }

    return read


def _store_records(isrc: str, store: str, chosen: Listing) -> list[dict[str, Any]]:
    why = "the store's own choice" if not chosen.others else "the earliest release, then the id"
    return [
        {
            "isrc": isrc,
            "rank": n,
            "chosen": n == 1,
            "track": x.title,
            "artists": "; ".join(x.artists),
            "album": x.album,
            "release_date": x.release_date,
            "duration_ms": x.duration_ms,
            "reason": why if n == 1 else None,
            "store": store,
            "store_id": x.id,
        }
        for n, x in enumerate((chosen, *chosen.others), start=1)
    ]


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
            "store": "spotify",
            "store_id": chosen_id,
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
        "store": "spotify",
        "store_id": c.id,
    }
