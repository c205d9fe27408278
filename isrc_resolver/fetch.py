"""The fetch stage: workers that ask Spotify, a search strategy per ISRC, answers to the cache.

* :class:`RunControl` is the state every worker of a run shares: a rate-limit stop, an
  interrupt, and the event that halts sending.
* :class:`Workers` runs a coroutine over items with ``concurrency`` workers until all are
  done, a stop or an interrupt (enrichment uses it too).
* :class:`Fetcher` runs the search strategies of :mod:`isrc_resolver.search` in rounds:
  the first search of every ISRC, then the fallback markets of the misses, then a
  title/artist search for those still missed. Every ISRC asked gets exactly one result,
  and answers are stored as they come.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from .budget import Budget
from .cache import AsyncCache, lease_owner
from .errors import BudgetSpent, RateLimitStop, format_time
from .models import Result, Status
from .search import Hint, IsrcSearch, TitleArtistSearch
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Hints:
    """What the input says besides the ISRCs. ``read`` gives the title, artist and
    duration of some ISRCs, when the title/artist round needs them (only misses: a run over
    millions of rows keeps no titles); ``durations`` are read up front, and only when the
    input has a ``duration_ms`` column, to prefer the track of the right length."""

    read: Callable[[list[str]], Awaitable[Mapping[str, Hint]]] | None = None
    durations: Mapping[str, int] = field(default_factory=dict)


__all__ = [
    "Fetcher",
    "RunControl",
    "Workers",
    "finish",
]

log = logging.getLogger("isrc_resolver")

T = TypeVar("T")

LEASE_SECONDS = 300.0  # how long another process waits for an ISRC this one leased
_CLAIM_AT_LEAST = 64  # ISRCs leased at a time (or 4 per worker)
_POLL_SECONDS = 0.5  # how often to look for another process's answers
_INTERRUPT_GRACE = 3.0  # seconds in-flight requests get to finish after Ctrl-C


class RunControl:
    """What all workers of one Resolver share: whether to stop sending, and why."""

    def __init__(self, account: str = "") -> None:
        self.account = account  # whose cooldown this run keeps (Settings.account_key)
        self.halt = asyncio.Event()
        self.stopped: RateLimitStop | None = None
        self.spent: BudgetSpent | None = None  # the run's own request budget ran out
        self.interrupted: str | None = None  # the signal's name
        self.cooldown_saved = False

    @property
    def halted(self) -> bool:
        return self.stopped is not None or self.spent is not None or self.interrupted is not None

    def spend_out(self, spent: BudgetSpent) -> None:
        if self.spent is None:
            self.spent = spent
            log.warning("%s; the rest of the rows are deferred to the next run", spent)
        self.halt.set()

    def interrupt(self, reason: str) -> None:
        self.interrupted = reason
        self.halt.set()

    def stop(self, stop: RateLimitStop, *, saved: bool = False) -> None:
        if self.stopped is None:
            self.stopped = stop
            self.cooldown_saved = saved
            log.warning("%s", stop)
        self.halt.set()

    def unfinished(self, isrc: str) -> Result:
        """The result for an ISRC that was not asked because the run stopped first."""
        if self.stopped is not None:
            return Result(isrc, Status.RATE_LIMITED, error=str(self.stopped))
        if self.spent is not None:
            return Result(isrc, Status.DEFERRED, error=str(self.spent))
        return Result(isrc, Status.PENDING, error="not attempted: the run was interrupted")

    async def save_cooldown(self, cache: AsyncCache | None) -> None:
        """Store a quota stop's resume time, once, so the next run waits for it too."""
        if self.stopped is None or cache is None or self.cooldown_saved:
            return
        self.cooldown_saved = True
        until = self.stopped.resume_at.timestamp()
        await finish(cache.call(cache.cache.set_cooldown, self.account, until))

    async def load_cooldown(self, cache: AsyncCache | None, now: float) -> None:
        """Stop before sending anything if an earlier run's quota stop is not over."""
        if self.stopped is not None or cache is None:
            return
        until = await cache.call(cache.cache.cooldown_until, self.account)
        if until is None:
            return
        resume_at = datetime.fromtimestamp(until, UTC)
        log.warning(
            "cooling down after a quota stop: no requests until %s (--ignore-cooldown to override)",
            format_time(resume_at),
        )
        self.stop(RateLimitStop(until - now, quota=True, resume_at=resume_at), saved=True)


