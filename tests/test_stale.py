"""A known answer is never lost: a cached answer past its age that a run cannot refresh
(quota, errors, interrupt) is written as it was, with the time Spotify gave it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from isrc_resolver.cli import main

from .helpers import ServerThread, age_cache, isrcs, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
DAY = 86_400.0


def test_stale_answers_survive_a_quota_stop_with_their_time(
    spotify: ServerThread, tmp_path: Path
) -> None:
    old = isrcs(40)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in old])
    now = [1_700_000_000.0]

    async def run() -> tuple[int, int]:
        async with resolver_for(spotify, cache=tmp_path / "c.sqlite3", clock=lambda: now[0]) as r:
            report = await r.resolve_file(tmp_path / "in.csv", tmp_path / "out.csv")
        return report.exit_code, report.stale

    assert asyncio.run(run()) == (0, 0)
    first = read_csv(tmp_path / "out.csv")
    assert {row["resolved_at"] for row in first} == {"2023-11-14T22:13:20Z"}

    now[0] += 31 * DAY  # every answer is past --max-age now ...
    spotify.reconfigure(daily_quota=40 + 10)  # ... and the quota allows 10 refreshes
    code, stale = asyncio.run(run())
    assert (code, stale) == (3, 30)
    second = read_csv(tmp_path / "out.csv")
    assert [r["status"] for r in second] == ["found"] * 40  # none rate_limited, none empty
    assert [r["spotify_track_id"] for r in second] == [r["spotify_track_id"] for r in first]
    times = sorted(r["resolved_at"] for r in second)
    assert times == ["2023-11-14T22:13:20Z"] * 30 + ["2023-12-15T22:13:20Z"] * 10


def test_new_isrcs_go_before_refreshes(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    """Stale plus new under a quota that covers only the new ones: all new ones resolved."""
    env(spotify)
    old, new = isrcs(30), isrcs(5, start=5000)
    write_csv(Path("in.csv"), [{"isrc": i} for i in old])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--rate", "1000"]
    assert main(args) == 0
    age_cache(Path("c.sqlite3"), days=31)  # every answer past the 30 days of --max-age
    write_csv(Path("in.csv"), [{"isrc": i} for i in old + new])
    spotify.reconfigure(daily_quota=spotify.stats()["search_requests"] + len(new))
    capsys.readouterr()
    # --daily-quota counts the first run's 30 in the ledger and stops before Spotify's
    # 429, however many requests are in flight.
    more = ["--log-format", "json", "--concurrency", "8"]
    assert main([*args, *more, "--daily-quota", str(len(old) + len(new))]) == 3
    summary = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert (summary["event"], summary["stale"], summary["rate_limited"]) == ("summary", 30, 0)
    rows = {r["isrc"]: r for r in read_csv(Path("out.csv"))}
    assert all(rows[i]["status"] == "found" and rows[i]["resolved_at"] for i in old + new)
    assert spotify.stats()["quota_exceeded"] == 0  # the budget stopped first
    assert spotify.stats()["search_requests"] == len(old) + len(new)


def test_max_requests_is_never_exceeded_and_the_next_run_finishes(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    wanted = isrcs(20, start=9000)
    write_csv(Path("in.csv"), [{"isrc": i} for i in wanted])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--rate", "1000"]
    assert main([*args, "--max-requests", "5", "--concurrency", "8"]) == 3
    assert spotify.stats()["search_requests"] == 5
    rows = read_csv(Path("out.csv"))
    assert sorted(r["status"] for r in rows) == ["deferred"] * 15 + ["found"] * 5
    assert "--max-requests reached: 15 rows deferred to the next run" in capsys.readouterr().err
    assert main(args) == 0  # the next run asks only the 15 deferred
    assert spotify.stats()["search_requests"] == 20
    assert {r["status"] for r in read_csv(Path("out.csv"))} == {"found"}


def test_the_cache_is_read_in_its_own_order_but_asks_keep_the_inputs(tmp_path: Path) -> None:
    """The cache is read in ISRC order (its pages once each); what is asked, and in which
    order, is still the input's: never-asked first, then misses, then hits oldest first,
    ties in input order."""
    from isrc_resolver.models import Result, Status
    from isrc_resolver.pipeline.plan import cached_or_missing
    from isrc_resolver.settings import Settings
    from isrc_resolver.store.cache import AsyncCache, Cache

    now = 1_700_000_000.0
    settings = Settings.build("id", "secret", cache=tmp_path / "c.sqlite3", fallback_markets="none")
    codes = sorted(isrcs(40), reverse=True)  # the input's order is not the table's
    fresh, new, stale_found, stale_miss = codes[0::4], codes[1::4], codes[2::4], codes[3::4]
    old = now - 31 * DAY
    answers = [Result(i, Status.FOUND, match_count=1, resolved_at=now) for i in fresh]
    answers += [Result(i, Status.FOUND, match_count=1, resolved_at=old) for i in stale_found]
    answers[-1] = Result(stale_found[-1], Status.FOUND, match_count=1, resolved_at=old - DAY)
    answers += [Result(i, Status.NOT_FOUND, match_count=0, resolved_at=old) for i in stale_miss]
    with Cache(settings.cache, clock=lambda: now) as cache:  # type: ignore[arg-type]
        cache.store(answers, settings.variant)

    async def ask() -> tuple[list[str], list[str]]:
        emitted: list[str] = []
        cache = AsyncCache(Cache(settings.cache, clock=lambda: now), owned=True)  # type: ignore[arg-type]
        try:
            asks = await cached_or_missing(codes, cache, settings, lambda r: emitted.append(r.isrc))
        finally:
            await cache.aclose()
        return asks.isrcs, emitted

    asked, emitted = asyncio.run(ask())
    assert sorted(emitted) == sorted(fresh)
    oldest_first = [stale_found[-1], *stale_found[:-1]]
    assert asked == new + stale_miss + oldest_first


def test_a_miss_that_cannot_be_searched_by_title_keeps_its_time(
    env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    """A file with title and artist columns, a miss whose row has no artist: no later run
    can search it by title, so none asks anything for it or touches its time (when
    Spotify answered), which a round that searched nowhere used to set to the run's."""
    from datetime import UTC, datetime

    from .helpers import catalogue_rows

    env(spotify)
    rows = [{"isrc": r["isrc"], "title": "Some Title", "artist": ""} for r in catalogue_rows(300)]
    write_csv(Path("in.csv"), rows)
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--fallback-markets", "none"]
    assert main(args) == 0
    first = read_csv(Path("out.csv"))
    age_cache(Path("c.sqlite3"), days=1)  # as if the first run had been yesterday
    spotify.reset_stats()
    assert main(args) == 0
    assert spotify.stats()["total_requests"] == 0
    misses = [(a, b) for a, b in zip(first, read_csv(Path("out.csv")), strict=True)
              if a["status"] == "not_found"]  # fmt: skip
    assert len(misses) > 10
    for before, after in misses:
        then = datetime.strptime(before["resolved_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        yesterday = datetime.fromtimestamp(then.timestamp() - DAY, UTC)
        assert after["resolved_at"] == yesterday.strftime("%Y-%m-%dT%H:%M:%SZ"), after["isrc"]
