"""A second catalogue's answers in the cache: kept in ``details`` under the kind
``"<name> <api scope>"``, each with the time it was fetched (``at``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..listing import Listing
from ..provider import catalogues
from ..settings import Settings

# The cache's ``lookup_details``: (kind, ids, max_age=...) -> {id: data}
Lookup = Callable[..., dict[str, dict[str, Any]]]

__all__ = ["fresh_listings", "known_listings", "stores_left"]

_SLICE = 50_000  # ISRCs looked up at a time


def fresh_listings(
    lookup: Lookup, now: float, name: str, isrcs: Sequence[str], settings: Settings
) -> dict[str, Listing]:
    """Catalogue ``name``'s answers (``lookup``: a cache's ``lookup_details``) for
    ``isrcs`` that are within their age at ``now`` (``max_age`` for a track,
    ``not_found_max_age`` for a miss)."""
    s = settings
    return _listings(lookup, now, name, isrcs, settings, s.max_age, s.not_found_max_age)


def known_listings(
    lookup: Lookup, now: float, name: str, isrcs: Sequence[str], settings: Settings
) -> dict[str, Listing]:
    """Catalogue ``name``'s last answers for ``isrcs``, however old: what is served when
    asking again failed (a known answer is never lost to a failure)."""
    return _listings(lookup, now, name, isrcs, settings, math.inf, math.inf)


def _listings(
    lookup: Lookup,
    now: float,
    name: str,
    isrcs: Sequence[str],
    settings: Settings,
    found_age: float,
    missing_age: float,
) -> dict[str, Listing]:
    rows = lookup(settings.provider_scope(name), isrcs, max_age=max(found_age, missing_age))
    out = {}
    for isrc, data in rows.items():
        at = data.get("at")
        age = found_age if data.get("found") else missing_age
        if isinstance(at, int | float) and now - at <= age:
            out[isrc] = Listing.from_json(name, isrc, data, at)
    return out


class _Cache(Protocol):
    def lookup_details(self, kind: str, ids: Sequence[str], *, max_age: float) -> Any: ...

    def clock(self) -> float: ...


def stores_left(
    unique: Sequence[str], cache: _Cache | None, settings: Settings
) -> dict[str, dict[str, int]]:
    """Per store beside Spotify a run asks: its fresh answers in ``cache`` for ``unique``
    (distinct ISRCs), the ISRCs left to ask and the requests that takes, in its batches."""
    out = {}
    for name in settings.second:
        fresh = 0
        for start in range(0, len(unique) if cache is not None else 0, _SLICE):
            part = unique[start : start + _SLICE]
            fresh += len(fresh_listings(cache.lookup_details, cache.clock(), name, part, settings))  # type: ignore[union-attr]
        left = len(unique) - fresh
        requests = -(-left // catalogues()[name].batch)
        out[name] = {"fresh": fresh, "isrcs": left, "requests": requests}
    return out