class Workers:
    """``concurrency`` workers over a list of items, sharing one :class:`RunControl`."""

    def __init__(self, control: RunControl, concurrency: int, cache: AsyncCache | None):
        self.control = control
        self.concurrency = concurrency
        self.cache = cache

    async def run(
        self,
        items: Sequence[T],
        work: Callable[[T], Awaitable[None]],
        refill: Callable[[], Awaitable[Sequence[T]]] | None = None,
    ) -> None:
        """Run ``work`` over ``items``, then over what ``refill`` gives (until it gives
        nothing), until all are done, a rate-limit stop or an interrupt. Items not
        reached are simply not worked on. ``refill`` is called by one worker at a time,
        when the items run out: the others keep working meanwhile."""
        control = self.control
        if control.halted or (not items and refill is None):
            return
        queue: deque[T] = deque(items)
        lock = asyncio.Lock()

        async def next_item() -> tuple[bool, T | None]:
            if not queue and refill is not None:
                async with lock:
                    if not queue and not control.halt.is_set():
                        queue.extend(await refill())
            return (True, queue.popleft()) if queue else (False, None)

        async def worker() -> None:
            while not control.halt.is_set():
                more, item = await next_item()
                if not more or control.halt.is_set():
                    return
                try:
                    await work(cast(T, item))
                except RateLimitStop as stop:
                    control.stop(stop)
                    return
                except BudgetSpent as spent:
                    control.spend_out(spent)
                    return

        count = self.concurrency if refill is not None else min(self.concurrency, len(items))
        tasks = [asyncio.create_task(worker()) for _ in range(count)]
        try:
            await self._wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await control.save_cooldown(self.cache)

    async def _wait(self, tasks: list[asyncio.Task[None]]) -> None:
        halted = asyncio.create_task(self.control.halt.wait())
        try:
            running: set[asyncio.Task[Any]] = set(tasks)
            while running and not halted.done():
                finished, running = await asyncio.wait(
                    running | {halted}, return_when=asyncio.FIRST_COMPLETED
                )
                running.discard(halted)
                for task in finished:
                    if task is not halted and (error := task.exception()) is not None:
                        raise error
            # A rate-limit stop leaves nothing worth waiting for (the gate is paused); an
            # interrupt or a spent budget lets requests already sent finish, briefly.
            if running and self.control.stopped is None:
                await asyncio.wait(running, timeout=_INTERRUPT_GRACE)
        finally:
            halted.cancel()
            await asyncio.gather(halted, return_exceptions=True)

    async def run_after_probe(
        self, items: Sequence[T], work: Callable[[T], Awaitable[None]]
    ) -> None:
        """:meth:`run`, but the first item goes alone: if the endpoint is closed to this
        app (403), that costs one request, not one per worker in flight."""
        await self.run(items[:1], work)
        await self.run(items[1:], work)


# -- the stage -------------------------------------------------------------------------


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
        strategy: IsrcSearch,
        cache: AsyncCache | None,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        budget: Budget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        titles: TitleArtistSearch | None = None,
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

    async def fetch(
        self,
        isrcs: Sequence[str],
        emit: Callable[[Result], None],
        known: Mapping[str, Result] | None = None,
        *,
        since: float | None = None,
        partial: Mapping[str, Result] | None = None,
        hints: Hints | None = None,
    ) -> None:
        """One result for each of ``isrcs``. Where this run gets no answer (an error, a
        stop, an interrupt) and ``known`` holds an earlier one, that one is emitted, marked
        stale: a known answer never becomes an empty row. ``since``: when the caller read
        the cache; another process's answers from after it are taken, not asked again.
        ``partial``: cached misses that were not searched everywhere this run would look
        (they go on from where they stopped). ``hints``: gives the input's title and artist
        of the ISRCs missed in every market, for the title/artist round."""
        run = _Run(self, emit, known or {}, self.clock() if since is None else since)
        run.partial = dict(partial or {})
        run.durations = hints.durations if hints is not None else {}
        mine = [isrc for isrc in isrcs if isrc not in self.inflight]
        theirs = {isrc: self.inflight[isrc].waiter(isrc) for isrc in isrcs if isrc in self.inflight}
        self.inflight.update(dict.fromkeys(mine, run))
        try:
            await run.ask(mine)
            await run.wait_for_others()
            await run.fallbacks(hints)
        finally:
            run.finish_held()
            await finish(run.store.flush())
            await self.record_spent()
            # Still registered to this call: not settled (a stop, an interrupt, an error).
            unsettled = [isrc for isrc in mine if self.inflight.get(isrc) is run]
            for isrc in unsettled:
                run.resolve_waiters(isrc, self.workers.control.unfinished(isrc))
            if not self.inflight:
                self.inflight = {}  # a dict keeps its largest size: let the table go
            if self.cache is not None:
                await finish(self.cache.call(self.cache.cache.release, self.owner, mine))
        for isrc, future in theirs.items():
            run.settle(isrc, await asyncio.shield(future))
        for isrc in unsettled:
            run.settle(isrc, self.workers.control.unfinished(isrc))

    async def record_spent(self) -> None:
        """Add requests sent since the last answer stored (enrichment, errors) to the
        ledger, so the next run of the account counts them."""
        spent = self.budget.drain()
        if self.cache is not None and spent:
            cache = self.cache
            window = await finish_value(cache.call(cache.cache.count_requests, self.account, spent))
            self.budget.observe(*window)


