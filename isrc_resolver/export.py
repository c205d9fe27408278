"""The cache's answers as one table other engines join (``isrc-resolve cache export``):
one row per ISRC for a run's scope, streamed."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .models import MatchMethod, Result, Status
from .overrides import Override
from .paths import Place, cache_places, check_places
from .pipeline.pinned import pinned_result
from .schema import RESULT_COLUMNS, Kind, enrichment_columns, row_of
from .settings import Settings
from .store.cache import Cache
from .store.details import PINNED_TRACK

__all__ = ["EXPORT_COLUMNS", "export_cache"]

_NOT_EXPORTED = ("match_check", "match_score", "error")  # the input's, or a run's own
EXPORT_COLUMNS = tuple(
    ("isrc" if c.name == "isrc_normalized" else c.name, c.kind)
    for c in RESULT_COLUMNS
    if c.name not in _NOT_EXPORTED
)


def export_cache(
    cache: Cache,
    settings: Settings,
    target: str | os.PathLike[str],
    overrides: Mapping[str, Override] | None = None,
) -> int:
    """Every answer of the scope ``settings`` gives (one row per ISRC,
    found and not found, with ``resolved_at``) to ``target``, Parquet or CSV by its
    suffix, streamed: memory does not grow with the cache. With the other stores a
    run with ``settings`` asks, their last answers beside each (their columns, as a run
    writes them). ``overrides``: pinned ISRCs get the pinned answer, as a run gives them
    (a pinned track whose details no run has fetched yet is ``pending``, saying so).
    Returns the rows written."""
    from . import tables
    from .store.listings import known_listings

    tables.check_file(target, "cache export PATH")
    tables.frame_format(target, "cache export PATH")
    check_places([Place("cache export PATH", target, writes=True), *cache_places(cache.location)])
    kinds = seconds = settings.second
    columns = EXPORT_COLUMNS + tuple((c.name, c.kind) for c in enrichment_columns(kinds))
    escape = [
        c.name
        for c in (*RESULT_COLUMNS, *enrichment_columns(kinds))
        if c.from_network and c.kind is Kind.TEXT and c.name not in _NOT_EXPORTED
    ]
    names = [name for name, _ in columns]

    def records() -> Iterator[list[dict[str, Any]]]:
        for batch in _answers(cache, settings):
            isrcs, now = [r.isrc for r in batch], cache.clock()
            by_store = {
                name: known_listings(cache.lookup_details, now, name, isrcs, settings)
                for name in seconds
            }
            chunk = []
            for result in _pinned(cache, batch, overrides or {}):
                listings = {
                    n: by_store[n][result.isrc] for n in seconds if result.isrc in by_store[n]
                }
                row = row_of(result, listings, kinds)
                values = dict(zip(output_names_of(kinds), row.values, strict=True))
                values["isrc"] = values.pop("isrc_normalized")
                chunk.append({n: values[n] for n in names})
            yield chunk

    return tables.write_frames(target, records(), columns, "cache export PATH", escape=escape)


def _answers(cache: Cache, settings: Settings) -> Iterator[list[Result]]:
    """Spotify's answers of the scope, a page at a time; a run that asks the other stores
    alone: every ISRC they have answered, Spotify ``not_asked``."""
    if "spotify" in settings.providers:
        yield from cache.results.scan(settings.variant)
        return
    kinds = [settings.provider_scope(name) for name in settings.second]
    why = "Spotify is not in providers"
    for isrcs in cache.details.ids(kinds):
        yield [Result(isrc, Status.NOT_ASKED, error=why) for isrc in isrcs]


def output_names_of(kinds: Sequence[str]) -> list[str]:
    """The names of a row's values (see :func:`~isrc_resolver.schema.row_of`)."""
    return [c.name for c in (*RESULT_COLUMNS, *enrichment_columns(kinds))]


def _pinned(cache: Cache, batch: list[Result], overrides: Mapping[str, Override]) -> list[Result]:
    """``batch`` with each pinned ISRC's answer the pin's (see ``pipeline.pinned``)."""
    pins = [overrides[r.isrc] for r in batch if r.isrc in overrides]
    if not pins:
        return batch
    ids = [p.track_id for p in pins if p.track_id is not None]
    known = cache.lookup_details(PINNED_TRACK, ids, max_age=math.inf) if ids else {}
    now, out = cache.clock(), []
    for result in batch:
        pin = overrides.get(result.isrc)
        if pin is None:
            out.append(result)
            continue
        given = known.get(pin.track_id) if pin.track_id is not None else None
        pinned = pinned_result(pin, given, now)
        if pinned is None:
            why = f"pinned to {pin.track_id}, whose details no run has fetched yet: run once"
            pinned = Result(pin.isrc, Status.PENDING, method=MatchMethod.OVERRIDE, error=why)
        out.append(pinned)
    return out
