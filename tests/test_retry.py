import asyncio
import itertools
import random

import pytest
from looptime import LoopTimeEventLoop as VirtualClockLoop

from isrc_resolver.http.ratelimit import SETTLING, RateGate
from isrc_resolver.http.retry import (
    DEFAULT_RETRY_AFTER,
    RetryPolicy,
    Throttled,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "7"}, 7.0),
        ({"RETRY-AFTER": " 12 "}, 12.0),
        ({"Retry-After": "0"}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": "-3"}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": "soon"}, DEFAULT_RETRY_AFTER),
        ({}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": "86400"}, 86400.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers) == seconds


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # the jitter spans the whole range


@pytest.mark.parametrize(
    ("retry_after", "quota", "stops"),
    [
        (5, False, False),
        (120, False, False),
        (121, False, True),
        (50_000, False, True),
        (1, True, True),
    ],
)
def test_long_waits_and_quota_stop_the_run(retry_after: float, quota: bool, stops: bool) -> None:
    policy = RetryPolicy(max_wait=120)
    assert policy.stops_run(Throttled(retry_after, quota=quota)) is stops


def test_gate_spaces_requests_without_a_start_burst(virtual_loop: VirtualClockLoop) -> None:
    async def scenario() -> list[float]:
        gate = RateGate(10, adaptive=False)
        times = []
        for _ in range(5):
            await gate.wait()
            times.append(asyncio.get_running_loop().time())
        return times

    times = virtual_loop.run_until_complete(scenario())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap == pytest.approx(0.1, abs=1e-5) for gap in gaps)


def test_a_429_pauses_every_worker_until_retry_after(virtual_loop: VirtualClockLoop) -> None:
    async def scenario() -> list[float]:
        gate = RateGate(1000, adaptive=False)
        loop = asyncio.get_running_loop()
        await gate.wait()
        gate.pause(30)  # the first worker got a 429 with Retry-After: 30
        sent: list[float] = []

        async def worker() -> None:
            await gate.wait()
            sent.append(loop.time())

        await asyncio.gather(*(worker() for _ in range(8)))
        return sent

    sent = virtual_loop.run_until_complete(scenario())
    assert len(sent) == 8
    assert min(sent) >= 30  # nobody went during the pause
    assert max(sent) - min(sent) == pytest.approx(7 / 1000, abs=1e-4)  # then paced, no burst


async def _send(gate: RateGate, count: int) -> None:
    for _ in range(count):
        gate.record_success(await gate.wait())


def test_the_first_429_teaches_the_window(virtual_loop: VirtualClockLoop) -> None:
    """100 accepted in about half a second, then "Retry-After: 2": the server allows about
    100 per (0.5 + 1.5) s. The gate settles 2% under that."""

    async def scenario() -> tuple[float, float, int]:
        gate = RateGate(200)
        await _send(gate, 100)
        gate.pause(2)
        gate.pause(2)  # another 429 from a request already in flight: the same pause
        await gate.wait()
        assert gate.window is not None
        return gate.rate, gate.window, gate.pauses

    rate, window, pauses = virtual_loop.run_until_complete(scenario())
    assert pauses == 1
    assert window == pytest.approx(0.5 + 1.5, abs=0.02)
    assert rate == pytest.approx(100 / window * 0.99, rel=0.01)


def test_after_learning_it_holds_at_the_safe_rate_for_a_while_then_probes(
    virtual_loop: VirtualClockLoop,
) -> None:
    async def scenario() -> list[tuple[float, float]]:
        gate = RateGate(200, hold_windows=5, cap_windows=30)
        loop = asyncio.get_running_loop()
        await _send(gate, 100)
        gate.pause(2)
        seen = []
        for _ in range(4000):
            gate.record_success(await gate.wait())
            seen.append((loop.time(), gate.rate))
        return seen

    seen = virtual_loop.run_until_complete(scenario())
    start, first = seen[0]
    estimate = first / 0.99
    window = 2.0
    during_hold = [rate for t, rate in seen if t < start + 5 * window - 0.1]
    assert set(during_hold) == {first}
    capped = [rate for t, rate in seen if t < start + 30 * window - 0.1]
    assert max(capped) == pytest.approx(first, rel=1e-6)  # 1% under the estimate, held
    later = [rate for t, rate in seen if t > start + 32 * window]
    assert later and max(later) > estimate * 1.005  # probing goes on, gently


def test_a_429_after_a_long_phase_steps_down_two_percent(virtual_loop: VirtualClockLoop) -> None:
    async def scenario() -> tuple[float, float]:
        gate = RateGate(200)
        await _send(gate, 100)
        gate.pause(2)
        await _send(gate, 300)  # about six seconds at the learned rate: a long phase
        before = gate.rate
        gate.pause(1)
        await gate.wait()
        return before, gate.rate

    before, after = virtual_loop.run_until_complete(scenario())
    assert after == pytest.approx(before * 0.98)


def test_fixed_rate_when_not_adaptive(virtual_loop: VirtualClockLoop) -> None:
    async def scenario() -> float:
        gate = RateGate(100, adaptive=False)
        await _send(gate, 50)
        gate.pause(1)
        await _send(gate, 10)
        return gate.rate

    assert virtual_loop.run_until_complete(scenario()) == 100


def test_after_a_pause_the_first_window_is_paced_under_the_learned_rate(
    virtual_loop: VirtualClockLoop,
) -> None:
    """Sixteen workers queue through a 429's pause; from its end, requests leave one
    interval of the learned rate apart, a little wider in the first window (every worker
    wakes at once there), and none two at once however the queue formed."""

    async def scenario() -> tuple[list[float], float]:
        gate = RateGate(200)
        loop = asyncio.get_running_loop()
        await _send(gate, 100)
        gate.pause(2)
        times: list[float] = []

        async def worker() -> None:
            while len(times) < 300:
                gate.record_success(await gate.wait())
                times.append(loop.time())

        await asyncio.gather(*(worker() for _ in range(16)))
        return times, gate.rate

    times, rate = virtual_loop.run_until_complete(scenario())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    settling = [g for t, g in zip(times[1:], gaps, strict=True) if t < times[0] + 1.9]
    steady = [g for t, g in zip(times[1:], gaps, strict=True) if t > times[0] + 2.1]
    assert min(settling) == pytest.approx(1 / (rate * SETTLING), rel=1e-3)
    assert min(steady) == pytest.approx(1 / rate, rel=1e-3)
    # In any window of 2 s, at most what the learned rate gives (never a request more).
    for i, start in enumerate(times):
        inside = sum(1 for t in times[i:] if t < start + 2.0)
        assert inside <= int(2.0 * rate) + 1
