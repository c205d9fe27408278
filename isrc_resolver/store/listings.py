"""A second catalogue's answers in the cache: kept in ``details`` under the kind
``"<name> <api scope>"``, each with the time it was fetched (``at``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..listing import Listing
from ..settings import Settings

# The cache's ``lookup_details``: (kind, ids, max_age=...) -> {id: data}
Lookup = Callable[..., dict[str, dict[str, Any]]]

__all__ = ["fresh_listings", "known_listings"]


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
