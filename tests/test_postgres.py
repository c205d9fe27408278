"""The cache on PostgreSQL, end to end through the command line against a real server
(tests/pgserver.py) and the local Spotify: several "hosts" (processes with home folders of
their own) share the answers, one ledger and the leases; the password shows nowhere; a
database that is down is the environment's failure, named by host and port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from isrc_resolver import Cache
from isrc_resolver.database import DatabaseURL

from .helpers import ServerThread, isrcs, read_csv, write_csv
from .pgserver import PASSWORD, PgServer, find_binaries

ONE = ["--fallback-markets", "none", "--rate", "1000"]


def host(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of a process on another host: a home and state folders of its own."""
    home = tmp_path / name
    for sub in ("home", "cache", "state", "config", "work"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home / "home"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }


def spawn(
    server: ServerThread, where: dict[str, str], folder: Path, *args: str, url: str | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, **server.env(), **where, "PYTHONUNBUFFERED": "1"}
    env.pop("ISRC_RESOLVER_CACHE", None)
    if url is not None:
        env["ISRC_RESOLVER_CACHE"] = url
    return subprocess.Popen(
        [sys.executable, "-m", "isrc_resolver", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(
    server: ServerThread, where: dict[str, str], folder: Path, *args: str, url: str | None = None
) -> tuple[int, str, str]:
    proc = spawn(server, where, folder, *args, url=url)
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def requests_in(url: str) -> int:
    with Cache(url) as cache:
        return sum(a.requests for a in cache.info().accounts)


def secrets_in(text: str) -> list[str]:
    return [s for s in (PASSWORD, quote(PASSWORD, safe="")) if s in text]


# -- several hosts, one database -----------------------------------------------------


def test_a_rerun_from_another_host_sends_no_request(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(60)])
    first, second = host(tmp_path, "a"), host(tmp_path, "b")
    code, _, err = run(spotify, first, tmp_path, "in.csv", "-o", "a.csv", *ONE, url=pg_url)
    assert code == 0, err
    sent = spotify.stats()["search_requests"]
    assert sent == 60
    code, _, err = run(spotify, second, tmp_path, "in.csv", "-o", "b.csv", *ONE, url=pg_url)
    assert code == 0, err
    assert spotify.stats()["search_requests"] == sent  # nothing asked again
    assert read_csv(tmp_path / "a.csv") == read_csv(tmp_path / "b.csv")
    assert requests_in(pg_url) == 60
    # No file of either host names the database: the ledger is the database's.
    for where in (first, second):
        assert not list(Path(where["XDG_CACHE_HOME"]).rglob("*.sqlite3"))


def test_four_hosts_on_one_account_keep_one_ceiling_and_ask_no_isrc_twice(
    spotify_thread: Callable[..., ServerThread], pg_url: str, pg_server: PgServer, tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.02)
    shared = isrcs(120)  # every host's input holds these, and 40 of its own
    procs, peak = [], 0
    for n in range(4):
        folder = tmp_path / f"host{n}"
        folder.mkdir()
        own = isrcs(40, start=1000 * (n + 1))
        write_csv(folder / "in.csv", [{"isrc": i} for i in shared + own])
        args = ["in.csv", "-o", "out.csv", "--daily-quota", "100", "--concurrency", "32", *ONE]
        procs.append(spawn(server, host(tmp_path, f"h{n}"), folder, *args, url=pg_url))
    while any(p.poll() is None for p in procs):
        peak = max(peak, pg_server.connections())
        time.sleep(0.05)
    codes = [p.wait() for p in procs]
    errs = [p.stderr.read() if p.stderr else "" for p in procs]
    assert set(codes) <= {0, 3} and 3 in codes, errs
    stats = server.stats()
    assert stats["search_requests"] <= 100
    assert stats["search_requests"] == stats["unique_isrcs_searched"]  # no ISRC twice
    assert requests_in(pg_url) >= stats["search_requests"]
    # Four processes of 32 workers each: a few connections each, far from the 100 allowed.
    assert peak <= 4 * 3 + 1, peak


def test_a_run_killed_and_resumed_keeps_the_ceiling(
    spotify_thread: Callable[..., ServerThread], pg_url: str, tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.03)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(300)])
    args = ["in.csv", "-o", "out.csv", "--daily-quota", "40", "--concurrency", "16", *ONE]
    where = host(tmp_path, "a")
    first = spawn(server, where, tmp_path, *args, url=pg_url)
    deadline = time.monotonic() + 60
    while server.stats()["search_requests"] < 12:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    code, _, err = run(server, host(tmp_path, "b"), tmp_path, *args, url=pg_url)
    assert code == 3, err
    assert server.stats()["search_requests"] <= 40
    assert requests_in(pg_url) >= server.stats()["search_requests"]
    rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 300


