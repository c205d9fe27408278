import asyncio
import itertools
import random

import pytest

from isrc_resolver.ratelimit import RateGate
from isrc_resolver.retry import DEFAULT_RETRY_AFTER, RetryPolicy, Throttled, parse_retry_after

from .conftest import VirtualClockLoop


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


def test_adaptive_rate_halves_once_per_pause_then_creeps_back(
    virtual_loop: VirtualClockLoop,
) -> None:
    async def scenario() -> tuple[float, float, float, int]:
        gate = RateGate(100, adaptive=True, increase_every=10, increase_step=0.1)
        await gate.wait()
        gate.pause(2)
        gate.pause(2)  # a second 429 from a request already in flight: no second cut
        after_pause = gate.rate
        for _ in range(10):
            gate.record_success()
        after_probe = gate.rate
        for _ in range(10_000):
            gate.record_success()
        return after_pause, after_probe, gate.rate, gate.pauses

    after_pause, after_probe, final, pauses = virtual_loop.run_until_complete(scenario())
    assert (after_pause, pauses) == (50, 1)
    assert after_probe == pytest.approx(55)
    assert final == 100  # never above the ceiling
