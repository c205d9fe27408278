"""The rate gate every request passes through before it is sent.

It combines three things, shared by all workers:

* a ceiling (``rate`` requests per second), enforced by an :class:`aiolimiter.AsyncLimiter`
  of capacity one, so there is no burst at start-up or after a pause;
* a shared *resume-at* time: a 429 pauses every worker until its Retry-After has passed,
  and no request leaves during the pause;
* an adaptive rate under the ceiling: each 429 halves it, and a run of successes raises it
  again a little at a time (additive increase, multiplicative decrease), so that in the
  steady state the server is rarely pushed into a 429.

Time is read only through the running loop (``loop.time()``), so tests can move a fake
clock; the sleep is injectable for the same reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiolimiter import AsyncLimiter

__all__ = ["RateGate"]


class RateGate:
    """Admit requests no faster than the current rate, and never during a pause.

    Create it inside the running loop (the limiter binds to it on first use).
    """

    def __init__(
        self,
        rate: float,
        *,
        adaptive: bool = True,
        min_rate: float = 0.5,
        increase_every: int = 20,
        increase_step: float = 0.02,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = float(rate)
        self.adaptive = adaptive
        self.min_rate = min(min_rate, self.ceiling)
        self._increase_every = increase_every
        self._increase_step = increase_step
        self._sleep = sleep
        self._rate = self.ceiling
        self._limiter = AsyncLimiter(1, 1 / self._rate)
        self._resume_at = 0.0
        self._successes = 0
        self.pauses = 0

    @property
    def rate(self) -> float:
        """The rate currently allowed, in requests per second (≤ the ceiling)."""
        return self._rate

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def paused_for(self) -> float:
        """Seconds left in the current pause (0 when not paused)."""
        return max(0.0, self._resume_at - self._now())

    async def wait(self) -> None:
        """Return when a request may be sent."""
        while True:
            remaining = self.paused_for()
            if remaining > 0:
                await self._sleep(remaining)
                continue
            await self._limiter.acquire()
            # A pause may have begun while we queued for the limiter.
            if self.paused_for() <= 0:
                return

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a 429's Retry-After) and lower the rate."""
        new_resume = self._now() + seconds
        if new_resume > self._resume_at:
            # Only the first 429 of a burst counts as a new pause; the others arrived from
            # requests already in flight and should not cut the rate again.
            if self._resume_at <= self._now():
                self.pauses += 1
                if self.adaptive:
                    self._set_rate(self._rate / 2)
            self._resume_at = new_resume
        self._successes = 0

    def record_success(self) -> None:
        """Count a request that was not throttled; probe upward gently."""
        if not self.adaptive or self._rate >= self.ceiling:
            return
        self._successes += 1
        if self._successes >= self._increase_every:
            self._successes = 0
            self._set_rate(self._rate * (1 + self._increase_step))

    def _set_rate(self, rate: float) -> None:
        rate = min(self.ceiling, max(self.min_rate, rate))
        if rate != self._rate:
            self._rate = rate
            # Workers already queued on the old limiter drain at the old rate (at most
            # --concurrency of them); everyone after them uses the new one.
            self._limiter = AsyncLimiter(1, 1 / rate)