def test_a_quota_stop_on_one_host_holds_the_others_until_the_cooldown_is_cleared(
    spotify_thread: Callable[..., ServerThread], pg_url: str, tmp_path: Path
) -> None:
    server = spotify_thread(daily_quota=5, quota_retry_after=40_000)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(10)])
    args = ["in.csv", "-o", "out.csv", *ONE]
    code, _, err = run(server, host(tmp_path, "a"), tmp_path, *args, url=pg_url)
    assert code == 3, err
    server.reconfigure(daily_quota=None)
    server.reset_stats()
    other = host(tmp_path, "b")
    code, _, err = run(server, other, tmp_path, *args, url=pg_url)
    assert code == 3 and "cooling down after a quota stop" in err
    assert server.stats()["search_requests"] == 0
    code, out, err = run(server, other, tmp_path, "cache", "clear", "--cooldown", url=pg_url)
    assert code == 0 and "ended 1 cooldown" in out, err
    code, _, err = run(server, other, tmp_path, *args, url=pg_url)
    assert code == 0, err
    assert server.stats()["search_requests"] == 5  # the five the first host never had


# -- the password shows nowhere ------------------------------------------------------


def test_the_password_appears_nowhere(spotify: ServerThread, pg_url: str, tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(20)])
    where = host(tmp_path, "a")
    said: list[str] = []
    for args in (
        ["in.csv", "-o", "out.csv", "--cache", pg_url, "--summary-json", "s.json", "-v", *ONE],
        ["in.csv", "-o", "out.xlsx", "--report", "r.html", "--log-format", "json", "-v", *ONE],
        ["in.csv", "-o", "out.parquet", "--candidates", "c.csv", "--changes", "ch.csv", *ONE],
        ["plan", "in.csv", "--format", "json"],
        ["cache", "info"],
        ["cache", "info", "--format", "json"],
        ["cache", "export", "e.csv"],
        ["cache", "backup", "b.sqlite3"],
        ["cache", "history", isrcs(1)[0]],
    ):
        code, out, err = run(spotify, where, tmp_path, *args, url=pg_url)
        assert code == 0, (args, err)
        said += [out, err]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["cache"] == DatabaseURL.parse(pg_url).masked  # type: ignore[union-attr]
    assert "***" in summary["cache"]
    assert not secrets_in("\n".join(said))
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert not secrets_in(path.read_bytes().decode("utf-8", "replace")), path
            assert not secrets_in(str(path))
    # A URL that does not parse is refused masked too.
    broken = pg_url.replace("@127.0.0.1:", "@127.0.0.1:99999999")
    code, out, err = run(spotify, where, tmp_path, "in.csv", "-o", "x.csv", "--cache", broken)
    assert code == 2 and "***" in err and not secrets_in(out + err)


# -- the database down ---------------------------------------------------------------


def test_a_database_that_is_down_is_exit_1_naming_host_and_port(
    spotify: ServerThread, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://isrc:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/cache"
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(5)])
    code, out, err = run(
        spotify, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "out.csv", *ONE, url=url
    )
    assert code == 1, err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err
    assert not secrets_in(out + err)
    assert not (tmp_path / "out.csv").exists()
    assert spotify.stats()["search_requests"] == 0  # checked before the first request
    for command in (["cache", "info"], ["plan", "in.csv"], ["cache", "export", "e.csv"]):
        code, out, err = run(spotify, host(tmp_path, "a"), tmp_path, *command, url=url)
        assert code == 1 and f"127.0.0.1:{port}" in err and "Traceback" not in err, command


