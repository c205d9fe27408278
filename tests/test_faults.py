"""Nothing of the user's is destroyed, and the machine's failures are told as such.

The files: a file that is not a cache, a newer cache, an output that is the cache, a
damaged cache set aside, never unlinked under a live holder. The machine: full disks
(a real tmpfs where this machine lets a test mount one; an injected ENOSPC where not),
read-only files, locks, closed pipes: exit 1 or 2, one line naming the path and the cause,
no traceback, and the old output kept. The rows: Parquet values as they were, one
consistent input file, cells of any size. And text from outside shown escaped in logs.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isrc_resolver import Cache
from isrc_resolver.cli import main

from .conftest import Cli
from .helpers import ServerThread, catalogue_rows, isrcs, read_csv, write_csv

Env = Callable[[ServerThread], None]


def sent(server: ServerThread) -> int:
    return int(server.stats()["total_requests"])


def one_error_line(err: str) -> str:
    """The run's message: exactly one ERROR line and no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


# -- a small disk of our own --------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``mount(kib)``: a folder on a tmpfs of that size, which fills for real. Needs root
    (as CI runs); elsewhere the test is skipped, and the same paths are covered by the
    injected errors below."""
    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


# -- files that are not ours to destroy ----------------------------------------------------


def test_cache_clear_never_touches_a_file_that_is_not_a_cache(cli: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "in.csv", catalogue_rows(20, seed=3))
    before = csv.read_bytes()
    code, out, err = cli("cache", "clear", "--cache", str(csv))
    assert code == 2
    assert "is not an isrc-resolver cache (not a SQLite file); nothing in it was changed" in err
    assert "cleared" not in out and csv.read_bytes() == before
    # Nor does a run, which says so before any request.
    code, _, err = cli(str(csv), "-o", str(tmp_path / "out.csv"), "--cache", str(csv))
    assert code == 2 and csv.read_bytes() == before


def test_another_programs_sqlite_file_is_not_a_cache(cli: Cli, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.db"
    with sqlite3.connect(theirs) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    before = theirs.read_bytes()
    code, _, err = cli("cache", "clear", "--cache", str(theirs))
    assert code == 2 and "a SQLite database but not an isrc-resolver cache" in err
    assert theirs.read_bytes() == before


def test_an_output_that_is_the_cache_is_refused_before_any_request(
    cli: Cli, env: Env, spotify: ServerThread
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(5)])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.db")[0] == 0
    before = Path("c.db").read_bytes()
    spotify.reset_stats()
    for target in ("c.db", "c.db-wal", "tokens.json"):
        code, _, err = cli("in.csv", "-o", target, "--format", "csv", "--cache", "c.db")
        assert code == 2, err
        assert "is the same file as" in one_error_line(err) and "--cache" in err
    assert sent(spotify) == 0
    assert Path("c.db").read_bytes() == before
    with Cache("c.db") as cache:
        assert cache.info().entries == 5  # and it is still a cache


def test_a_newer_cache_is_refused_and_left_as_it_was(
    cli: Cli, env: Env, spotify: ServerThread
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(5)])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.db")[0] == 0
    with sqlite3.connect("c.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    before = Path("c.db").read_bytes()
    spotify.reset_stats()
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", "c.db")
    assert code == 2
    assert "written by a newer isrc-resolver (schema 99" in one_error_line(err)
    for action in ("info", "clear"):
        code, _, err = cli("cache", action, "--cache", "c.db")
        assert code == 2 and "newer isrc-resolver" in err
    assert Path("c.db").read_bytes() == before and sent(spotify) == 0


def test_cache_clear_never_unlinks_a_cache_another_process_holds(
    cli: Cli, env: Env, spotify: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(5)])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.db", "--daily-quota", "100")[0] == 0
    monkeypatch.setattr("isrc_resolver.store.sqlite.BUSY_SECONDS", 0.2)
    holder = sqlite3.connect("c.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another run, mid-transaction
    try:
        code, out, err = cli("cache", "clear", "--cache", "c.db")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2, err
    assert "another process holds it (this one waited 0 s)" in one_error_line(err)
    assert "cleared" not in out
    # Still the same cache: its answers and its ledger are there.
    with Cache("c.db") as cache:
        info = cache.info()
    assert info.entries == 5 and info.accounts[0].requests == 5
    # Once free, clear empties the answers and keeps the ledger.
    code, out, _ = cli("cache", "clear", "--cache", "c.db")
    assert code == 0 and "cleared 5 cached results" in out
    with Cache("c.db") as cache:
        info = cache.info()
    assert info.entries == 0 and info.accounts[0].requests == 5


# -- the machine's failures: exit 1 or 2, one line, the path and the cause -----------------


def test_a_full_disk_under_the_output_keeps_the_old_output(
    cli: Cli, env: Env, spotify: ServerThread, small_disk: Callable[[int], Path]
) -> None:
    env(spotify)
    disk = small_disk(96)
    write_csv(Path("in.csv"), catalogue_rows(600, seed=8))
    old = disk / "out.csv"
    old.write_text("the old output\n")
    code, _, err = cli("in.csv", "-o", str(old), "--no-cache")
    assert code == 1, err
    line = one_error_line(err)
    assert f"cannot write the output {old}: No space left on device (ENOSPC)" in line
    assert f"{old} was left as it was" in line
    assert old.read_text() == "the old output\n"
    assert [p.name for p in disk.iterdir()] == ["out.csv"]  # no temporary file left


def test_a_full_disk_under_the_cache_stops_the_run_and_writes_what_it_has(
    cli: Cli, env: Env, spotify: ServerThread, small_disk: Callable[[int], Path], tmp_path: Path
) -> None:
    env(spotify)
    disk = small_disk(384)
    rows = catalogue_rows(1500, seed=9)
    write_csv(Path("in.csv"), rows)
    cache = disk / "c.db"
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", str(cache), "--concurrency", "4")
    assert code == 1, err
    line = one_error_line(err)
    assert f"the cache {cache} cannot be used" in line and "full" in line
    assert "--cache" in line and "cache=" not in line
    written = read_csv(Path("out.csv"))
    assert len(written) == len(rows)  # every row, answered or not
    statuses = {r["status"] for r in written}
    assert "error" in statuses and "found" in statuses
    assert statuses <= {"found", "not_found", "invalid", "error"}
    # What was committed stays; a rerun with room asks only the rest.
    roomy = tmp_path / "roomy.db"
    for suffix in ("", "-wal"):
        if (disk / f"c.db{suffix}").exists():
            (tmp_path / f"roomy.db{suffix}").write_bytes((disk / f"c.db{suffix}").read_bytes())
    with sqlite3.connect(roomy) as db:
        cached = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        # The disk refused the release of this run's leases; its process ending would void
        # them for the next run (a run in this test process would wait for them to expire).
        db.execute("DELETE FROM leases")
    assert cached > 0
    spotify.reset_stats()
    rerun = cli("in.csv", "-o", "out.csv", "--cache", str(roomy), "--fallback-markets", "none")
    assert rerun.code == 0, rerun.err
    asked = spotify.stats()["unique_isrcs_searched"]
    unique = {r["isrc_normalized"] for r in read_csv(Path("out.csv")) if r["status"] != "invalid"}
    assert asked == len(unique) - cached


def test_a_read_only_cache_is_said_before_any_request(
    cli: Cli, env: Env, spotify: ServerThread, small_disk: Callable[[int], Path]
) -> None:
    env(spotify)
    disk = small_disk(1024)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(3)])
    assert cli("in.csv", "-o", "out.csv", "--cache", str(disk / "c.db"))[0] == 0
    remount_read_only(disk)
    spotify.reset_stats()
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", str(disk / "c.db"))
    assert code == 2
    assert "make it writable for this user, or name another file with --cache" in (
        one_error_line(err)
    )
    assert sent(spotify) == 0
    code, _, err = cli("cache", "clear", "--cache", str(disk / "c.db"))
    assert code == 2 and "Traceback" not in err and (disk / "c.db").exists()


def test_a_closed_pipe_ends_the_run_quietly(env: Env, spotify: ServerThread) -> None:
    env(spotify)
    write_csv(Path("big.csv"), catalogue_rows(4000, seed=10))
    cmd = [sys.executable, "-m", "isrc_resolver", "big.csv", "-o", "-", "--no-cache"]
    proc = subprocess.Popen(
        [*cmd, "--rate", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"code,isrc,")  # | head -1
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "Broken pipe" not in err and "ERROR" not in err


FAULTS = {
    "ENOSPC": errno.ENOSPC,
    "EROFS": errno.EROFS,
    "EACCES": errno.EACCES,
    "EPIPE": errno.EPIPE,
}


def _raise(code: int) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize("name", list(FAULTS))
@pytest.mark.parametrize("where", ["output", "temporary file", "cache"])
def test_the_machines_refusal_is_exit_1_or_2_with_one_line(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    name: str,
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(10)])
    Path("out.csv").write_text("old\n")
    target = {
        "output": "isrc_resolver.tables.write.OutputSink._put",
        "temporary file": "isrc_resolver.tables.write.temporary_beside",
        "cache": "isrc_resolver.store.results.Results.put",
    }[where]
    monkeypatch.setattr(target, _raise(FAULTS[name]))
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", "c.db")
    assert code in (1, 2), err
    line = one_error_line(err)
    path = "c.db" if where == "cache" else "out.csv"
    assert path in line and os.strerror(FAULTS[name]) in line and f"({name})" in line
    assert Path("out.csv").read_text() == "old\n" or where == "cache"
    assert not list(Path().glob(".out.csv.*.partial"))


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_token_file_that_cannot_be_written_costs_only_its_reuse(
    cli: Cli, env: Env, spotify: ServerThread, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The token file only saves a token request next run: its failure is a warning."""
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(3)])
    monkeypatch.setattr("isrc_resolver.spotify.auth.TokenStore._replace", _raise(FAULTS[name]))
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", "c.db")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and "cannot keep the access token in" in warnings[0]
    assert os.strerror(FAULTS[name]) in warnings[0]


