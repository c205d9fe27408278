"""The daily quota as a budget: a ledger per account, ``plan``, scoping, and each ISRC asked
once (in one process and across processes), end to end against the local server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from isrc_resolver import Cache, Status
from isrc_resolver.cli import main
from isrc_resolver.fake import DEMO_CLIENT_ID, FakeSpotify

from .helpers import (
    ServerThread,
    age_cache,
    cache_file,
    check_rows,
    isrcs,
    read_csv,
    resolver_for,
    write_csv,
)
from .test_nightly import spawn

Env = Callable[[ServerThread], None]
DAY = 86_400.0


def summary(err: str) -> dict[str, object]:
    """The JSON summary line a --log-format json run ends with."""
    last = json.loads(err.strip().splitlines()[-1])
    assert last["event"] == "summary"
    return dict(last)


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, int]:
    capsys.readouterr()
    assert main(["plan", *args, "--format", "json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_daily_quota_stops_before_the_429_across_two_runs(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    spotify.reconfigure(daily_quota=30)  # Spotify's own count: one request more is a 429
    wanted = isrcs(50, start=20_000)
    write_csv(Path("in.csv"), [{"isrc": i} for i in wanted])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--rate", "1000"]
    quota = ["--daily-quota", "30", "--concurrency", "8", "--log-format", "json"]
    assert main([*args, *quota]) == 3
    err = capsys.readouterr().err
    assert "--daily-quota reached: 20 rows deferred" in err
    assert summary(err)["budget_spent"] == "daily_quota"
    assert spotify.stats()["search_requests"] == 30
    assert (
        sorted(r["status"] for r in read_csv(Path("out.csv"))) == ["deferred"] * 20 + ["found"] * 30
    )
    # The second run the same day finds the ledger full: it sends nothing at all.
    assert main([*args, *quota]) == 3
    assert spotify.stats()["search_requests"] == 30
    assert spotify.stats()["quota_exceeded"] == 0  # never ran into Spotify's 429
    # cache info shows the account's last 24 hours.
    capsys.readouterr()
    assert main(["cache", "info", "--cache", "c.sqlite3"]) == 0
    out = capsys.readouterr().out
    assert f"account:   {DEMO_CLIENT_ID}@http://127.0.0.1/v1: 30 requests in the last 24 h" in out
    assert "the oldest leaves the window at 20" in out


async def test_the_ledger_window_rolls_and_counts_every_run(tmp_path: Path) -> None:
    """The same account over several runs and days, through the library with a clock."""
    now = [1_800_000_000.0]
    wanted = isrcs(25, start=21_000)
    async with FakeSpotify() as server:

        async def run(part: list[str]) -> tuple[int, list[Status]]:
            async with resolver_for(
                server, cache=tmp_path / "c.sqlite3", clock=lambda: now[0], daily_quota=10
            ) as r:
                statuses = [res.status async for res in r.resolve_many(part)]
                return r.client.stats.api_requests, statuses

        sent, statuses = await run(wanted[:15])
        assert sent == 10 and statuses.count(Status.DEFERRED) == 5
        now[0] += 12 * 3600  # half a day later: the same 24 hours
        assert await run(wanted[:15]) == (0, [*statuses])
        now[0] += 12 * 3600 + 61  # the first run's minute has left the window
        sent, statuses = await run(wanted)
        assert sent == 10 and statuses.count(Status.FOUND) == 20
        cache = Cache(tmp_path / "c.sqlite3", clock=lambda: now[0])
        (account,) = cache.info().accounts
        assert account.requests == 10
        cache.close()


async def test_a_run_waits_for_yesterdays_requests_to_leave_the_window(tmp_path: Path) -> None:
    """A nightly run at the same time as yesterday's finds yesterday's requests still
    counted: it waits (up to max_wait) for their minute to leave the window, no longer."""
    now = [1_800_000_000.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes only when the code waits
        waits.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    async with FakeSpotify() as server:

        async def night(part: list[str], **options: float) -> list[Status]:
            async with resolver_for(
                server,
                cache=tmp_path / "c.sqlite3",
                clock=lambda: now[0],
                sleep=sleep,
                daily_quota=10,
                **options,
            ) as r:
                return [res.status async for res in r.resolve_many(part)]

        assert await night(isrcs(10, start=21_500)) == [Status.FOUND] * 10
        now[0] += DAY - 45  # tonight's run starts 45 s earlier in the day than yesterday's
        waits.clear()
        # max_wait below the 46 s it would take: nothing is sent, all deferred.
        assert await night(isrcs(10, start=21_600), max_wait=30) == [Status.DEFERRED] * 10
        assert server.stats()["search_requests"] == 10 and not any(w >= 30 for w in waits)
        assert await night(isrcs(10, start=21_600)) == [Status.FOUND] * 10
        assert 45 <= max(waits) <= 46  # waited once for yesterday's requests to leave
        assert server.stats()["search_requests"] == 20


def test_stale_plus_new_under_a_quota_for_the_new_resolves_all_the_new(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    old, new = isrcs(40, start=22_000), isrcs(10, start=23_000)
    write_csv(Path("old.csv"), [{"isrc": i} for i in old])
    args = ["-o", "out.csv", "--cache", "c.sqlite3", "--rate", "1000", "--concurrency", "8"]
    assert main(["old.csv", *args]) == 0
    age_cache(Path("c.sqlite3"), days=31)  # every answer past the 30 days of --max-age
    write_csv(Path("in.csv"), [{"isrc": i} for i in old + new])
    stale = ["--log-format", "json"]
    # The ledger holds the first run's 40: a daily quota of 50 leaves room for 10.
    assert plan(capsys, "in.csv", *args, *stale, "--daily-quota", "50")["room_tonight"] == 10
    assert main(["in.csv", *args, *stale, "--daily-quota", "50"]) == 3
    report = summary(capsys.readouterr().err)
    assert (report["stale"], report["deferred"], report["rate_limited"]) == (40, 0, 0)
    rows = {r["isrc"]: r for r in read_csv(Path("out.csv"))}
    assert all(rows[i]["status"] == "found" for i in old + new)
    assert spotify.stats()["search_requests"] == 40 + 10  # the second run asked the new only


def test_plan_sends_nothing_and_counts_what_the_run_sends(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    old, new = isrcs(20, start=24_000), isrcs(7, start=25_000)
    write_csv(Path("old.csv"), [{"isrc": i} for i in old])
    common = ["--cache", "c.sqlite3", "--rate", "1000"]
    assert main(["old.csv", "-o", "old.out.csv", *common]) == 0
    values = [*old, *new, old[0], new[0].lower(), "not an isrc", ""]
    write_csv(Path("in.csv"), [{"isrc": v} for v in values])
    spotify.reset_stats()
    forecast = plan(capsys, "in.csv", *common, "--daily-quota", "5")
    assert spotify.stats()["search_requests"] == 0 and spotify.stats()["token_requests"] == 0
    assert forecast == {
        "rows": 31,
        "unique": 27,
        "invalid": 2,
        "duplicates": 2,
        "fresh": 20,
        "stale": 0,
        "new": 7,
        "partial": 0,
        "needed": 7,
        "needed_max": 7,
        # The first run's 20 are in the ledger: no room tonight; 7 take two nights of 5.
        "requests": 0,
        "requests_max": 0,
        "nights": 2,
        "daily_quota": 5,
        "used_24h": 20,
        "room_tonight": 0,
        "cooldown_until": None,
        "overrides": 0,
        "override_lookups": 0,
        "stores": {},  # no other store is asked (providers: spotify)
    }
    text = main(["plan", "in.csv", *common]), capsys.readouterr().out
    assert text[0] == 0 and "needed:    7 for a full run" in text[1]
    assert "requests:  7 by a run now" in text[1] and "nights:    1" in text[1]
    assert main(["in.csv", "-o", "out.csv", *common]) == 0
    assert spotify.stats()["search_requests"] == forecast["needed"] == 7
    # And stale answers count as requests too.
    age_cache(cache_file(common), days=31)  # every answer past the 30 days of --max-age
    later = plan(capsys, "in.csv", *common)
    assert (later["fresh"], later["stale"], later["requests"]) == (0, 27, 27)


def test_plan_without_credentials_still_counts(
    capsys: pytest.CaptureFixture[str], env: Env, tmp_path: Path
) -> None:
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(3)])
    forecast = plan(capsys, "in.csv", "--cache", "new.sqlite3", "--daily-quota", "2")
    # Without credentials the ledger is not read: the quota alone bounds tonight.
    assert (forecast["new"], forecast["needed"], forecast["nights"]) == (3, 3, 2)
    assert forecast["requests"] == 2
    assert forecast["used_24h"] is None
    assert main(["plan", "missing.csv"]) == 2
    assert "missing.csv" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["plan"], []], ids=["plan", "run"])
def test_a_daily_quota_without_a_ledger_is_refused(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, command: list[str]
) -> None:
    """Three runs with --no-cache --daily-quota 5 once sent 15: nothing kept count."""
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(3)])
    args = [*command, "in.csv", "-o", "out.csv", "--no-cache", "--daily-quota", "5"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--daily-quota needs a cache" in err and "Remove --no-cache" in err
    assert spotify.stats()["total_requests"] == 0


def test_a_quota_stop_for_one_app_does_not_block_another(
    capsys: pytest.CaptureFixture[str],
    env: Env,
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
) -> None:
    app_a = spotify_thread(daily_quota=5, quota_retry_after=40_000)
    app_b = spotify_thread(client_id="another-app")
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(12, start=26_000)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--rate", "1000"]
    env(app_a)
    assert main(args) == 3 and "daily quota is used up" in capsys.readouterr().err
    assert main(args) == 3 and "cooling down" in capsys.readouterr().err  # A waits ...
    env(app_b)
    assert main(args) == 0  # ... B does not: its account has no cooldown
    assert {r["status"] for r in read_csv(Path("out.csv"))} == {"found"}
    assert app_b.stats()["search_requests"] == 12 - 5  # A's answers were kept and used


def test_demo_answers_are_never_served_to_a_real_run(
    capsys: pytest.CaptureFixture[str], env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    """--demo --cache PATH keys its answers by the local server; a run against another
    API (here a second server standing in for Spotify) asks for itself."""
    assert main(["--demo", "-o", "demo.csv", "--cache", "c.sqlite3", "-q"]) == 0
    demo = {r["isrc_normalized"] for r in read_csv(Path("demo.csv")) if r["status"] == "found"}
    write_csv(Path("in.csv"), [{"isrc": i} for i in sorted(demo)])
    env(spotify)
    real_api = ["--api-url", spotify.api_url.replace("127.0.0.1", "localhost")]
    capsys.readouterr()
    run = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--log-format", "json"]
    assert main([*run, *real_api]) == 0
    report = summary(capsys.readouterr().err)
    answered = report["found"] + report["not_found"]  # type: ignore[operator]
    assert (report["cached"], answered) == (0, len(demo))  # all asked again


def test_a_version_1_cache_keeps_its_answers(
    env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    """Answers cached by the first release (variant without API and strategy) are read as
    Spotify's; its single cooldown holds every account until it ends."""
    db = sqlite3.connect(tmp_path / "old.sqlite3")
    db.executescript(
        "CREATE TABLE results (isrc TEXT NOT NULL, variant TEXT NOT NULL, status TEXT NOT NULL,"
        " track TEXT, match_count INTEGER, fetched_at REAL NOT NULL, PRIMARY KEY (isrc, variant));"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    )
    db.execute(
        "INSERT INTO results VALUES (?, 'market=-;prefer=exact', 'not_found', NULL, 0, ?)",
        ("QZAAA2400001", time.time()),
    )
    db.execute("INSERT INTO meta VALUES ('cooldown_until', ?)", (repr(time.time() + 3600),))
    db.commit()
    db.close()
    cache = Cache(tmp_path / "old.sqlite3")
    hit = cache.lookup(
        ["QZAAA2400001"],
        "api=https://api.spotify.com/v1;market=-;prefer=exact;search=isrc",
        max_age=DAY,
        not_found_max_age=DAY,
    )
    assert hit["QZAAA2400001"].status is Status.NOT_FOUND
    assert cache.cooldown_until("anyone@anywhere") is not None
    cache.close()