def test_a_database_that_goes_down_during_the_run_is_exit_1(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    binaries = find_binaries()
    assert binaries is not None
    own = PgServer(binaries).start()  # a server of this test's own, to stop
    try:
        url = own.new_database()
        server = spotify_thread(latency=0.05)
        write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(400)])
        proc = spawn(
            server, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "out.csv",
            "--concurrency", "4", *ONE, url=url,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while server.stats()["search_requests"] < 20:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        own.stop()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert f"127.0.0.1:{own.port}" in err and "Traceback" not in err
        assert not secrets_in(err)
        # The rows would come from the database: no output rather than a wrong one.
        assert not (tmp_path / "out.csv").exists()
    finally:
        own.stop()


# -- the schema, export and copy -----------------------------------------------------


def test_a_newer_schema_is_refused_untouched(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    Cache(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(5)])
    code, _, err = run(spotify, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "o.csv", url=pg_url)
    assert code == 2 and "newer isrc-resolver (schema 99" in err
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    assert row == ("99",)
    assert spotify.stats()["search_requests"] == 0


def test_cache_export_is_the_same_on_both_backends(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(80)])
    where = host(tmp_path, "a")
    for cache in ("c.sqlite3", pg_url):
        code, _, err = run(
            spotify, where, tmp_path, "in.csv", "-o", "o.csv", "--cache", cache, *ONE
        )
        assert code == 0, err
    for cache, target in (("c.sqlite3", "file.csv"), (pg_url, "db.csv")):
        code, _, err = run(spotify, where, tmp_path, "cache", "export", target, "--cache", cache)
        assert code == 0, err
    file_rows, db_rows = read_csv(tmp_path / "file.csv"), read_csv(tmp_path / "db.csv")
    assert len(file_rows) == 80
    drop = {"resolved_at", "cached_at"}

    def same(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in drop} for r in rows]

    assert same(file_rows) == same(db_rows)


def test_cache_copy_carries_answers_and_the_ledger(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(50)])
    where = host(tmp_path, "a")
    code, _, err = run(
        spotify, where, tmp_path, "in.csv", "-o", "o.csv", "--cache", "c.sqlite3", *ONE
    )
    assert code == 0, err
    with Cache(tmp_path / "c.sqlite3") as cache:
        sent = sum(a.requests for a in cache.info().accounts)
        entries = cache.info().entries
    code, out, err = run(spotify, where, tmp_path, "cache", "copy", "c.sqlite3", pg_url)
    assert code == 0 and "50 answers" in out, err
    assert not secrets_in(out + err)
    # Copying again changes nothing: the ledger is not counted twice.
    code, out, err = run(spotify, where, tmp_path, "cache", "copy", "c.sqlite3", pg_url)
    assert code == 0, err
    with Cache(pg_url) as cache:
        assert cache.info().entries == entries
        assert sum(a.requests for a in cache.info().accounts) == sent
    spotify.reset_stats()
    code, _, err = run(
        spotify, host(tmp_path, "b"), tmp_path, "in.csv", "-o", "p.csv", *ONE, url=pg_url
    )
    assert code == 0, err
    assert spotify.stats()["search_requests"] == 0
    assert read_csv(tmp_path / "o.csv") == read_csv(tmp_path / "p.csv")
    # And back: a database copied into a file is a cache the file backend reads.
    code, _, err = run(spotify, where, tmp_path, "cache", "copy", pg_url, "back.sqlite3")
    assert code == 0, err
    with Cache(tmp_path / "back.sqlite3") as cache:
        assert cache.info().entries == entries


def test_a_database_with_another_programs_results_table_is_refused(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, total NUMERIC)")
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(5)])
    code, _, err = run(spotify, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "o.csv", url=pg_url)
    assert code == 2 and "not an isrc-resolver cache" in err, err
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert tables == {"results"}  # nothing created beside it
    assert spotify.stats()["search_requests"] == 0


