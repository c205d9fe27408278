"""The plan stage: normalise and de-duplicate, consult the cache, decide what to ask.

Nothing here sends a request. The outcome is the list of ISRCs the fetch stage should ask,
in the order it should ask them; cached answers that are still fresh are emitted at once.
This is where a request budget and an order of priority belong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .cache import AsyncCache
from .isrc import is_valid_isrc, normalize_isrc
from .models import Result, Status
from .settings import Settings

__all__ = [
    "Normalized",
    "cached_or_missing",
    "distinct_isrcs",
    "normalize_value",
    "normalize_values",
]

log = logging.getLogger("isrc_resolver")

_CACHE_SLICE = 5_000  # ISRCs looked up in the cache at a time


def normalize_value(value: object) -> str:
    """The normalised form of one input value; anything but text is not an ISRC."""
    return normalize_isrc(value) if isinstance(value, str) else ""


@dataclass
class Normalized:
    """Input values, normalised: one entry per value, and the distinct valid ISRCs."""

    values: list[str] = field(default_factory=list)
    unique: dict[str, None] = field(default_factory=dict)  # an ordered set

    def add(self, raw: Iterable[object], *, keep_values: bool = True) -> None:
        unique = self.unique
        for value in raw:
            isrc = normalize_value(value)
            if isrc not in unique and is_valid_isrc(isrc):
                unique[isrc] = None
            if keep_values:
                self.values.append(isrc)


def normalize_values(raw: Iterable[object]) -> Normalized:
    normalized = Normalized()
    normalized.add(raw)
    return normalized


def distinct_isrcs(chunks: Iterable[Sequence[object]]) -> tuple[int, list[str]]:
    """How many values ``chunks`` hold, and their distinct valid ISRCs in order (the
    values themselves are not kept: a file's rows are read again to be written)."""
    rows = 0
    normalized = Normalized()
    for values in chunks:
        rows += len(values)
        normalized.add(values, keep_values=False)
    return rows, list(normalized.unique)


async def cached_or_missing(
    isrcs: Sequence[str],
    cache: AsyncCache | None,
    settings: Settings,
    emit: Callable[[Result], None],
) -> tuple[list[str], int, dict[str, Result]]:
    """Emit fresh cached results; return the ISRCs still to ask, in the order to ask them,
    the cache hits, and the answers past their age (kept if they cannot be refreshed).

    The order: ISRCs never answered first, then misses past ``not_found_max_age``, then
    hits past ``max_age``, oldest first: a short allowance goes where it adds the most.
    The cache is read in slices, so a warm run over millions of ISRCs holds one slice of
    fresh results at a time, not all of them.
    """
    if cache is None or settings.refresh or not isrcs:
        return list(isrcs), 0, {}
    new: list[str] = []
    stale: dict[str, Result] = {}
    hits = 0
    for start in range(0, len(isrcs), _CACHE_SLICE):
        part = isrcs[start : start + _CACHE_SLICE]
        cached = await cache.call(
            cache.cache.lookup,
            part,
            settings.variant,
            max_age=settings.max_age,
            not_found_max_age=settings.not_found_max_age,
            stale=stale,
        )
        for result in cached.values():
            emit(result)
        hits += len(cached)
        new += (isrc for isrc in part if isrc not in cached and isrc not in stale)
    refresh = sorted(stale.values(), key=lambda r: (r.status is Status.FOUND, r.resolved_at or 0.0))
    log.info("cache: %d fresh, %d stale, %d never asked", hits, len(stale), len(new))
    return new + [r.isrc for r in refresh], hits, stale
