"""The rate gate every request passes through before it is sent.

It combines three things, shared by all workers:

* a ceiling (``rate`` requests per second), enforced by an :class:`aiolimiter.AsyncLimiter`
  that starts full, so there is no burst at start-up or after a pause;
* a shared *resume-at* time: a 429 pauses every worker until its Retry-After has passed,
  and no request leaves during the pause;
* an adaptive rate under the ceiling, which learns what the server allows.

How it learns: Spotify counts requests in a rolling window and does not say its size or
limit. When a 429 ends a sending phase, the requests admitted in that phase and answered
without a 429 were all accepted, and the phase plus the Retry-After spans about one window,
so ``accepted / (phase + Retry-After)`` estimates the sustainable rate. Retry-After is a
whole number of seconds rounded up, so half a second is taken off it. The gate then runs
just under that estimate, holds it for several windows, and probes upward by 1% a window.
Each 429 costs a full pause, so the gate would rather sit 2% under the limit than find it
often.

Time is read only through the running loop (``loop.time()``), so tests can move a fake
clock; the sleep is injectable for the same reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

__all__ = ["RateGate"]


_CAPACITY = 2


class _PacingLimiter(AsyncLimiter):
    """An AsyncLimiter that paces evenly at ``rate``, without a start-up burst, and whose
    rate can change while workers wait on it.

    Capacity two, not one: with one, every late wake-up of the event loop is lost for good
    and the pace drifts a few percent under the rate (measured: 4% at 50/s); with two, the
    next request makes up for it. The bucket starts full, so the first requests are paced
    too, not sent at once.

    The rate changes in place because replacing the limiter would let workers queued on
    the old one drain at the old pace while newcomers use the new one: for a moment, twice
    the rate. aiolimiter (1.1 to 1.3) keeps its level in ``_level``, the time of its last
    update in ``_last_check`` and the rate in ``_rate_per_sec``.
    """

    def __init__(self, rate: float) -> None:
        super().__init__(_CAPACITY, _CAPACITY / rate)
        self._filled = False

    async def acquire(self, amount: float = 1) -> None:
        if not self._filled:
            self._filled = True
            self._level = float(self.max_rate)
            self._last_check = asyncio.get_running_loop().time()
        await super().acquire(amount)

    def refill(self) -> None:
        """Start full again (after a pause), so the pause is not followed by a burst."""
        self._filled = False

    def set_rate(self, rate: float) -> None:
        if self._filled:
            self._leak()  # settle the level at the old rate first
        self.time_period = _CAPACITY / rate
        self._rate_per_sec = rate


@dataclass(frozen=True, slots=True)
class _Phase:
    """A stretch of sending that a 429 ended, waiting to be learned from."""

    started: float
    ended: float
    retry_after: float
    rate: float
    fresh: bool  # began with an empty window (at start-up, or after a window-long pause)


class RateGate:
    """Admit requests no faster than the current rate, and never during a pause.

    Create it inside the running loop (the limiter binds to it on first use).
    """

    def __init__(
        self,
        rate: float,
        *,
        adaptive: bool = True,
        min_rate: float = 0.2,
        safety: float = 0.98,
        hold_windows: float = 5.0,
        probe_step: float = 0.01,
        cap_windows: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = float(rate)
        self.adaptive = adaptive
        self.min_rate = min(min_rate, self.ceiling)
        self._safety = safety
        self._hold_windows = hold_windows
        self._probe_step = probe_step
        self._sleep = sleep
        self._rate = self.ceiling
        self._limiter = _PacingLimiter(self._rate)
        self._resume_at = 0.0
        self._phase_started: float | None = None
        self._accepted = 0  # answered requests admitted since _phase_started
        self._ended: _Phase | None = None
        self.window: float | None = None  # estimated length of the server's window
        self._hold_until = 0.0
        self._holds = 0
        self._fresh = True
        self._probe_cap = self.ceiling
        self._cap_until = 0.0
        self._cap_windows = cap_windows
        self._last_probe = 0.0
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

    async def wait(self) -> float:
        """Return when a request may be sent, with the loop time it was admitted at."""
        while True:
            remaining = self.paused_for()
            if remaining > 0:
                await self._sleep(remaining)
                self._limiter.refill()
                continue
            now = self._now()
            if self._ended is not None:
                self._learn(self._ended, now)
            elif self._phase_started is None:
                self._phase_started = now
            self._probe(now)
            await self._limiter.acquire()
            # A pause may have begun while we queued for the limiter.
            if self.paused_for() <= 0:
                return self._now()

    def record_success(self, admitted_at: float) -> None:
        """Count an answer that was not a 429, for a request admitted at ``admitted_at``."""
        if self._phase_started is not None and admitted_at >= self._phase_started:
            self._accepted += 1

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a 429's Retry-After)."""
        now = self._now()
        new_resume = now + seconds
        if new_resume <= self._resume_at:
            return
        # Only the first 429 of a burst ends a phase; the others were already in flight.
        if self._resume_at <= now:
            self.pauses += 1
            if self.adaptive and self._ended is None:
                started = self._phase_started if self._phase_started is not None else now
                self._ended = _Phase(started, now, seconds, self._rate, self._fresh)
        self._resume_at = new_resume

    def _learn(self, phase: _Phase, now: float) -> None:
        """At the end of a pause: set the rate from what the ended phase shows."""
        self._ended = None
        sent_for = phase.ended - phase.started
        span = sent_for + max(phase.retry_after - 0.5, phase.retry_after / 2)
        if phase.fresh and self._accepted >= 5 and span > 0:
            # Everything accepted in this phase is in the server's window: count / span.
            estimate = min(self._accepted / span, phase.rate)
            rate = estimate * self._safety
            # Probing climbs back to the estimate itself, and past it only much later: a
            # probe that finds the limit costs a whole pause (a second or more), which 1%
            # more rate pays back only after about a hundred seconds.
            self._probe_cap = estimate
            self._cap_until = now + self._cap_windows * span
        elif phase.fresh:
            rate = phase.rate / 2  # too little to go on: halve
        elif self.window is not None and sent_for > 2 * self.window:
            # A long phase at this rate went well until now: the limit is just under it.
            rate = phase.rate * (1 - 2 * self._probe_step)
            self._holds += 1
        else:
            # A 429 soon after the last one: step down a little more.
            rate = phase.rate * (1 - 3 * self._probe_step)
            self._holds += 1
        if self.window is None:
            self.window = span
        # The next phase starts with an empty window if this pause lasted a whole window.
        self._fresh = phase.retry_after >= self.window
        self._set_rate(rate)
        # Every 429 costs a whole pause, so each time the limit is found again, probe
        # for more only after four times as long.
        self._hold_until = now + self._hold_windows * self.window * 4**self._holds
        self._last_probe = now
        self._phase_started = now
        self._accepted = 0

    def _probe(self, now: float) -> None:
        """After holding, try 1% more each window, up to the ceiling."""
        if self.window is None or self._rate >= self.ceiling or now < self._hold_until:
            return
        if self._rate >= self._probe_cap and now < self._cap_until:
            return
        if now - self._last_probe >= self.window:
            self._last_probe = now
            rate = self._rate * (1 + self._probe_step)
            if now < self._cap_until:
                rate = min(rate, self._probe_cap)
            self._set_rate(rate)

    def _set_rate(self, rate: float) -> None:
        rate = min(self.ceiling, max(self.min_rate, rate))
        if rate != self._rate:
            self._rate = rate
            self._limiter.set_rate(rate)
