"""Workers and what they share.

* :class:`RunControl` is the state every worker of a Resolver shares: a rate-limit stop,
  a spent budget, an interrupt, and the event that halts sending.
* :class:`Workers` runs a coroutine over items with ``concurrency`` workers until all are
  done, a stop or an interrupt (the fetch and enrich stages use them).
* :func:`finish` lets work already paid for (answers on their way to the cache) end
  however the run ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

from ..errors import BudgetSpent, EnvironmentFailure, RateLimitStop, format_time
from ..models import Result, Status

__all__ = ["Cooldowns", "RunControl", "Workers", "finish"]

log = logging.getLogger("isrc_resolver")

T = TypeVar("T")

_INTERRUPT_GRACE = 3.0  # seconds in-flight requests get to finish after Ctrl-C


class Cooldowns(Protocol):
    """Where a quota stop's resume time is kept between runs (the cache)."""

    async def cooldown_until(self, account: str) -> float | None: ...

    async def set_cooldown(self, account: str, until: float) -> None: ...

    async def clear_cooldown(self, account: str) -> None: ...


class RunControl:
    """What all workers of one Resolver share: whether to stop sending, and why."""

    def __init__(self, account: str = "") -> None:
        self.account = account  # whose cooldown this run keeps (Settings.account_key)
        self.halt = asyncio.Event()
        self.stopped: RateLimitStop | None = None
        self.spent: BudgetSpent | None = None  # the run's own request budget ran out
        self.interrupted: str | None = None  # the signal's name
        self.failed: EnvironmentFailure | None = None  # the machine refused (the cache's disk)
        self.cooldown_saved = False

    @property
    def halted(self) -> bool:
        return (
            self.stopped is not None
            or self.spent is not None
            or self.interrupted is not None
            or self.failed is not None
        )

    def fail(self, failure: EnvironmentFailure) -> None:
        """The machine refused what the run needs (the cache's disk is full, say): stop
        sending, since a request that cannot be recorded cannot be counted either; what
        was answered is still written out."""
        if self.failed is None:
            self.failed = failure
            log.error("%s; stopping: the rows not answered yet are left for the next run", failure)
        self.halt.set()

    async def shielded(self, work: Awaitable[None]) -> None:
        """:func:`finish` ``work``; a refusal of the machine stops the run instead of
        ending it (what was answered is still written out)."""
        try:
            await finish(work)
        except EnvironmentFailure as failure:
            self.fail(failure)

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
        if self.failed is not None:
            return Result(isrc, Status.ERROR, error=f"not asked: {self.failed}")
        return Result(isrc, Status.PENDING, error="not attempted: the run was interrupted")

    async def save_cooldown(self, cache: Cooldowns | None) -> None:
        """Store a quota stop's resume time, once, so the next run waits for it too."""
        if self.stopped is None or cache is None or self.cooldown_saved:
            return
        self.cooldown_saved = True
        until = self.stopped.resume_at.timestamp()
        await finish(cache.set_cooldown(self.account, until))

    async def lift_cooldown(self, cache: Cooldowns | None) -> None:
        """End the account's cooldown: a run that ignored it was answered without a quota
        stop, so it was over (otherwise only ``cache clear --cooldown`` would end it)."""
        if self.stopped is None and cache is not None:
            await self.shielded(cache.clear_cooldown(self.account))

    async def load_cooldown(self, cache: Cooldowns | None, now: float) -> None:
        """Stop before sending anything if an earlier run's quota stop is not over."""
        if self.stopped is not None or cache is None:
            return
        until = await cache.cooldown_until(self.account)
        if until is None:
            return
        resume_at = datetime.fromtimestamp(until, UTC)
        log.warning(
            "cooling down after a quota stop: no requests until %s "
            "(ignore_cooldown=True to override)",
            format_time(resume_at),
        )
        self.stop(RateLimitStop(until - now, quota=True, resume_at=resume_at), saved=True)


class Workers:
    """``concurrency`` workers over a list of items, sharing one :class:`RunControl`."""

    def __init__(self, control: RunControl, concurrency: int, cache: Cooldowns | None):
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
                try:
                    more, item = await next_item()  # a refill may write (leases)
                    if not more or control.halt.is_set():
                        return
                    await work(cast(T, item))
                except RateLimitStop as stop:
                    control.stop(stop)
                    return
                except BudgetSpent as spent:
                    control.spend_out(spent)
                    return
                except EnvironmentFailure as failure:
                    control.fail(failure)
                    return

        count = self.concurrency if refill is not None else min(self.concurrency, len(items))
        tasks = [asyncio.create_task(worker()) for _ in range(count)]
        try:
            await self._wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await control.shielded(control.save_cooldown(self.cache))

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


async def finish(work: Awaitable[T]) -> T:
    """Run ``work`` to the end even if we are cancelled meanwhile (then re-raise).

    Results already paid for in requests must reach the cache however the run ends.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
