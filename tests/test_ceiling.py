"""The nightly job tells the truth: the allowance is a ceiling counted at the server, a
failure or a stop is never an answer, a known answer is never lost, and plan, messages,
statuses, summary and ledger agree with what the run did."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from isrc_resolver import Cache, HttpRequest, HttpResponse, MockTransport, Resolver, Status
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Catalogue

from .conftest import Cli
from .helpers import ServerThread, isrcs, read_csv, write_csv

Env = Callable[[ServerThread], None]

# Searched in this order after a miss in the US: the fake's foreign-only tracks are in one.
MARKETS = "isrc,JP,BR,NO,KR,MX,ZA,IN,AU"


def spawn(server: ServerThread, folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **server.env(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "isrc_resolver", "--rate", "1000", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_searches(server: ServerThread, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.stats()["search_requests"] < count:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)


def ledger_count(path: Path) -> int:
    with Cache(path) as cache:
        return sum(a.requests for a in cache.info().accounts)


def homed(count: int, country: str) -> list[str]:
    """ISRCs of ``country`` that the local catalogue has tracks for."""
    catalogue, out, n = Catalogue(0), [], 0
    while len(out) < count:
        isrc = f"{country}AAA24{n:05d}"
        if catalogue.tracks_of(isrc):
            out.append(isrc)
        n += 1
    return out


def cooled_down(
    cli: Cli, env: Env, spotify_thread: Callable[..., ServerThread]
) -> tuple[ServerThread, list[str]]:
    """A run stopped by a 5-request quota: the cache holds 5 answers and a cooldown."""
    server = spotify_thread(daily_quota=5, quota_retry_after=40_000)
    env(server)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(10)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--fallback-markets", "none"]
    assert cli(*args)[0] == 3
    return server, args


def summary(err: str) -> dict[str, object]:
    line = [row for row in err.splitlines() if '"event": "summary"' in row][-1]
    return dict(json.loads(line))


# -- --daily-quota is a ceiling, counted at the server --------------------------------------


@pytest.mark.parametrize("concurrency", [8, 32])
def test_a_kill_in_the_first_round_never_overspends_the_quota(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, concurrency: int
) -> None:
    server = spotify_thread(latency=0.03)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(300)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--daily-quota", "40"]
    args += ["--concurrency", str(concurrency), "--fallback-markets", "none"]
    first = spawn(server, tmp_path, *args)
    wait_for_searches(server, 12)
    first.send_signal(signal.SIGKILL)
    first.wait()
    rerun = spawn(server, tmp_path, *args)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 3, err
    sent = server.stats()["search_requests"]
    assert sent <= 40  # every request was in the ledger before it left
    assert ledger_count(tmp_path / "c.db") >= sent  # the ledger may only over-count


def test_a_kill_while_fallback_markets_are_searched_never_overspends_or_resends(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    wanted = [{"isrc": i} for i in isrcs(30, start=40_000)]
    # One run to the end, on a server of its own: what the work costs when nothing stops it.
    reference = spotify_thread(foreign=1.0)
    write_csv(tmp_path / "in.csv", wanted)
    args = ["in.csv", "-o", "out.csv", "--fallback-markets", MARKETS, "--concurrency", "4"]
    # Another account: its spending must not count against the one measured below.
    ref = spawn(reference, tmp_path, *args, "--cache", "ref.db", "--account", "reference")
    assert ref.wait(timeout=120) == 0
    needed = reference.stats()["search_requests"]
    assert needed > 2 * len(wanted)  # most tracks are found only markets later

    server = spotify_thread(foreign=1.0, latency=0.02)
    quota = needed - 10
    killed = spawn(server, tmp_path, *args, "--cache", "c.db", "--daily-quota", str(quota))
    wait_for_searches(server, len(wanted) + 40)  # well into the fallback markets
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    rerun = spawn(server, tmp_path, *args, "--cache", "c.db", "--daily-quota", str(quota))
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 3, err  # the quota is below what the work needs
    total = server.stats()["search_requests"]
    assert total <= quota
    # A search per market is a step a kill cannot undo: the rerun went on from each
    # miss's last market, so the two runs together sent no more than one run's worth.
    assert total <= needed
    rows = read_csv(tmp_path / "out.csv")
    assert {r["status"] for r in rows} <= {"found", "deferred"}
    deferred = [r for r in rows if r["status"] == "deferred"]
    assert deferred and all(r["searched"] for r in deferred)  # where it got to, kept


def test_processes_sharing_a_cache_share_one_allowance(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.02)
    procs = []
    for n in range(4):
        write_csv(tmp_path / f"in{n}.csv", [{"isrc": i} for i in isrcs(80, start=n * 1000)])
        args = [f"in{n}.csv", "-o", f"out{n}.csv", "--cache", "c.db", "--daily-quota", "100"]
        procs.append(
            spawn(server, tmp_path, *args, "--concurrency", "32", "--fallback-markets", "none")
        )
    codes = [p.wait(timeout=120) for p in procs]
    assert set(codes) <= {0, 3} and 3 in codes
    assert server.stats()["search_requests"] <= 100
    assert ledger_count(tmp_path / "c.db") >= server.stats()["search_requests"]


def test_the_ledger_and_the_summary_agree(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(80)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--daily-quota", "60"]
    code, _, err = cli(*args, "--log-format", "json", "--fallback-markets", "none")
    assert code == 3
    report = summary(err)
    assert report["requests"] == 60 == spotify.stats()["search_requests"]
    assert report["token_requests"] == spotify.stats()["token_requests"] == 1
    assert ledger_count(Path("c.db")) == 60
    # The message, the statuses and the summary count the same rows.
    rows = Counter(r["status"] for r in read_csv(Path("out.csv")))
    assert rows["deferred"] == report["deferred"] == 20
    said = [json.loads(line)["message"] for line in err.splitlines() if "reached" in line]
    assert said and "20 rows deferred" in said[0]


# -- a failure is not a miss; a known answer is never lost ---------------------------------


def _scripted(answers: Callable[[HttpRequest], HttpResponse]) -> MockTransport:
    async def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/api/token"):
            return HttpResponse(200, body=b'{"access_token": "tok", "token_type": "Bearer"}')
        return answers(request)

    return MockTransport(handler)


def _page(*items: dict[str, object]) -> HttpResponse:
    body = {"tracks": {"items": list(items), "total": len(items), "limit": 10, "offset": 0}}
    return HttpResponse(200, body=json.dumps(body).encode())


def _track(isrc: str) -> dict[str, object]:
    return {
        "id": "t" * 22,
        "name": "Song",
        "duration_ms": 200_000,
        "explicit": False,
        "track_number": 1,
        "disc_number": 1,
        "external_ids": {"isrc": isrc},
        "artists": [{"id": "a" * 22, "name": "Artist"}],
        "album": {
            "id": "b" * 22,
            "name": "Album",
            "album_type": "single",
            "release_date": "2024",
            "release_date_precision": "year",
            "total_tracks": 1,
            "artists": [{"id": "a" * 22, "name": "Artist"}],
        },
    }


async def test_a_failed_fallback_search_is_an_error_asked_again(tmp_path: Path) -> None:
    isrc = "KRA382400001"  # searched in the US first, then in KR
    healthy = [False]

    def answers(request: HttpRequest) -> HttpResponse:
        market = (request.params or {}).get("market")
        if market == "KR":
            return _page(_track(isrc)) if healthy[0] else HttpResponse(500)
        return _page()

    async def run() -> tuple[Status, tuple[str, ...], str | None, int]:
        transport = _scripted(answers)
        async with Resolver(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            api_url="https://api.example/v1",
            token_url="https://accounts.example/api/token",
            cache=tmp_path / "c.db",
            transport=transport,
            sleep=_no_sleep,
            max_retries=1,
        ) as r:
            result = await r.resolve(isrc)
        searches = sum(1 for q in transport.requests if q.url.endswith("/search"))
        return result.status, result.searched, result.error, searches

    status, searched, error, _ = await run()
    assert status is Status.ERROR and searched == ("US", "KR") and error and "500" in error
    healthy[0] = True
    status, searched, _, searches = await run()
    assert status is Status.FOUND and searched == ("US", "KR")
    assert searches == 1  # only the market that failed: the US miss was kept


def test_a_failed_title_search_is_an_error_asked_again(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, cli: Cli, env: Env
) -> None:
    server = spotify_thread(isrc_invisible=1.0)
    env(server)
    write_csv(Path("in.csv"), [{"isrc": "GBAYE0601498", "title": "x" * 10_000, "artist": "A"}])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--fallback-markets", "none"]
    server.reconfigure(fault_5xx=1.0)  # every search fails, the title search too
    code, _, _ = cli(*args, "--max-retries", "0")
    (row,) = read_csv(Path("out.csv"))
    assert code == 1 and row["status"] == "error"
    server.reconfigure(fault_5xx=0.0)
    server.reset_stats()
    assert cli(*args)[0] == 0
    assert server.stats()["search_requests"] >= 1  # asked again, not a cached miss


async def _no_sleep(_: float) -> None:
    return None


def test_refresh_under_a_budget_keeps_every_known_answer(
    cli: Cli, env: Env, spotify: ServerThread
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(20)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--fallback-markets", "none"]
    assert cli(*args)[0] == 0
    first = {r["isrc"]: r["spotify_track_id"] for r in read_csv(Path("out.csv"))}
    spotify.reset_stats()
    code, _, _ = cli(*args, "--refresh", "--max-requests", "5")
    assert code == 3 and spotify.stats()["search_requests"] == 5
    rows = read_csv(Path("out.csv"))
    assert [r["status"] for r in rows] == ["found"] * 20  # none deferred and empty
    assert {r["isrc"]: r["spotify_track_id"] for r in rows} == first


# -- a stop must not turn unfinished work into answers --------------------------------------


def test_a_stop_mid_fallback_leaves_deferred_rows_the_next_run_finishes(
    cli: Cli, env: Env, spotify_thread: Callable[..., ServerThread]
) -> None:
    server = spotify_thread(foreign=1.0)
    env(server)
    wanted = isrcs(20, start=50_000)
    write_csv(Path("in.csv"), [{"isrc": i} for i in wanted])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--fallback-markets", MARKETS]
    code, _, err = cli(*args, "--max-requests", "40")
    assert code == 3, err
    rows = read_csv(Path("out.csv"))
    assert {r["status"] for r in rows} <= {"found", "deferred"}
    deferred = [r for r in rows if r["status"] == "deferred"]
    assert deferred and all(r["searched"].startswith("US") for r in deferred)
    assert "not_found" not in {r["status"] for r in rows}
    first = server.stats()["search_requests"]
    assert cli(*args)[0] == 0
    assert {r["status"] for r in read_csv(Path("out.csv"))} == {"found"}
    # Only the markets not searched yet were asked: the two runs cost what one run costs.
    reference = spotify_thread(foreign=1.0)
    env(reference)
    assert cli(*args[:3], "--cache", "ref.db", *args[5:])[0] == 0
    assert server.stats()["search_requests"] - first <= reference.stats()["search_requests"]
    assert server.stats()["search_requests"] <= reference.stats()["search_requests"] + 4


def test_an_ignore_cooldown_run_that_is_answered_lifts_the_cooldown(
    cli: Cli, env: Env, spotify_thread: Callable[..., ServerThread]
) -> None:
    server, args = cooled_down(cli, env, spotify_thread)
    with Cache("c.db") as cache:
        assert cache.info().cooldown_until is not None
    server.reconfigure(daily_quota=None)  # the quota was over sooner than Spotify said
    assert cli(*args, "--ignore-cooldown")[0] == 0
    with Cache("c.db") as cache:
        assert cache.info().cooldown_until is None
    assert cli(*args)[0] == 0  # no --ignore-cooldown needed any more


def test_cache_clear_cooldown_ends_the_cooldown_alone(
    cli: Cli, env: Env, spotify_thread: Callable[..., ServerThread]
) -> None:
    cooled_down(cli, env, spotify_thread)
    code, out, _ = cli("cache", "clear", "--cooldown", "--cache", "c.db")
    assert code == 0 and "ended 1 cooldown" in out
    with Cache("c.db") as cache:
        info = cache.info()
    assert info.cooldown_until is None and info.entries == 5 and info.accounts[0].requests >= 5


# -- plan equals the run ----------------------------------------------------------------------


def test_plan_counts_what_the_run_sends_for_misses_with_markets_left(
    cli: Cli, env: Env, spotify_thread: Callable[..., ServerThread]
) -> None:
    server = spotify_thread(region_locked=1.0)
    env(server)
    wanted = homed(30, "GB")
    write_csv(Path("in.csv"), [{"isrc": i} for i in wanted])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db"]
    assert cli(*args, "--fallback-markets", "none")[0] == 0  # misses, searched in the US
    forecast = json.loads(cli("plan", *args, "--format", "json").out)
    assert forecast["partial"] == len(wanted)
    assert forecast["fresh"] + forecast["stale"] + forecast["new"] + forecast["partial"] == len(
        wanted
    )
    server.reset_stats()
    assert cli(*args)[0] == 0
    assert server.stats()["search_requests"] == forecast["requests"] == len(wanted)
    # plan takes a run's own options, --format parquet included.
    assert cli("plan", *args, "--format", "parquet").code == 0


def test_plan_shows_an_active_cooldown(
    cli: Cli, env: Env, spotify_thread: Callable[..., ServerThread]
) -> None:
    server, args = cooled_down(cli, env, spotify_thread)
    forecast = json.loads(cli("plan", *args, "--format", "json").out)
    assert forecast["cooldown_until"] and forecast["requests"] == 0
    assert "cooldown:  until" in cli("plan", *args).out
    server.reset_stats()
    assert cli(*args)[0] == 3 and server.stats()["search_requests"] == forecast["requests"]


# -- the library and notebooks --------------------------------------------------------------


def test_a_stopped_dataframe_run_says_so(env: Env, spotify: ServerThread) -> None:
    import pandas as pd

    from isrc_resolver import resolve_dataframe_sync

    env(spotify)
    frame = pd.DataFrame({"isrc": isrcs(12)})
    with pytest.warns(RuntimeWarning, match="the run stopped early: rows=12"):
        out = resolve_dataframe_sync(frame, max_requests=5, rate=1000, fallback_markets="none")
    report = out.attrs["isrc_resolver"]
    assert (report["found"], report["deferred"], report["requests"]) == (5, 7, 5)
    assert report["budget_spent"] == "max_requests" and report["exit_code"] == 3
    assert list(out["status"]).count("deferred") == 7


def test_library_ages_are_days_as_on_the_command_line() -> None:
    from datetime import timedelta

    from isrc_resolver import Settings

    days = Settings.build("id", "secret", environ={}, max_age=30, not_found_max_age=0.5)
    delta = Settings.build("id", "secret", environ={}, max_age=timedelta(days=30))
    assert days.max_age == delta.max_age == 30 * 86_400 and days.not_found_max_age == 43_200


def test_a_second_cache_of_the_account_sees_the_first_ones_spending(
    capsys: pytest.CaptureFixture[str], cli: Cli, env: Env, spotify: ServerThread
) -> None:
    """A notebook on one cache and a nightly job on another: one developer account, one
    allowance."""
    env(spotify)
    write_csv(Path("a.csv"), [{"isrc": i} for i in isrcs(8)])
    write_csv(Path("b.csv"), [{"isrc": i} for i in isrcs(8, start=3000)])
    one = ["--fallback-markets", "none", "--daily-quota", "10"]
    assert cli("a.csv", "-o", "a.out.csv", "--cache", "notebook.db", *one)[0] == 0
    spotify.reset_stats()
    code, _, err = cli("b.csv", "-o", "b.out.csv", "--cache", "nightly.db", *one)
    assert code == 3  # 8 of the 10 were spent through the other cache
    assert spotify.stats()["search_requests"] == 2
    assert "notebook.db counts 8 requests of this account in the last 24 hours" in err
