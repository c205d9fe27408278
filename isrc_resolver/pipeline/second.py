"""Second catalogues: asked before Spotify (they have no daily quota), their answers cached.

A second catalogue is anything with the :class:`Catalogue` shape: a name, ``lookup(isrc)``
giving a :class:`~isrc_resolver.listing.Listing`, statistics, and an async context. The
catalogues a run can ask are in :data:`CATALOGUES`; another one (MusicBrainz, Apple,
TIDAL) is a folder beside ``deezer/`` and a line there.

:class:`SecondLookup` gives every distinct ISRC its listing: fresh ones from the cache's
details (kind ``"<name> <api>"``: the answers of a proxy or the local server are not
Deezer's), the others asked through the catalogue's own client, settled answers stored as
they come (a kill loses at most the last few hundred), the rest ``pending`` when the run
stops first.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any, Protocol

from ..changes import Answer, Change, compare
from ..deezer import DeezerClient
from ..http.stats import ClientStats
from ..http.transport import Transport
from ..listing import Listing, ListingStatus
from ..matching import Hint
from ..settings import Settings
from ..store.cache import AsyncCache
from ..store.listings import fresh_listings, known_listings
from .workers import Workers, finish

__all__ = [
    "CATALOGUES",
    "Catalogue",
    "SecondCatalogues",
    "SecondLookup",
    "hints_from",
]

log = logging.getLogger("isrc_resolver")

_STORE_EVERY = 200  # settled answers kept in memory before they are written to the cache


class Catalogue(AbstractAsyncContextManager["Catalogue"], Protocol):
    """What the pipeline needs of a second catalogue's client."""

    name: str
    stats: ClientStats

    async def lookup(self, isrc: str) -> Listing: ...

    async def aclose(self) -> None: ...


Factory = Callable[..., Catalogue]

# name -> how to build its client: (settings, transport=..., sleep=..., wall_clock=...)
CATALOGUES: dict[str, Factory] = {"deezer": DeezerClient}


def open_catalogue(
    name: str,
    settings: Settings,
    transport: Transport | None,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
) -> Catalogue:
    return CATALOGUES[name](settings, transport=transport, sleep=sleep, wall_clock=clock)