def test_standard_input_that_cannot_be_spooled_is_an_environment_failure(
    env: Env,
    spotify: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(spotify)
    monkeypatch.setattr("shutil.copyfileobj", _raise(errno.ENOSPC))
    code = main(["-", "-o", "out.csv", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot keep standard input in the temporary file" in one_error_line(err)


# -- rows that come back as they were -------------------------------------------------------


def test_parquet_values_keep_every_digit_and_shape_in_csv(
    cli: Cli, env: Env, spotify: ServerThread
) -> None:
    env(spotify)
    table = pa.table(
        {
            "isrc": ["QZ7XS2400012", "GBARL9300135", "USUG11904206"],
            "nullable": pa.array([1001, None, 1003], pa.int64()),
            "big": pa.array([10**17 + 1, -(2**63), 2**63 - 1], pa.int64()),
            "small": pa.array([1, 2, None], pa.uint8()),
            "nested": pa.array(
                [{"a": 1.5, "b": "x"}, None, {"a": None, "b": "é"}],
                pa.struct([("a", pa.float64()), ("b", pa.string())]),
            ),
            "listed": pa.array([[1, 2], [], None], pa.list_(pa.int32())),
            "raw": pa.array([b"\x00\x01", None, b"ok"], pa.binary()),
        }
    )
    pq.write_table(table, "in.parquet")
    assert cli("in.parquet", "-o", "out.csv", "--no-cache")[0] == 0
    rows = read_csv(Path("out.csv"))
    assert [r["nullable"] for r in rows] == ["1001", "", "1003"]
    assert [r["big"] for r in rows] == [str(10**17 + 1), str(-(2**63)), str(2**63 - 1)]
    assert [r["small"] for r in rows] == ["1", "2", ""]
    assert [r["nested"] for r in rows] == ['{"a": 1.5, "b": "x"}', "", '{"a": null, "b": "é"}']
    assert [r["listed"] for r in rows] == ["[1, 2]", "[]", ""]
    assert [r["raw"] for r in rows] == ["AAE=", "", "b2s="]
    assert [r["status"] for r in rows] == ["found"] * 3
    # Parquet to Parquet keeps the types.
    assert cli("in.parquet", "-o", "out.parquet", "--no-cache")[0] == 0
    back = pq.read_table("out.parquet")
    for name in ("nullable", "big", "small", "nested", "listed", "raw"):
        assert back.schema.field(name).type == table.schema.field(name).type
        assert back.column(name).to_pylist() == table.column(name).to_pylist()


def test_a_cell_of_megabytes_is_read(cli: Cli, env: Env, spotify: ServerThread) -> None:
    env(spotify)
    huge = "x" * 3_000_000
    rows = [{"isrc": i, "note": huge if n == 700 else "short"} for n, i in enumerate(isrcs(900))]
    write_csv(Path("in.csv"), rows)
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache", "--fallback-markets", "none")
    assert code == 0, err
    out = read_csv(Path("out.csv"))
    assert len(out) == 900 and out[700]["note"] == huge and out[701]["note"] == "short"
    assert {r["status"] for r in out} == {"found"}
    assert [r["isrc"] for r in out] == [r["isrc"] for r in rows]


def _spawn_slow_run(server: ServerThread, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **server.env()}
    cmd = [sys.executable, "-m", "isrc_resolver", *args, "--no-cache", "--concurrency", "2"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_searches(server: ServerThread, count: int) -> None:
    deadline = time.monotonic() + 30
    while server.stats()["search_requests"] < count:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.02)


def test_an_input_written_to_during_the_run_stops_it_with_a_clear_error(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.05)
    source = write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(40)])
    proc = _spawn_slow_run(server, str(source), "-o", str(tmp_path / "out.csv"))
    _wait_for_searches(server, 2)
    with source.open("a", encoding="utf-8") as fh:  # a late export, appended in place
        fh.writelines(f"{i}\n" for i in isrcs(10, start=9000))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "changed while the run was reading it" in one_error_line(err.decode())
    assert not (tmp_path / "out.csv").exists()


def test_an_input_replaced_during_the_run_is_read_as_it_was(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(latency=0.05)
    first = [{"isrc": i} for i in isrcs(40)]
    source = write_csv(tmp_path / "in.csv", first)
    proc = _spawn_slow_run(server, str(source), "-o", str(tmp_path / "out.csv"))
    _wait_for_searches(server, 2)
    newer = write_csv(tmp_path / "new.csv", [{"isrc": i} for i in isrcs(60, start=9000)])
    os.replace(newer, source)  # a new export moved into place
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    out = read_csv(tmp_path / "out.csv")
    assert [r["isrc"] for r in out] == [r["isrc"] for r in first]
    assert {r["status"] for r in out} == {"found"}


# -- text from outside, shown where a terminal reads it ---------------------------------------


def test_control_characters_from_outside_are_shown_escaped(cli: Cli, tmp_path: Path) -> None:
    hostile = "code\x1b[2J\x1b]0;owned\x07\nINFO: summary: rows=0\u202egnp.exe"
    source = tmp_path / "in.csv"
    source.write_text(f'"{hostile}",title\n1,x\n', encoding="utf-8")
    code, _, err = cli(str(source), "-o", str(tmp_path / "out.csv"), "--no-cache", "--demo")
    assert code == 2
    line = one_error_line(err)
    # One event, one line: no forged summary line, nothing for the terminal to obey.
    assert not any(row.startswith("INFO: summary") for row in err.splitlines())
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert "\\x1b[2J\\x1b]0;owned\\x07\\nINFO: summary: rows=0\\u202egnp.exe" in line
