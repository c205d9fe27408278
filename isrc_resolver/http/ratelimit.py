"""The rate gate every request passes through before it is sent.

It combines, shared by all workers:

* a ceiling (``rate`` requests per second) held by an :class:`aiolimiter.AsyncLimiter`,
  used through its public API only and never changed;
* a pacer at the current, adaptive rate (at most the ceiling): requests leave one at a
  time, evenly spaced, with no burst at start-up or after a pause;
* a shared *resume-at* time: a 429 pauses every worker until its Retry-After has passed,
  and no request leaves during the pause;
* the adaptive rate itself, which learns what the server allows.

How it learns: Spotify counts requests in a rolling window and does not say its size or
limit. When a 429 ends a sending phase, the requests admitted in that phase and answered
without a 429 were all accepted, and the phase plus the Retry-After spans about one window,
so ``accepted / (phase + Retry-After)`` estimates the sustainable rate. Retry-After is a
whole number of seconds rounded up, so half a second is taken off it. The gate then runs
just under that estimate, holds it for several windows, and probes upward by 1% a window.
Each 429 costs a full pause, so the gate would rather sit 1% under the limit than find it
often. The phase ends when the refused request left, not when its 429 came back: the round
trip is not sending time (counting it made the estimate a latency's worth too low).

:class:`RateLearner` is that learning alone: a pure object that is told the times (when a
phase began, when a 429 came, what was accepted) and says the rate, so it is tested with
plain numbers. :class:`RateGate` does the waiting around it. Time is read only through the
running loop (``loop.time()``), so tests can move a fake clock; the sleep is injectable for
the same reason.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

__all__ = ["RateGate", "RateLearner", "window_of"]

Sleep = Callable[[float], Awaitable[None]]


_NEGLIGIBLE = 0.001  # seconds
_TRIPS_KEPT = 200  # round trips the bunching is measured on ...
_TRIPS_NEEDED = 20  # ... once there are this many
# The share of the rate the first window after a pause is paced at. Every worker wakes at
# the pause's end and the first request leaves a little late; the rest keep to their slots,
# so that window would hold a request more than the rate gives (a 429 at 99% of the limit).
SETTLING = 0.97


class _Pacer:
    """One request every ``1 / rate`` seconds, whatever the number of callers.

    Callers take turns (the lock is fair), and each turn is a slot on an absolute time
    line: a caller that wakes a little late does not push the next slot back, so the pace
    does not drift under the rate. Each slot is one interval *at the rate of its own turn*
    after the last: a rate learned during a pause spaces the very first slots after it
    (a slot computed ahead, at the old rate, would let two requests out close together).
    """

    def __init__(self, rate: float, sleep: Sleep) -> None:
        self._interval = 1.0 / rate
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last: float | None = None  # the last slot given
        self._hold = 0.0  # no slot before this (a pause)

    def set_rate(self, rate: float) -> None:
        self._interval = 1.0 / rate

    def hold_until(self, moment: float) -> None:
        """No slot before ``moment`` (a pause); the first one after it is at ``moment``."""
        self._hold = max(self._hold, moment)

    async def wait(self) -> None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            # The first request waits one interval too: no burst at start-up.
            last = now if self._last is None else self._last
            slot = max(last + self._interval, now)
            if self._hold > last:  # a pause since the last slot: its end is the next slot
                slot = max(self._hold, now)
            self._last = slot
            # A wait shorter than the loop's own granularity is not worth a turn of the
            # loop (at high rates every caller would queue behind timers of microseconds).
            if slot - now > _NEGLIGIBLE:
                await self._sleep(slot - now)
            # Woken late (the loop was busy): the next slot counts from when this request
            # left, less a quarter of an interval, so that the pace neither drifts under
            # the rate (a wake a little late each time is absorbed) nor catches up with a
            # burst after a stall (two requests at once, which a window full to the last
            # request refuses).
            woke = asyncio.get_running_loop().time()
            self._last = max(slot, woke - self._interval / 4)


@dataclass(frozen=True, slots=True)
class _Phase:
    """A stretch of sending that a 429 ended, waiting to be learned from."""

    started: float
    ended: float
    retry_after: float
    rate: float
    fresh: bool  # began with an empty window (at start-up, or after a window-long pause)


def window_of(sent_for: float, retry_after: float) -> float:
    """The server's window, from a phase that sent for ``sent_for`` seconds before its 429
    and that 429's Retry-After. Retry-After is the time left, rounded up to whole seconds,
    so the window lies in ``(sent_for + retry_after - 1, sent_for + retry_after]``; the
    APIs this tool knows count whole seconds (Spotify's window is 30 s), and exactly one
    whole number lies there: the window is taken to be it. (The middle of the interval,
    as before, erred by up to half a second: 1.95 s for a 2 s window sent 2.6% too fast, and
    the second 429 cost a pause.) Under a second, where there is no whole number to take,
    the middle."""
    top = sent_for + retry_after
    if top >= 1:
        return float(math.floor(top))
    return sent_for + max(retry_after - 0.5, retry_after / 2)


class RateLearner:
    """The rate to send at, learned from the 429s a server gives. No clock of its own:
    every method is told the time, so the arithmetic is tested without any loop."""

    def __init__(
        self,
        ceiling: float,
        *,
        adaptive: bool = True,
        min_rate: float = 0.2,
        safety: float = 0.99,
        hold_windows: float = 5.0,
        probe_step: float = 0.01,
        cap_windows: float = 30.0,
    ) -> None:
        if ceiling <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = float(ceiling)
        self.adaptive = adaptive
        self.min_rate = min(min_rate, self.ceiling)
        self._safety = safety
        self._hold_windows = hold_windows
        self._probe_step = probe_step
        self._cap_windows = cap_windows
        self.rate = self.ceiling  # requests per second, at most the ceiling
        self.window: float | None = None  # estimated length of the server's window
        self._phase_started: float | None = None
        self._accepted = 0  # answered requests admitted since _phase_started
        self._ended: _Phase | None = None
        self._hold_until = 0.0
        self._holds = 0
        self._fresh = True
        self._probe_cap = self.ceiling
        self._cap_until = 0.0
        self._last_probe = 0.0
        self._settle_until = 0.0
        self._trips: deque[float] = deque(maxlen=_TRIPS_KEPT)  # recent round trips, seconds

    def admitting(self, now: float) -> float:
        """A request is about to be admitted at ``now``: learn from a phase a 429 ended,
        or begin the first phase, and probe upward when it is time. Returns the rate to
        pace this request at: :attr:`rate`, or a little under it in the first window after
        a pause (see :data:`SETTLING`)."""
        if self._ended is not None:
            self._learn(self._ended, now)
        elif self._phase_started is None:
            self._phase_started = now
        self._probe(now)
        return self.rate * SETTLING if now < self._settle_until else self.rate

    def accepted(self, admitted_at: float, now: float | None = None) -> None:
        """An answer that was not a 429, for a request admitted at ``admitted_at`` (and
        answered at ``now``: the round trips tell how unevenly requests reach the server)."""
        if self._phase_started is not None and admitted_at >= self._phase_started:
            self._accepted += 1
        if now is not None:
            self._trips.append(now - admitted_at)

    def _bunching(self) -> float:
        """How much closer together requests sent evenly may reach the server: half the
        spread of the recent round trips (their 5th to 95th percentile; the way there is
        about half of it), in seconds."""
        if len(self._trips) < _TRIPS_NEEDED:
            return 0.0
        trips = sorted(self._trips)
        return (trips[int(len(trips) * 0.95)] - trips[int(len(trips) * 0.05)]) / 2

    def throttled(self, now: float, retry_after: float, admitted_at: float | None = None) -> None:
        """The first 429 of a burst, at ``now``, for a request admitted at ``admitted_at``:
        the phase ends, to be learned from when the pause is over. It ended when that
        request left (those before it were accepted; the answer's way back is not sending
        time), or at ``now`` when that is not known."""
        if self.adaptive and self._ended is None:
            started = self._phase_started if self._phase_started is not None else now
            ended = now if admitted_at is None else max(started, min(admitted_at, now))
            self._ended = _Phase(started, ended, retry_after, self.rate, self._fresh)

    def _learn(self, phase: _Phase, now: float) -> None:
        """At the end of a pause: set the rate from what the ended phase shows."""
        self._ended = None
        sent_for = phase.ended - phase.started
        span = window_of(sent_for, phase.retry_after)
        # A phase of several windows holds more than one window's worth: it cannot be
        # counted as one, fresh or not.
        long_phase = self.window is not None and sent_for > 2 * self.window
        if phase.fresh and not long_phase and self._accepted >= 5 and span > 0:
            # Everything accepted in this phase is in the server's window: count / span.
            estimate = min(self._accepted / span, phase.rate)
            # Sent evenly, requests still reach the server bunched by the spread of the
            # way there: a window of the server's can hold that much more of our sending.
            # (At 50 requests a second, 20 ms of bunching is one request a 2-second window
            # more: exactly the 1% under the limit, and a 429.)
            rate = estimate * self._safety * span / (span + self._bunching())
            # No probing above this for a long while (the estimate itself is the limit,
            # where the least unevenness is a 429, and 1% under it is a request a window
            # of headroom): a probe that finds the limit costs a whole pause (a second or
            # more), which 1% more rate pays back only after about a hundred seconds.
            self._probe_cap = rate
            self._cap_until = now + self._cap_windows * span
        elif phase.fresh and not long_phase:
            rate = phase.rate / 2  # too little to go on: halve
        elif long_phase:
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
        self._settle_until = now + self.window

    def _probe(self, now: float) -> None:
        """After holding, try 1% more each window, up to the ceiling."""
        if self.window is None or self.rate >= self.ceiling or now < self._hold_until:
            return
        if self.rate >= self._probe_cap and now < self._cap_until:
            return
        if now - self._last_probe >= self.window:
            self._last_probe = now
            rate = self.rate * (1 + self._probe_step)
            if now < self._cap_until:
                rate = min(rate, self._probe_cap)
            self._set_rate(rate)

    def _set_rate(self, rate: float) -> None:
        self.rate = min(self.ceiling, max(self.min_rate, rate))


class RateGate:
    """Admit requests no faster than the learned rate, and never during a pause.

    Create it inside the running loop (the limiter binds to it on first use). ``learning``
    are :class:`RateLearner`'s knobs.
    """

    def __init__(
        self,
        rate: float,
        *,
        adaptive: bool = True,
        sleep: Sleep = asyncio.sleep,
        **learning: float,
    ) -> None:
        self.learner = RateLearner(rate, adaptive=adaptive, **learning)
        self.ceiling = self.learner.ceiling
        self._sleep = sleep
        self._pacer = _Pacer(self.learner.rate, sleep)
        # The hard ceiling: never more than two requests per two intervals at ``rate``.
        self._ceiling = AsyncLimiter(2, 2 / self.ceiling)
        self._resume_at = 0.0
        self.pauses = 0

    @property
    def rate(self) -> float:
        """The rate currently allowed, in requests per second (≤ the ceiling)."""
        return self.learner.rate

    @property
    def window(self) -> float | None:
        """The server's window, as learned from the first 429 (None before it)."""
        return self.learner.window

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
                continue
            self._pacer.set_rate(self.learner.admitting(self._now()))
            await self._pacer.wait()
            await self._ceiling.acquire()
            # A pause may have begun while we queued for the limiter.
            if self.paused_for() <= 0:
                return self._now()

    def record_success(self, admitted_at: float) -> None:
        """Count an answer that was not a 429, for a request admitted at ``admitted_at``."""
        self.learner.accepted(admitted_at, self._now())

    def pause(self, seconds: float, admitted_at: float | None = None) -> None:
        """Hold every worker for ``seconds`` (a 429's Retry-After, for a request admitted
        at ``admitted_at``)."""
        now = self._now()
        new_resume = now + seconds
        if new_resume <= self._resume_at:
            return
        # Only the first 429 of a burst ends a phase; the others were already in flight.
        if self._resume_at <= now:
            self.pauses += 1
            self.learner.throttled(now, seconds, admitted_at)
        self._resume_at = new_resume
        self._pacer.hold_until(new_resume)