async def test_one_process_never_asks_an_isrc_in_flight_twice(tmp_path: Path) -> None:
    wanted = isrcs(30, start=27_000)
    async with FakeSpotify(latency=0.02) as server:
        for cache in (None, tmp_path / "c.sqlite3"):
            server.reset_stats()
            async with resolver_for(server, cache=cache, concurrency=4) as r:

                async def collect(part: list[str]) -> dict[str, Status]:
                    return {res.isrc: res.status async for res in r.resolve_many(part)}

                first, second = await asyncio.gather(collect(wanted[:20]), collect(wanted[10:]))
            assert set(first.values()) == set(second.values()) == {Status.FOUND}
            assert len(first) == len(second) == 20
            assert server.stats()["search_requests"] == 30


def test_two_processes_on_one_cache_send_each_isrc_once(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.01)
    rows = [{"isrc": i} for i in isrcs(300, start=28_000)]
    write_csv(tmp_path / "in.csv", rows)
    common = ["--cache", "cache.sqlite3", "--rate", "400", "--concurrency", "4"]
    procs = [spawn(server, tmp_path, "in.csv", "-o", f"out{n}.csv", *common) for n in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert server.stats()["search_requests"] == 300  # each ISRC once, between the two
    for n in (1, 2):
        check_rows(rows, read_csv(tmp_path / f"out{n}.csv"))


async def test_a_killed_process_lease_expires(tmp_path: Path) -> None:
    """A lease whose owner cannot be checked (another host) holds until it expires."""
    now = [1_900_000_000.0]
    wanted = isrcs(3, start=29_000)
    async with FakeSpotify() as server:
        async with resolver_for(server, cache=tmp_path / "c.sqlite3", clock=lambda: now[0]) as r:
            variant = r.settings.variant
        cache = Cache(tmp_path / "c.sqlite3", clock=lambda: now[0])
        claimed, _ = cache.claim(wanted, variant, "elsewhere:1:x", ttl=300, answered_since=0)
        assert claimed == wanted
        cache.close()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:  # the clock moves while we wait
            slept.append(seconds)
            now[0] += seconds * 100

        async with resolver_for(
            server, cache=tmp_path / "c.sqlite3", clock=lambda: now[0], sleep=sleep
        ) as r:
            statuses = [res.status async for res in r.resolve_many(wanted)]
        assert statuses == [Status.FOUND] * 3
        assert slept and sum(slept) * 100 >= 300  # it waited for the lease, then asked
        assert server.stats()["search_requests"] == 3


async def test_the_last_request_taken_while_another_worker_queued_is_budget_spent() -> None:
    """Workers queue for the lock to reserve; by the time the last one gets it, the others
    may have taken every request --max-requests allows: that is BudgetSpent (exit 3), not
    an internal error (it was an AssertionError, exit 70, seen in a run with a report)."""
    from isrc_resolver.errors import BudgetSpent
    from isrc_resolver.http.budget import Budget, Grant

    class Ledger:
        async def reserve(self, wanted: int, quota: int | None) -> Grant:
            await asyncio.sleep(0)  # the others queue meanwhile
            return Grant(wanted, 1, wanted, None)

        async def give_back(self, count: int, second: int) -> None:
            return None

    budget = Budget(max_requests=2, ledger=Ledger(), block=1)
    outcomes = await asyncio.gather(
        *(budget.take_or_wait(0.0) for _ in range(3)), return_exceptions=True
    )
    assert outcomes[:2] == [None, None]
    assert isinstance(outcomes[2], BudgetSpent)
    assert budget.spent == 2
