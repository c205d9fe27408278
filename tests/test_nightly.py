"""Nightly runs: the cache, cooldowns, token reuse, crashes, signals and concurrent runs."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from isrc_resolver import Cache, Status, normalize_isrc
from isrc_resolver.cli import main
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

from .conftest import Cli
from .helpers import (
    ServerThread,
    a_missing_isrc,
    catalogue_rows,
    check_rows,
    random_isrc,
    read_csv,
    resolver_for,
    write_csv,
)

Env = Callable[[ServerThread], None]


def unique_valid(rows: list[dict[str, str]]) -> int:
    from isrc_resolver import is_valid_isrc, normalize_isrc

    return len({n for r in rows if is_valid_isrc(n := normalize_isrc(r["isrc"]))})


# These tests count the requests of incremental runs: one per ISRC. Misses would also be
# searched again in their own country by default (tests/test_coverage.py covers that).
ONE_MARKET = ("--fallback-markets", "none")


def test_second_run_costs_nothing_and_growth_costs_exactly_the_new(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    rows = catalogue_rows(2000, seed=21)
    write_csv(tmp_path / "in.csv", rows)
    args = [
        "in.csv",
        "-o",
        "out.csv",
        "--cache",
        "cache.sqlite3",
        "--rate",
        "2000",
        "--concurrency",
        "16",
    ]
    code, _, err = cli(*ONE_MARKET, *args)
    assert code == 0, err
    first = (tmp_path / "out.csv").read_text()
    assert spotify.stats()["search_requests"] == unique_valid(rows)

    spotify.reset_stats()
    code, _, err = cli(*ONE_MARKET, *args)
    assert code == 0
    assert spotify.stats()["search_requests"] == 0
    assert spotify.stats()["token_requests"] == 0  # the stored token was reused
    assert (tmp_path / "out.csv").read_text() == first
    assert f"cached={unique_valid(rows)}" in err

    # The catalogue grows by exactly 100 new ISRCs (and a few more rows repeating old ones).
    known = {normalize_isrc(r["isrc"]) for r in rows}
    rng = random.Random(99)
    new: list[str] = []
    while len(new) < 100:
        if (isrc := random_isrc(rng)) not in known and isrc not in new:
            new.append(isrc)
    grown = rows + [
        {"code": f"new{i}", "isrc": v, "title": "New", "note": ""} for i, v in enumerate(new)
    ]
    grown += rows[:50]
    write_csv(tmp_path / "in.csv", grown)
    spotify.reset_stats()
    assert cli(*ONE_MARKET, *args).code == 0
    assert spotify.stats()["search_requests"] == 100
    check_rows(grown, read_csv(tmp_path / "out.csv"))


def test_cache_and_token_files_are_private(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}])
    assert cli(*ONE_MARKET, "in.csv", "-o", "out.csv", "--cache", "c/cache.sqlite3").code == 0
    for name in ("cache.sqlite3", "tokens.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "c" / name).st_mode) == 0o600, name
    assert DEMO_CLIENT_SECRET not in (tmp_path / "c" / "tokens.json").read_text()


def test_no_cache_keeps_nothing_on_disk(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(spotify)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}])
    before = set(tmp_path.rglob("*"))
    assert cli(*ONE_MARKET, "in.csv", "-o", "out.csv", "--no-cache").code == 0
    assert set(tmp_path.rglob("*")) - before == {tmp_path / "out.csv"}


async def test_hits_and_misses_expire_on_their_own_clocks(tmp_path: Path) -> None:
    now = [1_000_000.0]
    clock = lambda: now[0]  # noqa: E731 - a settable clock
    found, missing = "QZ7XS2400012", a_missing_isrc()
    async with FakeSpotify() as server:
        assert not server.catalogue.search(missing)  # a genuine miss in the catalogue

        async def run(**options: Any) -> int:
            before = server.stats()["search_requests"]
            async with resolver_for(
                server,
                rate=10,
                cache=tmp_path / "cache.sqlite3",
                clock=clock,
                max_age=30,  # days, as on the command line
                not_found_max_age=timedelta(days=7),
                **options,
            ) as r:
                results = {res.isrc: res.status async for res in r.resolve_many([found, missing])}
            assert results == {found: Status.FOUND, missing: Status.NOT_FOUND}
            return int(server.stats()["search_requests"] - before)

        assert await run() == 2
        now[0] += 6 * 86400
        assert await run() == 0  # both fresh
        now[0] += 2 * 86400
        assert await run() == 1  # day 8: the miss is asked again, the hit (8 days) is fresh
        now[0] += 23 * 86400
        assert await run() == 2  # day 31: the hit is 31 days old, the miss 23
        assert await run() == 0
        assert await run(refresh=True) == 2


async def test_cache_keys_include_market_and_preference(tmp_path: Path) -> None:
    async with FakeSpotify() as server:

        async def searches(**options: Any) -> int:
            before = server.stats()["search_requests"]
            async with resolver_for(server, rate=10, cache=tmp_path / "c.sqlite3", **options) as r:
                await r.resolve("QZJ842400387")
            return int(server.stats()["search_requests"] - before)

        assert await searches() == 1
        assert await searches() == 0
        assert await searches(market="GB") == 1
        assert await searches(prefer="original") == 1
        assert await searches(market="GB") == 0


def test_quota_stop_sets_a_cooldown_the_next_run_respects(
    capsys: pytest.CaptureFixture[str],
    cli: Cli,
    env: Env,
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
) -> None:
    server = spotify_thread(daily_quota=30, quota_retry_after=40_000)
    env(server)
    rows = catalogue_rows(200, seed=31, unique=200)
    write_csv(tmp_path / "in.csv", rows)
    args = [
        "in.csv",
        "-o",
        "out.csv",
        "--cache",
        "cache.sqlite3",
        "--concurrency",
        "4",
        "--rate",
        "500",
    ]
    code, _, err = cli(*ONE_MARKET, *args)
    assert code == 3 and "run again after" in err
    first_done = sum(r["status"] in ("found", "not_found") for r in read_csv(tmp_path / "out.csv"))
    cached = cached_count(tmp_path / "cache.sqlite3")
    assert 0 < cached <= 30
    quota_429s = server.stats()["quota_exceeded"]

    server.reset_stats()
    started = time.perf_counter()
    code, _, err = cli(*ONE_MARKET, *args)
    assert code == 3 and time.perf_counter() - started < 2
    assert server.stats()["search_requests"] == 0
    assert "cooling down after a quota stop" in err
    rows_out = read_csv(tmp_path / "out.csv")
    assert (
        sum(r["status"] in ("found", "not_found") for r in rows_out) == first_done
    )  # from the cache
    assert {r["status"] for r in rows_out} <= {"found", "not_found", "invalid", "rate_limited"}

    info = Cache(tmp_path / "cache.sqlite3")
    (account,) = info.info().accounts  # the cooldown is the account's that hit the quota
    assert account.account == f"{DEMO_CLIENT_ID}@http://127.0.0.1/v1"
    assert account.cooldown_until is not None
    # The ledger counts every request sent: the 30 answered and the 429s that stopped it.
    assert account.requests == 30 + server.stats()["quota_exceeded"] + quota_429s
    info.close()
    code, out = main(["cache", "info", "--cache", "cache.sqlite3"]), capsys.readouterr().out
    assert code == 0 and "cooldown:  until 20" in out

    # The quota is back (as after the wait); --ignore-cooldown stands in for the clock.
    server.reconfigure(daily_quota=None)
    server.reset_stats()
    code, _, err = cli(*ONE_MARKET, *args, "--ignore-cooldown")
    assert code == 0, err
    assert server.stats()["search_requests"] == unique_valid(rows) - cached
    check_rows(rows, read_csv(tmp_path / "out.csv"))


def test_cache_commands(
    capsys: pytest.CaptureFixture[str], cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}, {"isrc": a_missing_isrc()}])
    assert cli(*ONE_MARKET, "in.csv", "-o", "out.csv", "--cache", "c.sqlite3").code == 0
    assert main(["cache", "info", "--cache", "c.sqlite3"]) == 0
    out = capsys.readouterr().out
    assert "entries:   2 (1 found, 1 not found)" in out and "cooldown:  none" in out
    assert main(["cache", "clear", "--cache", "c.sqlite3"]) == 0
    assert "cleared 2 cached results" in capsys.readouterr().out
    assert main(["cache", "info", "--cache", "missing.sqlite3"]) == 0
    assert "no cache at missing.sqlite3" in capsys.readouterr().out


# -- real processes ------------------------------------------------------------------------


def spawn(server: ServerThread, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **server.env(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "isrc_resolver", *ONE_MARKET, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_searches(server: ServerThread, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.stats()["search_requests"] < count:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.02)


def cached_count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def test_kill_9_loses_only_what_was_in_flight(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.01)
    rows = catalogue_rows(1500, seed=41, unique=1500)
    write_csv(tmp_path / "in.csv", rows)
    args = [
        "in.csv",
        "-o",
        "out.csv",
        "--cache",
        "cache.sqlite3",
        "--rate",
        "400",
        "--concurrency",
        "8",
    ]
    proc = spawn(server, tmp_path, *args)
    wait_for_searches(server, 400)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "out.csv").exists()  # no half-written output
    # The output is opened only once every answer is in: nothing was started on disk.
    assert not list(tmp_path.glob(".out.csv.*"))
    first = server.stats()["search_requests"]
    cached = cached_count(tmp_path / "cache.sqlite3")
    assert 0 < cached <= first
    # Each answer is committed as it comes, and a worker sends its next request only once
    # its answer is in: lost is at most one request or one answer per worker.
    assert first - cached <= 8

    server.reset_stats()
    rerun = spawn(server, tmp_path, *args)
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read() if rerun.stderr else ""
    assert server.stats()["search_requests"] == unique_valid(rows) - cached
    check_rows(rows, read_csv(tmp_path / "out.csv"))


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signal_writes_pending_rows_and_the_rerun_finishes(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    server = spotify_thread(latency=0.02)
    rows = catalogue_rows(2000, seed=51, unique=2000)
    write_csv(tmp_path / "in.csv", rows)
    args = ["in.csv", "-o", "out.csv", "--cache", "cache.sqlite3", "--rate", "200"]
    proc = spawn(server, tmp_path, *args, "--summary-json", "s.json")
    wait_for_searches(server, 100)
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert time.monotonic() - started < 8  # within a few seconds
    assert f"{sig.name} received" in err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == code and summary["interrupted"] == sig.name
    written = read_csv(tmp_path / "out.csv")
    assert len(written) == len(rows)
    statuses = {r["status"] for r in written}
    assert "pending" in statuses and "found" in statuses
    assert statuses <= {"found", "not_found", "invalid", "pending"}

    cached = cached_count(tmp_path / "cache.sqlite3")
    done = {r["isrc_normalized"] for r in written if r["status"] in ("found", "not_found")}
    assert cached == len(done)  # everything answered before the signal reached the cache
    server.reset_stats()
    rerun = spawn(server, tmp_path, *args)
    assert rerun.wait(timeout=120) == 0
    assert server.stats()["search_requests"] == unique_valid(rows) - cached
    check_rows(rows, read_csv(tmp_path / "out.csv"))


def test_two_runs_at_once_share_one_cache(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.005)
    rows_a = catalogue_rows(600, seed=61)
    rows_b = catalogue_rows(600, seed=62)
    write_csv(tmp_path / "a.csv", rows_a)
    write_csv(tmp_path / "b.csv", rows_b)
    common = ["--cache", "cache.sqlite3", "--rate", "500"]
    procs = [
        spawn(server, tmp_path, "a.csv", "-o", "a.out.csv", *common),
        spawn(server, tmp_path, "b.csv", "-o", "b.out.csv", *common),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    check_rows(rows_a, read_csv(tmp_path / "a.out.csv"))
    check_rows(rows_b, read_csv(tmp_path / "b.out.csv"))
    from isrc_resolver import is_valid_isrc, normalize_isrc

    everything = {n for r in rows_a + rows_b if is_valid_isrc(n := normalize_isrc(r["isrc"]))}
    assert cached_count(tmp_path / "cache.sqlite3") == len(everything)


async def test_after_the_cooldown_the_next_run_continues_where_the_first_stopped(
    tmp_path: Path,
) -> None:
    from isrc_resolver import is_valid_isrc

    now = [2_000_000.0]
    rows = catalogue_rows(120, seed=81, unique=120)
    isrcs = [r["isrc"] for r in rows]
    unique = unique_valid(rows)
    async with FakeSpotify(daily_quota=25, quota_retry_after=3_600) as server:

        async def run() -> dict[Status, int]:
            async with resolver_for(
                server,
                cache=tmp_path / "c.sqlite3",
                clock=lambda: now[0],
                fallback_markets="none",
            ) as r:
                results = await r.resolve_values(isrcs)
            counts: dict[Status, int] = {}
            for isrc, result in results.items():
                if is_valid_isrc(isrc):
                    counts[result.status] = counts.get(result.status, 0) + 1
            return counts

        first = await run()
        assert first.get(Status.RATE_LIMITED, 0) > 0
        done = unique - first[Status.RATE_LIMITED]
        before = server.stats()["search_requests"]

        now[0] += 1_800  # half-way through the cooldown: nothing is sent
        assert (await run())[Status.RATE_LIMITED] == unique - done
        assert server.stats()["search_requests"] == before

        now[0] += 1_801  # past it, and the quota is back
        server.reconfigure(daily_quota=None)
        final = await run()
        assert Status.RATE_LIMITED not in final
        assert server.stats()["search_requests"] - before == unique - done