class _Run:
    """One :meth:`Fetcher.fetch` call: its results, its leases, its store."""

    def __init__(
        self,
        fetcher: Fetcher,
        emit: Callable[[Result], None],
        known: Mapping[str, Result],
        since: float,
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
        self._wanted_by: dict[str, list[asyncio.Future[Result]]] = {}  # other calls' wants

    def settle(self, isrc: str, result: Result) -> None:
        """Emit ``result``, or the earlier known answer when ``result`` is none."""
        earlier = self._known.get(isrc)
        if not result.status.settled and earlier is not None:
            result = replace(earlier, stale=True)
        self._emit(result)

    async def one(self, isrc: str) -> None:
        """The first round for one ISRC: a miss with places left to look is held for the
        fallback rounds (and cached as it is, so a kill loses nothing paid for)."""
        f = self.f
        duration = self.durations.get(isrc)
        result = self.partial.pop(isrc, None) or await f.strategy.search(isrc, duration)
        if result.status.settled and result.resolved_at is None:
            result = replace(result, resolved_at=f.clock())
        if result.status is Status.NOT_FOUND and (
            f.strategy.needs_fallback(result) or f.titles is not None
        ):
            self.held[isrc] = result
            await self.store.add(result, final=False)
            return
        await self.final(isrc, result)

    async def two(self, isrc: str) -> None:
        """The fallback markets for one held miss."""
        result = await self.f.strategy.fallback(self.held[isrc], self.durations.get(isrc))
        await self._after_round(isrc, result, more=self.f.titles is not None)

    async def three(self, isrc: str, hint: Hint) -> None:
        """The title/artist search for one ISRC missed in every market."""
        assert self.f.titles is not None
        result = await self.f.titles.search(self.held[isrc], hint)
        await self._after_round(isrc, result, more=False)

    async def _after_round(self, isrc: str, result: Result, *, more: bool) -> None:
        if result.status.settled:
            result = replace(result, resolved_at=self.f.clock())
        if result.status is Status.NOT_FOUND and more:
            self.held[isrc] = result
            await self.store.add(result, final=False)
            return
        del self.held[isrc]
        await self.final(isrc, result if result.status.settled else self._miss(isrc))

    def _miss(self, isrc: str) -> Result:
        return self.held.get(isrc) or Result(isrc, Status.NOT_FOUND)

    async def fallbacks(self, hints: Hints | None) -> None:
        """The optional rounds, after every first search: fallback markets for the held
        misses, then title/artist for those with a title and artist in the input."""
        f = self.f
        await f.workers.run(list(self.held), self.two)
        if f.titles is None or hints is None or hints.read is None:
            return
        if not self.held or f.workers.control.halted:
            return
        found = await hints.read(list(self.held))
        usable = [(isrc, h) for isrc, h in found.items() if isrc in self.held and h.searchable]
        await f.workers.run(usable, lambda pair: self.three(*pair))

    def finish_held(self) -> None:
        """Misses the rounds did not get to (a stop, no title/artist) are misses: emitted
        as such, with the places they were searched in."""
        for isrc, result in list(self.held.items()):
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

    async def final(self, isrc: str, result: Result) -> None:
        self.resolve_waiters(isrc, result)
        self.settle(isrc, result)
        await self.store.add(result)

    async def ask(self, isrcs: Sequence[str]) -> None:
        """Ask ``isrcs`` (leasing them first when there is a cache)."""
        cache = self.f.cache
        if cache is None:
            await self.f.workers.run(isrcs, self.one)
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

        await self.f.workers.run([], self.one, refill)

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
    most one request or one answer per worker. The requests sent go into the ledger in the
    same transaction, and the ISRCs' leases end in it.
    """

    def __init__(self, fetcher: Fetcher) -> None:
        self._f = fetcher
        self._buffer: list[Result] = []
        self._next: asyncio.Future[None] | None = None  # the commit the buffer goes into
        self._writing: asyncio.Future[None] | None = None
        self._held: set[str] = set()  # misses still being looked for: their lease stays

    async def add(self, result: Result, *, final: bool = True) -> None:
        if self._f.cache is None:
            return
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

    async def _drain(self) -> None:
        f, cache = self._f, self._f.cache
        assert cache is not None
        while self._buffer:
            batch, self._buffer = self._buffer, []
            committed, self._next = self._next, None
            try:
                window = await cache.call(
                    cache.cache.store,
                    batch,
                    f.variant,
                    owner=f.owner,
                    release=[r.isrc for r in batch if r.isrc not in self._held],
                    spent=(f.account, f.budget.drain()),
                )
            except BaseException as exc:
                if committed is not None:
                    committed.set_exception(exc)
                    committed.exception()  # the workers waiting on it raise it; mark it seen
                raise
            if committed is not None:
                committed.set_result(None)
            if window is not None:
                f.budget.observe(*window)

    async def flush(self) -> None:
        if self._writing is not None:
            await self._writing
        if self._f.cache is not None:
            await self._drain()


async def finish(work: Awaitable[None]) -> None:
    """Run ``work`` to the end even if we are cancelled meanwhile (then re-raise).

    Results already paid for in requests must reach the cache however the run ends.
    """
    await finish_value(work)


async def finish_value(work: Awaitable[T]) -> T:
    """:func:`finish` for work with a value."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