class SecondLookup:
    """One second catalogue's listing for every ISRC a run is given."""

    def __init__(
        self,
        catalogue: Catalogue,
        workers: Workers,
        cache: AsyncCache | None,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalogue = catalogue
        self.name = catalogue.name
        self.kind = settings.provider_scope(catalogue.name)
        self._workers = workers
        self._cache = cache
        self._settings = settings
        self._clock = clock
        self.cache_hits = 0
        self.failed = 0  # ISRCs of the last call whose request failed
        self.changes: list[Change] = []  # fresh answers that differ from the cached ones
        self.stale = 0  # ISRCs of the last call given their earlier answer instead

    async def cached(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """The fresh answers the cache holds for ``isrcs`` (none with ``refresh``)."""
        return {} if self._settings.refresh else await self._read(fresh_listings, isrcs)

    async def known(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """The last answers the cache holds for ``isrcs``, however old."""
        return await self._read(known_listings, isrcs)

    async def _read(
        self, listings: Callable[..., dict[str, Listing]], isrcs: Sequence[str]
    ) -> dict[str, Listing]:
        cache = self._cache
        if cache is None or not isrcs:
            return {}
        c = cache.cache
        read = functools.partial(listings, c.lookup_details, c.clock())
        return await cache.call(read, self.name, list(isrcs), self._settings)

    async def lookup(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """A listing for each of ``isrcs`` (valid, normalised, distinct)."""
        found = await self.cached(isrcs)
        self.cache_hits += len(found)
        missing = [isrc for isrc in isrcs if isrc not in found]
        before = await self.known(missing)  # what the cache held: served if asking fails
        buffer: dict[str, dict[str, Any]] = {}

        async def store() -> None:
            cache = self._cache
            if cache is not None and buffer:
                items = dict(buffer)
                buffer.clear()
                await finish(
                    cache.call(cache.cache.store_details, self.kind, items, keep_history=True)
                )

        async def ask(isrc: str) -> None:
            listing = await self.catalogue.lookup(isrc)
            found[isrc] = listing
            if listing.status.settled:
                buffer[isrc] = {**listing.to_json(), "at": listing.fetched_at or self._clock()}
                if len(buffer) >= _STORE_EVERY:
                    await store()

        try:
            await self._workers.run(missing, ask)
        finally:
            await self._workers.control.shielded(store())
        for isrc in missing:
            if isrc not in found:  # the run stopped before it was asked
                why = "not asked: the run stopped first"
                found[isrc] = Listing.missing(self.name, isrc, ListingStatus.PENDING, why)
        for isrc in missing:
            change = compare(
                isrc,
                self.name,
                Answer.of_listing(before[isrc]) if isrc in before else None,
                Answer.of_listing(found[isrc]),
            )
            if change is not None:
                self.changes.append(change)
        unanswered = [isrc for isrc in missing if not found[isrc].status.settled]
        self.failed = sum(found[isrc].status is ListingStatus.ERROR for isrc in unanswered)
        known = [isrc for isrc in unanswered if isrc in before]
        for isrc in known:  # a known answer is never lost to a failure
            found[isrc] = replace(before[isrc], stale=True, error=found[isrc].error)
        self.stale = len(known)
        return found


class SecondCatalogues:
    """The second catalogues of a run (Deezer, when ``providers`` names it), opened with
    the Resolver and asked before Spotify."""

    def __init__(self, changes: list[Change] | None = None) -> None:
        self._lookups: list[SecondLookup] = []
        self.changes = [] if changes is None else changes  # every catalogue's, in one list
        # The last call's part, per catalogue: its ISRCs by status, those from the cache,
        # its requests and its rate signals (code 4).
        self.counts: dict[str, dict[str, int]] = {}

    async def open(
        self,
        settings: Settings,
        transport: Transport | None,
        workers: Workers,
        cache: AsyncCache | None,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        for name in settings.second:
            catalogue = open_catalogue(name, settings, transport, sleep, clock)
            await catalogue.__aenter__()
            lookup = SecondLookup(catalogue, workers, cache, settings, clock)
            lookup.changes = self.changes
            self._lookups.append(lookup)

    async def aclose(self) -> None:
        lookups, self._lookups = self._lookups, []
        for lookup in lookups:
            await lookup.catalogue.aclose()

    async def lookup(self, isrcs: list[str]) -> dict[str, Listing]:
        """The second catalogue's listing of each of ``isrcs`` (none when there is none)."""
        self.counts = {}
        listings: dict[str, Listing] = {}
        for second in self._lookups:  # one today: Deezer
            stats, hits = second.catalogue.stats, second.cache_hits
            requests, throttled = stats.total_requests, stats.throttled
            listings = await second.lookup(isrcs)
            counts = {status.value: 0 for status in ListingStatus}
            counts.update(Counter(x.status.value for x in listings.values()))
            counts["cached"] = second.cache_hits - hits
            counts["requests"] = stats.total_requests - requests
            counts["throttled"] = stats.throttled - throttled
            counts["failed"], counts["stale"] = second.failed, second.stale
            self.counts[second.name] = counts
            log.info(
                "%s: %d found, %d not found, %d errors (%d from the cache, %d requests)",
                second.name, counts["found"], counts["not_found"], counts["error"],
                counts["cached"], counts["requests"],
            )  # fmt: skip
        return listings


def hints_from(listings: Mapping[str, Listing]) -> Callable[[list[str]], dict[str, Hint]]:
    """The title and first artist a second catalogue gives, as hints for Spotify's
    title/artist search (still proven by the ISRC on Spotify's track)."""

    def read(wanted: list[str]) -> dict[str, Hint]:
        out = {}
        for isrc in wanted:
            x = listings.get(isrc)
            if x is not None and x.found and x.title and x.artists:
                out[isrc] = Hint(x.title, x.artists[0], x.duration_ms)
        return out

    return read