def test_the_cache_url_may_come_from_the_env_file(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"ISRC_RESOLVER_CACHE={pg_url}\n")
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(10)])
    code, _, err = run(spotify, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "o.csv", *ONE)
    assert code == 0, err
    assert requests_in(pg_url) == 10
    code, out, err = run(spotify, host(tmp_path, "a"), tmp_path, "cache", "info")
    assert code == 0 and "entries:   10" in out and "***" in out, out + err


async def test_the_library_takes_the_url(spotify: ServerThread, pg_url: str) -> None:
    from isrc_resolver import Resolver, Status
    from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    wanted = isrcs(12)
    options: dict[str, Any] = dict(
        api_url=spotify.api_url, token_url=spotify.token_url, rate=1000, cache=pg_url,
        fallback_markets="none",
    )  # fmt: skip
    for _ in range(2):
        async with Resolver(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, **options) as r:
            assert "***" in repr(r) and PASSWORD not in repr(r)
            got = {res.isrc: res.status async for res in r.resolve_many(wanted)}
        assert set(got) == set(wanted) and Status.ERROR not in got.values()
    assert spotify.stats()["search_requests"] == 12  # the second time from the database


def test_both_stores_answers_plan_and_clear_on_the_database(
    spotify: ServerThread, pg_url: str, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(30)])
    both = ["--providers", "spotify,deezer", *ONE]
    code, _, err = run(
        spotify, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "a.csv", *both, url=pg_url
    )
    assert code == 0, err
    asked = spotify.stats()["deezer"]["requests"]
    assert asked == 30 and spotify.stats()["search_requests"] == 30
    # Another host: neither store is asked again, and plan counts nothing to send.
    other = host(tmp_path, "b")
    code, out, err = run(
        spotify, other, tmp_path, "plan", "in.csv", "--format", "json", *both, url=pg_url
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["fresh"] == 30 and plan["needed"] == 0
    assert plan["stores"]["deezer"]["requests"] == 0
    code, _, err = run(spotify, other, tmp_path, "in.csv", "-o", "b.csv", *both, url=pg_url)
    assert code == 0, err
    assert spotify.stats()["deezer"]["requests"] == asked
    assert spotify.stats()["search_requests"] == 30
    assert read_csv(tmp_path / "a.csv") == read_csv(tmp_path / "b.csv")
    code, out, err = run(spotify, other, tmp_path, "cache", "clear", url=pg_url)
    assert code == 0 and "cleared 30 cached results" in out, err
    with Cache(pg_url) as cache:
        assert cache.info().entries == 0
        # The ledger stays: Spotify's 30 searches and Deezer's 30 look-ups, each its own.
        assert sorted(a.requests for a in cache.info().accounts) == [30, 30]


def test_a_url_the_server_refuses_is_exit_2_naming_what_to_fix(
    spotify: ServerThread, pg_server: PgServer, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(5)])
    wrong = pg_server.url().replace(quote(PASSWORD, safe=""), "not-the-password")
    for url in (wrong, pg_server.url("no_such_database")):
        code, out, err = run(
            spotify, host(tmp_path, "a"), tmp_path, "in.csv", "-o", "o.csv", url=url
        )
        assert code == 2, err
        assert "refused this URL" in err and f"127.0.0.1:{pg_server.port}" in err
        assert "not-the-password" not in err and not secrets_in(out + err)
        assert "Traceback" not in err and not (tmp_path / "o.csv").exists()
    assert spotify.stats()["search_requests"] == 0


def test_without_the_driver_the_advice_is_to_install_the_extra(
    spotify: ServerThread, env: Callable[[ServerThread], None], cli: Any,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as in an install without the extra
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    url = "postgresql://u:not-shown@127.0.0.1:5432/db"
    code, _, err = cli("in.csv", "-o", "o.csv", "--cache", url)
    assert code == 2 and "pip install 'isrc-resolver[postgresql]'" in err
    assert "not-shown" not in err and not (tmp_path / "o.csv").exists()
    assert spotify.stats()["total_requests"] == 0
