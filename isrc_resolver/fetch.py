"""The fetch stage: workers that ask Spotify, a search strategy per ISRC, answers to the cache.

* :class:`RunControl` is the state every worker of a run shares: a rate-limit stop, an
  interrupt, and the event that halts sending.
* :class:`Workers` runs a coroutine over items with ``concurrency`` workers until all are
  done, a stop or an interrupt (enrichment uses it too).
* A :class:`SearchStrategy` turns one ISRC into a :class:`Result`. :class:`IsrcSearch`
  (``q=isrc:...`` in one market, then :func:`choose_match`) is the one there is; more
  strategies (other markets, title and artist) implement the same protocol.
* :class:`Fetcher` puts them together for the pipeline: every ISRC asked gets exactly one
  result, and settled answers are stored as they come.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from .cache import AsyncCache
from .client import SpotifyClient
from .errors import BudgetSpent, RateLimitStop, RequestError, format_time
from .isrc import normalize_isrc
from .models import InvalidAnswer, MatchPreference, Result, Status, Track
from .settings import Settings

__all__ = [
    "Fetcher",
    "IsrcSearch",
    "RunControl",
    "SearchStrategy",
    "Workers",
    "choose_match",
    "finish",
]

log = logging.getLogger("isrc_resolver")

T = TypeVar("T")

_FLUSH_EVERY = 200  # results per cache commit ...
_FLUSH_SECONDS = 1.0  # ... or this often, whichever comes first
_INTERRUPT_GRACE = 3.0  # seconds in-flight requests get to finish after Ctrl-C


class RunControl:
    """What all workers of one Resolver share: whether to stop sending, and why."""

    def __init__(self) -> None:
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
        await finish(cache.call(cache.cache.set_cooldown, until))

    async def load_cooldown(self, cache: AsyncCache | None, now: float) -> None:
        """Stop before sending anything if an earlier run's quota stop is not over."""
        if self.stopped is not None or cache is None:
            return
        until = await cache.call(cache.cache.cooldown_until)
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
        self._cache = cache

    async def run(self, items: Sequence[T], work: Callable[[T], Awaitable[None]]) -> None:
        """Run ``work`` over ``items`` until all are done, a rate-limit stop or an
        interrupt. Items not reached are simply not worked on."""
        control = self.control
        if control.halted or not items:
            return
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                if control.halt.is_set():
                    return
                try:
                    await work(item)
                except RateLimitStop as stop:
                    control.stop(stop)
                    return
                except BudgetSpent as spent:
                    control.spend_out(spent)
                    return

        tasks = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(items)))]
        try:
            await self._wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await control.save_cooldown(self._cache)

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


# -- search strategies -----------------------------------------------------------------


class SearchStrategy(Protocol):
    """How one ISRC is looked up. Errors become ``error`` results; a
    :class:`RateLimitStop` propagates (it ends the run)."""

    async def search(self, isrc: str) -> Result: ...


class IsrcSearch:
    """``GET /search?q=isrc:ISRC&type=track`` in one market, then :func:`choose_match`."""

    def __init__(self, client: SpotifyClient, settings: Settings) -> None:
        self._client = client
        self._market = settings.market
        self._limit = settings.limit
        self._prefer = settings.prefer

    async def search(self, isrc: str) -> Result:
        try:
            page = await self._client.search_isrc(isrc, market=self._market, limit=self._limit)
            items = page.get("items") or []
            if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
                raise InvalidAnswer("items is not a list of tracks")
            total = page.get("total")
            count = total if isinstance(total, int) and not isinstance(total, bool) else len(items)
            if not items:
                return Result(isrc, Status.NOT_FOUND, match_count=max(count, 0))
            track = Track.from_api(choose_match(items, isrc, self._prefer))
            return Result(isrc, Status.FOUND, track=track, match_count=max(count, 1))
        except RequestError as exc:
            log.warning("%s: %s", isrc, exc)
            return Result(isrc, Status.ERROR, error=str(exc))
        except InvalidAnswer as exc:
            # Never cached (only found and not_found are), so a later run asks again.
            log.warning("%s: Spotify's answer was refused: %s", isrc, exc)
            return Result(isrc, Status.ERROR, error=f"invalid answer from Spotify: {exc}")


