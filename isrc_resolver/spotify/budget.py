"""What a run may still send: its own cap (``max_requests``) and the account's daily quota.

Spotify counts a Development Mode app's requests over a rolling 24 hours, per developer
account; past the quota every request gets a 429 with a Retry-After of about 14 hours, and
retrying into it makes the wait longer. So a run with ``daily_quota`` stops *before* the
request that would exceed it. What the account has spent comes from a ledger (the cache's,
which every run of the account adds to as it sends); the budget sees it only as a function
that reads the window, so this module knows nothing of where the ledger is kept.

:meth:`Budget.take` is called by the client right before each API request, with no await
in between, so requests in flight never overrun the budget. Token requests are not
counted: Spotify's quota counts API calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ..errors import BudgetSpent

__all__ = ["Budget", "ReadWindow", "Window"]

WINDOW = 86_400.0
Window = tuple[int, float | None]  # requests in the last 24 hours, when the oldest leaves
ReadWindow = Callable[[], Awaitable[Window]]  # the ledger's window for the account, now


class Budget:
    """Requests a run may send; raises :class:`BudgetSpent` on the first one too many."""

    def __init__(
        self,
        *,
        max_requests: int | None = None,
        daily_quota: int | None = None,
        used: int = 0,
        frees_at: float | None = None,
        reread: ReadWindow | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_requests = max_requests
        self.daily_quota = daily_quota
        self.spent = 0  # API requests this run
        self._others = used  # the account's requests in the window, not this run's
        self._recorded = 0  # of ``spent``, how many the ledger holds
        self._frees_at = frees_at  # when the oldest counted request leaves the window
        self._reread = reread  # the ledger's window now (None: no ledger)
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    async def for_run(
        cls,
        max_requests: int | None,
        daily_quota: int | None,
        read: ReadWindow | None,
        clock: Callable[[], float],
    ) -> Budget:
        """A run's budget: ``max_requests``, and what ``daily_quota`` leaves of the
        account's last 24 hours according to ``read`` (None: no ledger)."""
        if read is None or daily_quota is None:
            return cls(max_requests=max_requests, daily_quota=daily_quota)
        used, frees_at = await read()
        return cls(
            max_requests=max_requests,
            daily_quota=daily_quota,
            used=used,
            frees_at=frees_at,
            reread=read,
            clock=clock,
        )

    def __repr__(self) -> str:
        return (
            f"Budget(spent={self.spent}, max_requests={self.max_requests}, "
            f"daily_quota={self.daily_quota}, used_by_others={self._others})"
        )

    def take(self) -> None:
        """Count one request about to be sent, or raise if there is no room for it."""
        if self.max_requests is not None and self.spent >= self.max_requests:
            raise BudgetSpent(self.max_requests)
        if self.daily_quota is not None and self._others + self.spent >= self.daily_quota:
            resume = datetime.fromtimestamp(self._frees_at, UTC) if self._frees_at else None
            raise BudgetSpent(self.daily_quota, daily=True, resume_at=resume)
        self.spent += 1

    async def take_or_wait(
        self, max_wait: float, sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """:meth:`take`; but when the daily quota is what is spent and the ledger's oldest
        counted second leaves the window within ``max_wait`` seconds, wait for it and look
        again. A nightly run that starts as yesterday's did finds yesterday's requests
        still counted; they free up as they leave the window, at the pace they were sent."""
        while True:
            try:
                self.take()
                return
            except BudgetSpent as spent:
                error = spent
            async with self._lock:  # one worker waits and reads the ledger at a time
                if error.daily and self._others + self.spent < error.limit:
                    continue  # another worker found room meanwhile
                wait = self._wait(error)
                if wait is None or wait > max_wait:
                    raise error
                if wait > 0:
                    await sleep(wait)
                assert self._reread is not None  # _wait said the ledger can be read
                used, self._frees_at = await self._reread()
                self._others = max(used - self._recorded, 0)

    def _wait(self, spent: BudgetSpent) -> float | None:
        """Seconds until the quota has room again, if the ledger can say (else None)."""
        if not spent.daily or self._reread is None or self._frees_at is None:
            return None
        return max(self._frees_at - self._clock(), 0.0)

    def drain(self) -> int:
        """Requests sent since the last call: what the ledger should add now."""
        new = self.spent - self._recorded
        self._recorded = self.spent
        return new

    def observe(self, window_total: int, frees_at: float | None) -> None:
        """The ledger's count for the account after our last :meth:`drain` was added:
        other runs of the account (another process, another app with the same
        ``account``) spend the same allowance, and old requests leave the window."""
        self._others = max(window_total - self._recorded, 0)
        self._frees_at = frees_at
