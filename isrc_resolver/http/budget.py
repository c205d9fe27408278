"""What a run may still send: its own cap (``max_requests``) and the account's daily quota.

Spotify counts a Development Mode app's requests over a rolling 24 hours, per developer
account; past the quota every request gets a 429 with a Retry-After of about 14 hours, and
retrying into it makes the wait longer. So ``daily_quota`` is a ceiling, and the ledger
(the cache's) is how every run of the account, in any process, keeps to it:

* a request is *reserved* in the ledger, and the reservation committed, before it is
  sent; reservations come in small blocks, so most requests cost no write of their own;
* a reservation is granted only while the account's last 24 hours leave room, checked and
  written in one transaction, so processes sharing the ledger cannot overspend together;
* what a run reserved and did not send is given back when it ends. A run that is killed
  cannot give back: the ledger then counts a few requests too many, never too few.

This module knows nothing of where the ledger lives: it gets a :class:`Ledger`.
:meth:`Budget.take_or_wait` is called by the client right before each API request, and
nothing is awaited between its return and the send. Token requests are not counted:
Spotify's quota counts API calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ..errors import BudgetSpent

__all__ = ["Budget", "Cap", "Grant", "Ledger"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Grant:
    """A ledger's answer to a reservation: how many requests it granted (and counted),
    where (the ledger's second, to give back to), the account's total in the window
    after it, and when the oldest counted request leaves the window."""

    granted: int
    second: int | None
    total: int
    frees_at: float | None


class Ledger(Protocol):
    """The account's requests over a rolling 24 hours, kept where every run can see them."""

    async def reserve(self, wanted: int, quota: int | None) -> Grant:
        """Count up to ``wanted`` requests now, as many as ``quota`` leaves room for."""
        ...

    async def give_back(self, count: int, second: int) -> None:
        """Uncount ``count`` requests reserved at ``second`` and never sent."""
        ...


class Cap:
    """The run's ``max_requests``, shared by the budgets of every store it asks."""

    def __init__(self, most: int | None = None) -> None:
        self.most = most
        self.spent = 0

    @property
    def left(self) -> int | None:
        return None if self.most is None else self.most - self.spent


class Budget:
    """Requests a run may send to one account; raises :class:`BudgetSpent` on the first
    one too many.

    Without a ledger (no cache), only the cap is kept: a daily quota needs one. ``cap``:
    the run's ``max_requests`` when several budgets share it (else one of its own).
    """

    def __init__(
        self,
        *,
        max_requests: int | None = None,
        daily_quota: int | None = None,
        ledger: Ledger | None = None,
        block: int = 8,
        clock: Callable[[], float] = time.time,
        cap: Cap | None = None,
    ) -> None:
        if daily_quota is not None and ledger is None:
            raise ValueError("a daily quota needs a ledger")
        self.cap = cap if cap is not None else Cap(max_requests)
        self.daily_quota = daily_quota
        self.spent = 0  # API requests this run
        self._ledger = ledger
        self._block = max(block, 1)  # requests reserved at a time
        self._held = 0  # reserved in the ledger, not sent yet
        self._held_at: int | None = None  # the ledger second they were counted in
        self._frees_at: float | None = None
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def max_requests(self) -> int | None:
        return self.cap.most

    def __repr__(self) -> str:
        return (
            f"Budget(spent={self.spent}, held={self._held}, max_requests={self.max_requests}, "
            f"daily_quota={self.daily_quota})"
        )

    async def take_or_wait(self, max_wait: float, sleep: Sleep = asyncio.sleep) -> None:
        """Count one request about to be sent, reserved in the ledger first; or raise
        :class:`BudgetSpent`. When the daily quota is what is spent and the oldest request
        in the window leaves it within ``max_wait`` seconds, wait for it and look again:
        a nightly run that starts as yesterday's did finds yesterday's requests still
        counted, and they free up as they leave, at the pace they were sent."""
        left = self.cap.left
        if left is not None and left <= 0:
            raise BudgetSpent(self.cap.most or 0)
        while self._ledger is not None and self._held == 0:
            async with self._lock:  # one worker reserves for all at a time
                if self._held == 0:
                    await self._reserve(max_wait, sleep)
        left = self.cap.left
        if left is not None and left <= 0:  # another store took the last one meanwhile
            raise BudgetSpent(self.cap.most or 0)
        if self._ledger is not None:
            self._held -= 1
        self.spent += 1
        self.cap.spent += 1

    def give_back_one(self) -> None:
        """A request taken and then not sent (a stop or an interrupt while it waited for
        the rate gate or a token): it is held again, and :meth:`settle` gives it back."""
        self.spent -= 1
        self.cap.spent -= 1
        if self._ledger is not None:
            self._held += 1

    async def _reserve(self, max_wait: float, sleep: Sleep) -> None:
        assert self._ledger is not None
        wanted = self._block
        left = self.cap.left
        if left is not None:
            # Another worker may have taken the last request while this one queued for
            # the lock: nothing left to reserve is the run's budget spent.
            wanted = min(wanted, left)
            if wanted <= 0:
                raise BudgetSpent(self.cap.most or 0)
        grant = await self._ledger.reserve(wanted, self.daily_quota)
        self._frees_at = grant.frees_at
        if grant.granted > 0:
            self._held, self._held_at = grant.granted, grant.second
            return
        assert self.daily_quota is not None  # without a quota every reservation is granted
        resume = datetime.fromtimestamp(grant.frees_at, UTC) if grant.frees_at else None
        spent = BudgetSpent(self.daily_quota, daily=True, resume_at=resume)
        wait = None if grant.frees_at is None else max(grant.frees_at - self._clock(), 0.0)
        if wait is None or wait > max_wait:
            raise spent
        await sleep(wait)

    async def settle(self) -> None:
        """Give back what was reserved and not sent (at the end of a run, or of a stop)."""
        held, second = self._held, self._held_at
        self._held = 0
        if self._ledger is not None and held and second is not None:
            await self._ledger.give_back(held, second)
