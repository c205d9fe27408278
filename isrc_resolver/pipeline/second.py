"""The stores beside Spotify: asked before it (they have no daily quota), answers cached.

A store's client is anything with the :class:`Catalogue` shape: a name, a batch size,
``ask(isrcs)`` giving a :class:`~isrc_resolver.listing.Listing` for each, statistics, and
an async context. Which stores there are, and how to build each one's client, the
registry says (:func:`isrc_resolver.provider.catalogues`): nothing here names one.

:class:`SecondLookup` gives every distinct ISRC one store's listing: fresh ones from the
cache's details (kind ``"<name> <api>"``: the answers of a proxy or the local server are
not the store's), the others asked through the store's own client in its batches, settled
answers stored as they come (a kill loses at most the last few hundred), the rest
``pending`` when the run stops first. :class:`SecondCatalogues` asks every store of the
run at once, each at its own pace: a slow or failing one costs the others nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any, Protocol

from ..changes import Answer, Change, compare
from ..http.budget import Budget, Cap
from ..http.stats import ClientStats
from ..http.transport import Transport
from ..listing import Listing, ListingStatus
from ..matching import Hint
from ..provider import catalogues
from ..settings import Settings
from ..store.cache import AsyncCache
from ..store.listings import fresh_listings, known_listings
from .ledger import CacheLedger
from .workers import Workers, finish

__all__ = [
    "Catalogue",
    "Listings",
    "SecondCatalogues",
    "SecondLookup",
    "hints_from",
]

# Each ISRC's answers from the stores beside Spotify, by store, in --providers order.
Listings = Mapping[str, Mapping[str, Listing]]

log = logging.getLogger("isrc_resolver")

_STORE_EVERY = 200  # settled answers kept in memory before they are written to the cache


class Catalogue(AbstractAsyncContextManager["Catalogue"], Protocol):
    """What the pipeline needs of a store's client."""

    name: str
    batch: int  # ISRCs per request
    stats: ClientStats
    budget: Budget | None

    async def ask(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """A listing for each of ``isrcs`` (at most ``batch``; found, not_found or error)."""
        ...

    async def aclose(self) -> None: ...


def open_catalogue(
    name: str,
    settings: Settings,
    transport: Transport | None,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
    budget: Budget,
) -> Catalogue:
    client: Catalogue = catalogues()[name].client_class()(
        settings, transport=transport, sleep=sleep, wall_clock=clock, budget=budget
    )
    return client


class SecondLookup:
    """One store's listing for every ISRC a run is given."""

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

        async def ask(batch: list[str]) -> None:
            answers = await self.catalogue.ask(batch)
            for isrc in batch:
                listing = answers.get(isrc)
                if listing is None:  # a client's slip: no answer is an error, not a miss
                    why = f"{self.name}: no answer for this ISRC"
                    listing = Listing.missing(self.name, isrc, ListingStatus.ERROR, why)
                found[isrc] = listing
                if listing.status.settled:
                    at = listing.fetched_at or self._clock()
                    buffer[isrc] = {**listing.to_json(), "at": at}
            if len(buffer) >= _STORE_EVERY:
                await store()

        size = max(1, self.catalogue.batch)
        batches = [list(missing[n : n + size]) for n in range(0, len(missing), size)]
        try:
            await self._workers.run(batches, ask)
        finally:
            await self._workers.control.shielded(store())
            if self.catalogue.budget is not None:  # what was reserved and not sent
                await self._workers.control.shielded(finish(self.catalogue.budget.settle()))
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
    """The stores beside Spotify a run asks (``providers``), opened with the Resolver and
    asked before Spotify, all at once."""

    def __init__(self, changes: list[Change] | None = None) -> None:
        self._lookups: list[SecondLookup] = []
        self.changes = [] if changes is None else changes  # every store's, in one list
        # The last call's part, per store: its ISRCs by status, those from the cache, its
        # requests and its rate signals.
        self.counts: dict[str, dict[str, int]] = {}

    async def open(
        self,
        settings: Settings,
        transport: Transport | None,
        workers: Workers,
        cache: AsyncCache | None,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
        cap: Cap,
    ) -> None:
        """Open each store's client, counting its requests under ``cap`` (the run's
        ``max_requests``, Spotify's too) and in the cache's ledger under the store's own
        account (no daily quota: the stores have none)."""
        for name in settings.second:
            account = settings.store_account(name)
            ledger = None if cache is None else CacheLedger(cache, account)
            budget = Budget(cap=cap, ledger=ledger, clock=clock)
            catalogue = open_catalogue(name, settings, transport, sleep, clock, budget)
            try:
                await catalogue.__aenter__()  # may refuse its credentials (exit 2)
            except BaseException:
                await catalogue.aclose()
                raise
            lookup = SecondLookup(catalogue, workers, cache, settings, clock)
            lookup.changes = self.changes
            self._lookups.append(lookup)

    async def aclose(self) -> None:
        lookups, self._lookups = self._lookups, []
        for lookup in lookups:
            await lookup.catalogue.aclose()

    async def lookup(self, isrcs: list[str]) -> dict[str, dict[str, Listing]]:
        """Each of ``isrcs``' listings, by store (none when the run asks no other store)."""
        self.counts = {}
        if not self._lookups:
            return {}
        answers = await asyncio.gather(*(self._one(second, isrcs) for second in self._lookups))
        out: dict[str, dict[str, Listing]] = {isrc: {} for isrc in isrcs}
        for second, listings in zip(self._lookups, answers, strict=True):
            for isrc, listing in listings.items():
                out[isrc][second.name] = listing
        return out

    async def _one(self, second: SecondLookup, isrcs: list[str]) -> dict[str, Listing]:
        stats, hits = second.catalogue.stats, second.cache_hits
        requests, throttled = stats.api_requests, stats.throttled
        started = time.monotonic()
        listings = await second.lookup(isrcs)
        counts = {status.value: 0 for status in ListingStatus}
        counts.update(Counter(x.status.value for x in listings.values()))
        counts["cached"] = second.cache_hits - hits
        counts["requests"] = stats.api_requests - requests
        counts["throttled"] = stats.throttled - throttled
        counts["failed"], counts["stale"] = second.failed, second.stale
        counts["ms"] = round((time.monotonic() - started) * 1000)  # this store's part
        self.counts[second.name] = counts
        log.info(
            "%s: %d found, %d not found, %d errors (%d from the cache, %d requests)",
            second.name, counts["found"], counts["not_found"], counts["error"],
            counts["cached"], counts["requests"],
        )  # fmt: skip
        return listings


def hints_from(listings: Listings) -> Callable[[list[str]], dict[str, Hint]]:
    """The title and first artist the first store that has an ISRC gives, as hints for
    Spotify's title/artist search (still proven by the ISRC on Spotify's track)."""

    def read(wanted: list[str]) -> dict[str, Hint]:
        out = {}
        for isrc in wanted:
            for x in listings.get(isrc, {}).values():
                if x.found and x.title and x.artists:
                    out[isrc] = Hint(x.title, x.artists[0], x.duration_ms)
                    break
        return out

    return read
