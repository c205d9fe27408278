"""The "nightly under a quota" scenario: a catalogue resolved night after night on a daily
allowance, with a clock that jumps a day between runs and moves only when the code waits.

A 10,000-ISRC catalogue grows by 2% new ISRCs a night; the account may send 2,000 requests
in any 24 hours (``daily_quota``); answers are refreshed after 30 days (misses after 7).
Each night runs the library's Resolver against the local Spotify, in this process, on one
cache file. Reported per night: API requests, rows with no answer (deferred, pending,
rate-limited or error), stale rows written from the cache, and the age of the oldest
answer against the ideal: the max age, plus one night (a nightly job refreshes an answer on
the first night after it turns 30 days), plus the refresh backlog at the allowance's pace.
The issue asks for 30 nights; the first answers turn 30 days old on night 31, so the
default runs 45 nights, to include the refreshes.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from isrc_resolver import Resolver, Status
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

DAY = 86_400.0
START = 1_800_000_000.0  # a Unix time on a minute, so every night starts on one too
NO_ANSWER = {Status.DEFERRED, Status.PENDING, Status.RATE_LIMITED, Status.ERROR}


@dataclass
class Night:
    number: int
    catalogue: int
    requests: int
    no_answer: int
    stale: int
    oldest_days: float
    ideal_days: float


def _isrc(n: int) -> str:
    return f"QZN{n // 100_000:02d}24{n % 100_000:05d}"  # distinct for distinct n < 10**7


async def simulate(
    folder: Path,
    *,
    catalogue: int = 10_000,
    quota: int = 2_000,
    growth: float = 0.02,
    max_age_days: float = 30,
    nights: int = 45,
    progress: bool = False,
) -> list[Night]:
    now = [START]

    async def sleep(seconds: float) -> None:  # waits move the clock; nothing else does
        now[0] += seconds
        await asyncio.sleep(0)

    rng = random.Random(7)
    numbers = rng.sample(range(10_000_000), catalogue + int(catalogue * growth) * nights)
    values = [_isrc(n) for n in numbers]
    out: list[Night] = []
    async with FakeSpotify() as server:
        for night in range(1, nights + 1):
            size = catalogue + int(catalogue * growth) * (night - 1)
            async with Resolver(
                DEMO_CLIENT_ID,
                DEMO_CLIENT_SECRET,
                api_url=server.api_url,
                token_url=server.token_url,
                cache=folder / "nightly.sqlite3",
                daily_quota=quota,
                max_age=max_age_days,
                rate=1_000,
                concurrency=8,
                clock=lambda: now[0],
                sleep=sleep,
            ) as resolver:
                results = await resolver.resolve_values(values[:size])
                sent = resolver.client.stats.api_requests
            answered = [r for r in results.values() if r.resolved_at is not None]
            oldest = (now[0] - min(r.resolved_at or now[0] for r in answered)) / DAY
            stale = sum(r.stale for r in results.values())
            room = max(quota - int(catalogue * growth), 1)  # a night's refreshes, at most
            ideal = max_age_days + 1 + stale / room
            out.append(
                Night(
                    number=night,
                    catalogue=size,
                    requests=sent,
                    no_answer=sum(r.status in NO_ANSWER for r in results.values()),
                    stale=stale,
                    oldest_days=oldest,
                    ideal_days=ideal,
                )
            )
            if progress:
                print(f"  night {night}: {out[-1]}", file=sys.stderr, flush=True)
            now[0] = START + night * DAY  # the next night, at the same time of day
    return out


def rows(folder: Path, catalogue: int, quota: int) -> list[tuple[str, str, str, bool, str]]:
    """The scenario's lines for the benchmark table: (scenario, figure, target, ok, detail)."""
    import logging

    logging.getLogger("isrc_resolver").setLevel(logging.ERROR)  # a budget stop a night
    nights = asyncio.run(simulate(folder, catalogue=catalogue, quota=quota))
    s = summary(nights)
    worst = max(nights, key=lambda n: n.oldest_days - n.ideal_days)
    name = "nightly under a quota"
    setup = f"{catalogue:,} ISRCs +2%/night, {quota:,}/day, 30-day max age, {len(nights)} nights"
    return [
        (
            name + ": requests a night",
            f"{s['requests_min']:.0f} / {s['requests_median']:.0f} / {s['requests_max']:.0f}",
            f"<= {quota:,}",
            s["requests_max"] <= quota,
            f"min / median / max; {setup}",
        ),
        (
            name + ": rows with no answer",
            f"{s['no_answer_after_settle']:.0f} after night 5",
            "0 after night 5",
            s["no_answer_after_settle"] == 0,
            "nights 1-5: " + " / ".join(f"{n.no_answer:,}" for n in nights[:5]),
        ),
        (
            name + ": oldest answer",
            f"{worst.oldest_days:.1f} days (night {worst.number})",
            f"<= ideal {worst.ideal_days:.1f}",
            s["oldest_over_ideal"] <= 0,
            f"ideal: 30 max age + 1 night + backlog ({worst.stale} stale) / room a night",
        ),
    ]


def summary(nights: list[Night], settle: int = 5) -> dict[str, float]:
    """The figures the benchmark table prints: requests a night, rows with no answer after
    the first ``settle`` nights, the oldest answer against its ideal."""
    later = nights[settle:]
    return {
        "requests_min": min(n.requests for n in nights),
        "requests_median": statistics.median(n.requests for n in nights),
        "requests_max": max(n.requests for n in nights),
        "no_answer_after_settle": sum(n.no_answer for n in later),
        "no_answer_first": sum(n.no_answer for n in nights[:settle]),
        "oldest_days": max(n.oldest_days for n in nights),
        "oldest_over_ideal": max(n.oldest_days - n.ideal_days for n in nights),
        "stale_max": max(n.stale for n in nights),
    }
