"""The fetch stage: a search per ISRC by the workers, in rounds, answers to the cache.

:class:`Fetcher` runs the search strategies (:mod:`.search`) in three rounds: the first
search of every ISRC, then the fallback markets of the misses, then a title/artist search
for those still missed. Every ISRC asked gets exactly one result, and answers are stored
as they come. The strategies arrive as objects with the methods of :class:`MarketSearch`
and :class:`TitleSearch`; this module does not import them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from ..changes import Answer, Change, compare
from ..errors import EnvironmentFailure
from ..http.budget import Budget
from ..matching import Hint, Hints
from ..models import TITLE_ARTIST, MatchMethod, Result, Status
from ..settings import Settings
from ..store.cache import AsyncCache
from ..store.leases import lease_owner
from .workers import Workers, finish

__all__ = ["Fetcher", "MarketSearch", "TitleSearch"]

log = logging.getLogger("isrc_resolver")

LEASE_SECONDS = 300.0  # how long another process waits for an ISRC this one leased
_CLAIM_AT_LEAST = 64  # ISRCs leased at a time (or 4 per worker)
_POLL_SECONDS = 0.5  # how often to look for another process's answers


class MarketSearch(Protocol):
    """An ISRC search in one market and then in its fallback markets."""

    async def search(self, isrc: str, duration_ms: int | None = None) -> Result: ...

    async def fallback(
        self,
        miss: Result,
        duration_ms: int | None = None,
        progress: Callable[[Result], Awaitable[None]] | None = None,
    ) -> Result: ...

    def needs_fallback(self, result: Result) -> bool: ...


class TitleSearch(Protocol):
    """A title/artist search for an ISRC missed in every market."""

    async def search(self, miss: Result, hint: Hint) -> Result: ...


class Fetcher:
    """Ask ``strategy`` for each ISRC; emit one result each; store settled ones.

    Each ISRC is asked once however many callers want it: an ISRC already in flight in
    this process is waited for, not asked again; with a cache, each ISRC is leased in it
    before it is asked, so another process sharing the file waits for this one's answer
    instead of asking too (and takes the ISRC over if the lease expires unanswered).
    """

    def __init__(
        self,
        workers: Workers,
        strategy: MarketSearch,
        cache: AsyncCache | None,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        budget: Budget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        titles: TitleSearch | None = None,
    ) -> None:
        self.workers = workers
        self.strategy = strategy
        self.titles = titles  # the title/artist round (None: off)
        self.cache = cache
        self.variant = settings.variant
        self.account = settings.account_key
        self.clock = clock
        self.sleep = sleep
        self.budget = budget or Budget()
        self.owner = lease_owner()  # this Resolver, in the cache's leases
        # Each ISRC being asked, and the call asking it (no object per ISRC: a run over
        # 200,000 ISRCs registers them all at once).
        self.inflight: dict[str, _Run] = {}
        self.changes: list[Change] = []  # fresh answers that differ from the cached ones

    async def fetch(
        self,
        isrcs: Sequence[str],
        emit: Callable[[Result], None],
        known: Mapping[str, Result] | None = None,
        *,
        since: int | None = None,
        partial: Mapping[str, Result] | None = None,
        hints: Hints | None = None,
    ) -> None:
        """One result for each of ``isrcs``. Where this run gets no answer (an error, a
        stop, an interrupt) and ``known`` holds an earlier one, that one is emitted, marked
        stale: a known answer never becomes an empty row. ``since``: the cache's mark
        (``Cache.mark``) taken before the caller read it; the answers other processes
        commit after it are taken, not asked again.
        ``partial``: cached misses that were not searched everywhere this run would look
        (they go on from where they stopped). ``hints``: gives the input's title and artist
        of the ISRCs missed in every market, for the title/artist round."""
        if since is None:
            since = await self.cache.call(self.cache.cache.mark) if self.cache else 0
        run = _Run(self, emit, known or {}, since)
        run.partial = dict(partial or {})
        run.durations = hints.durations if hints is not None else {}
        # A title/artist round only for an input that has titles and artists.
        run.titled = self.titles is not None and hints is not None and hints.titles
        mine = [isrc for isrc in isrcs if isrc not in self.inflight]
        theirs = {isrc: self.inflight[isrc].waiter(isrc) for isrc in isrcs if isrc in self.inflight}
        self.inflight.update(dict.fromkeys(mine, run))
        try:
            await run.ask(mine)
            await run.wait_for_others()
            await run.fallbacks(hints)
        finally:
            run.finish_held()
            control = self.workers.control
            await control.shielded(run.store.flush())
            await control.shielded(self.settle_budget())
            # Still registered to this call: not settled (a stop, an interrupt, an error).
            unsettled = [isrc for isrc in mine if self.inflight.get(isrc) is run]
            for isrc in unsettled:
                run.resolve_waiters(isrc, self.workers.control.unfinished(isrc))
            if not self.inflight:
                self.inflight = {}  # a dict keeps its largest size: let the table go
            if self.cache is not None:
                release = self.cache.call(self.cache.cache.release, self.owner, mine)
                await control.shielded(release)
        for isrc, future in theirs.items():
            run.settle(isrc, await asyncio.shield(future))
        for isrc in unsettled:
            run.settle(isrc, self.workers.control.unfinished(isrc))

    async def settle_budget(self) -> None:
        """Give back to the ledger what was reserved and not sent (the requests sent are
        in it already: each was counted before it left)."""
        await finish(self.budget.settle())


class _Run:
    """One :meth:`Fetcher.fetch` call: its results, its leases, its store."""

    def __init__(
        self,
        fetcher: Fetcher,
        emit: Callable[[Result], None],
        known: Mapping[str, Result],
        since: int,
    ) -> None:
        self.f = fetcher
        self._emit = emit
        self._known = known
        self._since = since
        self._others: list[str] = []  # leased by another process when we came to them
        self.store = _Store(fetcher)
        self.partial: dict[str, Result] = {}  # cached misses to go on with
        self.held: dict[str, Result] = {}  # misses waiting for the fallback rounds
        self.durations: Mapping[str, int] = {}  # the input's, to prefer the right length
        self.titled = False  # a title/artist round follows the markets
        self._wanted_by: dict[str, list[asyncio.Future[Result]]] = {}  # other calls' wants

    def settle(self, isrc: str, result: Result) -> None:
        """Emit ``result``, or the earlier known answer when ``result`` is none. A miss a
        stopped run leaves half-searched says where it was searched so far."""
        if not result.status.settled:
            earlier, part = self._known.get(isrc), self.partial.get(isrc)
            if earlier is not None:
                result = replace(earlier, stale=True)
            elif part is not None and not result.searched:
                result = replace(result, searched=part.searched)
        self._emit(result)

    async def first_search(self, isrc: str) -> None:
        """The first round for one ISRC: a miss with places left to look is held for the
        fallback rounds (and cached as it is, so a kill loses nothing paid for)."""
        f = self.f
        duration = self.durations.get(isrc)
        result = self.partial.pop(isrc, None) or await f.strategy.search(isrc, duration)
        if result.status.settled and result.resolved_at is None:
            result = replace(result, resolved_at=f.clock())
        if result.status is Status.NOT_FOUND and (f.strategy.needs_fallback(result) or self.titled):
            self.held[isrc] = result
            await self._keep_partial(result)
            return
        await self.final(isrc, result)

    async def _keep_partial(self, miss: Result) -> None:
        """Cache a miss still being looked for (a kill loses nothing paid for), unless the
        cache holds a found answer for it: a half-searched miss is no answer, and a found
        one is never lost to it (the rounds may yet fail)."""
        earlier = self._known.get(miss.isrc)
        if earlier is None or not earlier.found:
            await self.store.add(miss, final=False)

    async def fallback_markets(self, isrc: str) -> None:
        """The fallback markets for one held miss, each market's miss kept as it comes."""

        async def progress(miss: Result) -> None:
            self.held[isrc] = miss
            await self._keep_partial(replace(miss, resolved_at=self.f.clock()))

        held, duration = self.held[isrc], self.durations.get(isrc)
        result = await self.f.strategy.fallback(held, duration, progress)
        await self._after_round(isrc, result, more=self.titled)

    async def title_artist(self, isrc: str, hint: Hint) -> None:
        """The title/artist search for one ISRC missed in every market."""
        assert self.f.titles is not None
        result = await self.f.titles.search(self.held[isrc], hint)
        await self._after_round(isrc, result, more=False)

    async def _after_round(self, isrc: str, result: Result, *, more: bool) -> None:
        if result.status.settled:
            result = replace(result, resolved_at=self.f.clock())
        if result.status is Status.NOT_FOUND and more:
            self.held[isrc] = result
            await self._keep_partial(result)
            return
        # Found, missed everywhere, or failed: a failure is an error row (with where it
        # was searched); the cache keeps the miss as far as it got, and the next run
        # goes on from there.
        del self.held[isrc]
        await self.final(isrc, result)

    async def fallbacks(self, hints: Hints | None) -> None:
        """The optional rounds, after every first search: fallback markets for the held
        misses, then title/artist for those with a title and artist in the input."""
        f = self.f
        # Only the misses with markets left: a round that searches nowhere would restamp
        # a cached miss with this run's time, though Spotify was not asked.
        left = [isrc for isrc, miss in self.held.items() if f.strategy.needs_fallback(miss)]
        await f.workers.run(left, self.fallback_markets)
        if f.titles is None or hints is None or hints.read is None:
            return
        if not self.held or f.workers.control.halted:
            return
        found = await hints.read(list(self.held))
        usable = [(isrc, h) for isrc, h in found.items() if isrc in self.held and h.searchable]
        await f.workers.run(usable, lambda pair: self.title_artist(*pair))

    def finish_held(self) -> None:
        """Misses the rounds left held. When the run was stopped (the quota, a signal, a
        full disk) they are not finished: ``deferred`` (or ``rate_limited``, ``pending``,
        ``error``) with the places searched so far, and the next run goes on with them
        first. Otherwise (no title and artist to search by) they are misses."""
        control = self.f.workers.control
        for isrc, result in list(self.held.items()):
            if control.halted:
                result = replace(control.unfinished(isrc), searched=result.searched)
            else:
                result = self._unless_title_lost(result)
                self._tell(isrc, result)
                self.store.queue(result)  # the miss it is now (stored by the flush that follows)
            self.resolve_waiters(isrc, result)
            self.settle(isrc, result)
        self.held.clear()

    def waiter(self, isrc: str) -> asyncio.Future[Result]:
        """A future for the result of ``isrc``, which this call is asking (for another
        call of the same process that wants it too)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._wanted_by.setdefault(isrc, []).append(future)
        return future

    def resolve_waiters(self, isrc: str, result: Result) -> None:
        """``isrc`` is settled for this call: it is no longer in flight, and the other
        calls waiting for it get ``result`` (nothing holds it after that)."""
        if self.f.inflight.get(isrc) is self:
            del self.f.inflight[isrc]
        for future in self._wanted_by.pop(isrc, ()):
            if not future.done():
                future.set_result(result)

    def _unless_title_lost(self, result: Result) -> Result:
        """A miss of an ISRC the title/artist search found before, when that search could
        not run this time (no title or artist: not in the input, or from a second
        catalogue that failed), is no answer: the known one stays (stale), uncached over."""
        earlier = self._known.get(result.isrc)
        titled = (MatchMethod.TITLE_ARTIST, MatchMethod.TITLE_ARTIST_FUZZY)
        if result.status is not Status.NOT_FOUND or TITLE_ARTIST in result.searched:
            return result
        if earlier is None or not earlier.found or earlier.method not in titled:
            return result
        why = "the title/artist search that found it could not run this time"
        return Result(result.isrc, Status.ERROR, error=why, searched=result.searched)

    def _tell(self, isrc: str, result: Result) -> None:
        """Note how ``result`` (fresh) differs from the answer past its age it refreshes."""
        before = self._known.get(isrc)
        if before is not None:
            change = compare(isrc, "spotify", Answer.of_result(before), Answer.of_result(result))
            if change is not None:
                self.f.changes.append(change)

    async def final(self, isrc: str, result: Result) -> None:
        result = self._unless_title_lost(result)
        self._tell(isrc, result)
        self.resolve_waiters(isrc, result)
        self.settle(isrc, result)
        await self.store.add(result)

    async def ask(self, isrcs: Sequence[str]) -> None:
        """Ask ``isrcs`` (leasing them first when there is a cache)."""
        cache = self.f.cache
        if cache is None:
            await self.f.workers.run(isrcs, self.first_search)
            return
        pending = deque(isrcs)
        chunk = max(_CLAIM_AT_LEAST, 4 * self.f.workers.concurrency)

        async def refill() -> list[str]:
            while pending:
                part = [pending.popleft() for _ in range(min(chunk, len(pending)))]
                mine, theirs = await cache.call(
                    cache.cache.claim,
                    part,
                    self.f.variant,
                    self.f.owner,
                    ttl=LEASE_SECONDS,
                    answered_since=self._since,
                )
                self._others += theirs
                if mine:
                    return mine
            return []

        await self.f.workers.run([], self.first_search, refill)

    async def wait_for_others(self) -> None:
        """Take the answers another process was asked for when it gives them; ask those
        whose lease ended unanswered (its run stopped, or it was killed) ourselves."""
        cache, control = self.f.cache, self.f.workers.control
        while self._others and cache is not None and not control.halted:
            waiting, self._others = self._others, []
            answered = await cache.call(
                cache.cache.lookup,
                waiting,
                self.f.variant,
                max_age=math.inf,
                not_found_max_age=math.inf,
                stored_since=self._since,
            )
            for isrc, result in answered.items():
                self.resolve_waiters(isrc, result)
                self.settle(isrc, result)
            rest = [isrc for isrc in waiting if self.f.inflight.get(isrc) is self]
            await self.ask(rest)  # what is still leased elsewhere comes back to _others
            if self._others and not control.halted:
                await self.f.sleep(_POLL_SECONDS)


class _Store:
    """Settled results on their way to the cache, each committed as it comes.

    While one commit runs, the answers arriving meanwhile wait for the next, which takes
    them all: at a quota's pace every answer has a commit of its own, at full speed the
    commits group. A worker waits for its answer's commit before it sends another request,
    so the answers not yet in the cache never outnumber the workers: a ``kill -9`` loses at
    most one request or one answer per worker (the requests themselves were counted in the
    ledger before they were sent). The ISRCs' leases end in the same transaction.
    """

    def __init__(self, fetcher: Fetcher) -> None:
        self._f = fetcher
        self._buffer: list[Result] = []
        self._next: asyncio.Future[None] | None = None  # the commit the buffer goes into
        self._writing: asyncio.Future[None] | None = None
        self._held: set[str] = set()  # misses still being looked for: their lease stays
        self._failed: EnvironmentFailure | None = None  # the cache could not be written

    async def add(self, result: Result, *, final: bool = True) -> None:
        if self._f.cache is None:
            return
        if self._failed is not None:
            raise self._failed
        if final:
            self._held.discard(result.isrc)
        else:
            self._held.add(result.isrc)
        self._buffer.append(result)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        committed = self._next
        if self._writing is None or self._writing.done():
            self._writing = asyncio.ensure_future(self._drain())
        await asyncio.shield(committed)

    def queue(self, result: Result) -> None:
        """``result`` (final) to be stored by the next :meth:`flush`."""
        if self._f.cache is None or self._failed is not None:
            return
        self._held.discard(result.isrc)
        self._buffer.append(result)

    async def _drain(self) -> None:
        f, cache = self._f, self._f.cache
        assert cache is not None
        while self._buffer:
            batch, self._buffer = self._buffer, []
            committed, self._next = self._next, None
            try:
                await cache.call(
                    cache.cache.store,
                    batch,
                    f.variant,
                    owner=f.owner,
                    release=[r.isrc for r in batch if r.isrc not in self._held],
                )
            except EnvironmentFailure as exc:
                # The machine refused (a full disk): every worker waiting on this commit or
                # the next hears it, and nothing more is tried; flush says it once more.
                self._failed = exc
                for waiting in (committed, self._next):
                    if waiting is not None and not waiting.done():
                        waiting.set_exception(exc)
                        waiting.exception()  # its workers raise it; mark it seen
                self._buffer, self._next = [], None
                return
            except BaseException as exc:
                if committed is not None:
                    committed.set_exception(exc)
                    committed.exception()  # the workers waiting on it raise it; mark it seen
                raise
            if committed is not None:
                committed.set_result(None)

    async def flush(self) -> None:
        if self._writing is not None:
            await self._writing
        if self._failed is not None:
            raise self._failed
        if self._f.cache is not None:
            await self._drain()