def choose_match(
    items: Sequence[Mapping[str, Any]], isrc: str, prefer: MatchPreference = MatchPreference.EXACT
) -> Mapping[str, Any]:
    """Pick one of Spotify's tracks for ``isrc``, deterministically.

    ``exact``: the first item whose ``external_ids.isrc`` is the ISRC asked for, else the
    first item (Spotify's own order). ``original``: among the exact matches (or all items
    when none is exact), albums and singles before compilations, then the earliest release
    date, then Spotify's order.
    """
    if not items:
        raise ValueError("no items to choose from")
    exact = [it for it in items if _item_isrc(it) == isrc]
    if prefer is MatchPreference.EXACT:
        return exact[0] if exact else items[0]
    candidates = exact or list(items)
    ranked = sorted(
        enumerate(candidates),
        key=lambda pair: (
            (pair[1].get("album") or {}).get("album_type") == "compilation",
            _date_key((pair[1].get("album") or {}).get("release_date")),
            pair[0],
        ),
    )
    return ranked[0][1]


def _item_isrc(item: Mapping[str, Any]) -> str | None:
    value = (item.get("external_ids") or {}).get("isrc")
    return normalize_isrc(value) if isinstance(value, str) else None


def _date_key(value: object) -> str:
    # "2024", "2024-03" and "2024-03-19" compare correctly once padded; unknown sorts last.
    return str(value)[:10].ljust(10, "~") if value else "~"


# -- the stage -------------------------------------------------------------------------


class Fetcher:
    """Ask ``strategy`` for each ISRC; emit one result each; store settled ones."""

    def __init__(
        self,
        workers: Workers,
        strategy: SearchStrategy,
        cache: AsyncCache | None,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._workers = workers
        self._strategy = strategy
        self._cache = cache
        self._variant = settings.variant
        self._clock = clock

    async def fetch(
        self,
        isrcs: Sequence[str],
        emit: Callable[[Result], None],
        known: Mapping[str, Result] | None = None,
    ) -> None:
        """One result for each of ``isrcs``. Where this run gets no answer (an error, a
        stop, an interrupt) and ``known`` holds an earlier one, that one is emitted, marked
        stale: a known answer never becomes an empty row."""
        known = known or {}
        done: set[str] = set()
        store = _Store(self._cache, self._variant)

        def settle(isrc: str, result: Result) -> None:
            earlier = known.get(isrc)
            emit(replace(earlier, stale=True) if earlier is not None else result)

        async def one(isrc: str) -> None:
            result = await self._strategy.search(isrc)
            done.add(isrc)
            if result.status.settled:
                result = replace(result, resolved_at=self._clock())
                emit(result)
                await store.add(result)
            else:
                settle(isrc, result)

        try:
            await self._workers.run(isrcs, one)
        finally:
            await finish(store.flush())
        control = self._workers.control
        for isrc in isrcs:
            if isrc not in done:
                settle(isrc, control.unfinished(isrc))


class _Store:
    """Settled results on their way to the cache, committed in small batches."""

    def __init__(self, cache: AsyncCache | None, variant: str) -> None:
        self._cache = cache
        self._variant = variant
        self._buffer: list[Result] = []
        self._last = time.monotonic()

    async def add(self, result: Result) -> None:
        if self._cache is None or not result.status.settled:
            return
        self._buffer.append(result)
        if len(self._buffer) >= _FLUSH_EVERY or time.monotonic() - self._last > _FLUSH_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        self._last = time.monotonic()
        if self._cache is None or not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        await self._cache.call(self._cache.cache.store, batch, self._variant)


async def finish(work: Awaitable[None]) -> None:
    """Run ``work`` to the end even if we are cancelled meanwhile (then re-raise).

    Results already paid for in requests must reach the cache however the run ends.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
