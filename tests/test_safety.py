"""Nothing lost, nothing crashes, nothing unsafe: hostile files, hostile answers, broken
caches. Files and options go through the CLI; answers come from a hostile local server."""

from __future__ import annotations

import base64
import csv
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from isrc_resolver import Cache
from isrc_resolver.cli import main

from .conftest import Cli
from .helpers import ServerThread, read_csv, write_csv
from .hostile import CLIENT_SECRET, HostileSpotify, good_token, json_response, page, track

Env = Callable[[ServerThread], None]


def sent(server: ServerThread) -> tuple[int, int]:
    stats = server.stats()
    return stats["token_requests"], stats["search_requests"]


@pytest.fixture
def hostile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., HostileSpotify]]:
    """Start hostile servers; the CLI is pointed at the latest, from an empty folder."""
    monkeypatch.chdir(tmp_path)
    servers: list[HostileSpotify] = []

    def start(
        search: Callable[..., object], token: Callable[..., object] = good_token
    ) -> HostileSpotify:
        server = HostileSpotify(search, token)  # type: ignore[arg-type]
        servers.append(server)
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        return server

    yield start
    for server in servers:
        server.close()


# -- rows lost or shifted ---------------------------------------------------------------


def test_a_blank_line_is_a_row(cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path) -> None:
    env(spotify)
    Path("in.csv").write_text("isrc\nUSRC17607839\n\nGBAAA2400001\n")
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 0, err
    rows = read_csv(tmp_path / "out.csv")
    assert [r["isrc"] for r in rows] == ["USRC17607839", "", "GBAAA2400001"]
    assert rows[1]["status"] == "invalid"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("isrc,title\nUSRC17607839,a,EXTRA\nGBAAA2400001,b\n", 2),  # the first data row
        ("isrc,title\n" + "USRC17607839,a\n" * 500 + "GBAAA2400001\n", 502),  # late, short
    ],
)
def test_ragged_rows_stop_before_any_request(
    cli: Cli, env: Env, spotify: ServerThread, content: str, line: int
) -> None:
    env(spotify)
    Path("in.csv").write_text(content)
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 2
    assert f"in.csv: the row ending on line {line} has" in err and "where the header has 2" in err
    assert sent(spotify) == (0, 0)
    assert not Path("out.csv").exists()


# -- everything checked before the first request ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "missing/out.csv"], "folder"),
        (["-o", "-", "--format", "parquet"], "Parquet cannot be written to standard output"),
        (["-o", "out.ods"], "out.ods: ods is read, not written; write .xlsx, .csv or .parquet"),
        (["-o", "-", "--format", "xlsx"], "An .xlsx workbook cannot be written to standard"),
        (["-o", "out.numbers"], "the formats are csv (.csv), tsv (.tsv), parquet (.parquet), xlsx"),
        (["-o", "out.json"], "cannot write or read out.json as json"),
        (["-o", "."], "it is a folder"),
    ],
)
def test_output_problems_stop_before_any_request(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    args: list[str],
    message: str,
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "USRC17607839"}])
    code, _, err = cli("in.csv", "--no-cache", *args)
    assert code == 2, err
    assert message in err
    assert sent(spotify) == (0, 0)


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "a folder"])
def test_a_broken_cache_stops_before_any_request_and_can_be_cleared(
    capsys: pytest.CaptureFixture[str], cli: Cli, env: Env, spotify: ServerThread, damage: str
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "USRC17607839"}])
    cache = Path("c.sqlite3")
    if damage == "a folder":
        cache.mkdir()
    else:
        assert cli("in.csv", "-o", "out.csv", "--cache", str(cache))[0] == 0
        spotify.reset_stats()
        data = cache.read_bytes()
        cache.write_bytes(os.urandom(len(data)) if damage == "random bytes" else data[:700])
    before = None if damage == "a folder" else cache.read_bytes()
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", str(cache))
    assert code == 2, err
    said = {
        "random bytes": f"{cache} is not an isrc-resolver cache (not a SQLite file)",
        "truncated": f"the cache {cache} cannot be used",
        "a folder": f"the cache {cache} is a folder, not a file",
    }[damage]
    assert said in err and "--cache" in err and "cache=" not in err
    assert "Traceback" not in err
    assert sent(spotify) == (0, 0)
    code = main(["cache", "info", "--cache", str(cache)])
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Traceback" not in err
    if damage != "truncated":
        # Not a SQLite file (or a folder): not ours to replace. Nothing is touched.
        assert main(["cache", "clear", "--cache", str(cache)]) == 2
        assert cache.is_dir() if before is None else cache.read_bytes() == before
        return
    assert "cache clear --cache c.sqlite3" in err  # the advice for a damaged cache
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    (kept,) = Path().glob("c.sqlite3.damaged-*[0-9]Z")
    assert f"moved it to {kept}" in out and kept.read_bytes() == before  # a copy is kept
    Cache(cache).close()  # a working cache again


# -- output targets ---------------------------------------------------------------------


def test_special_files_are_streams_and_symlinks_are_followed(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}])
    assert cli("in.csv", "-o", "/dev/null", "--no-cache")[0] == 0
    assert Path("/dev/null").is_char_device()

    Path("real").mkdir()
    Path("link.csv").symlink_to(Path("real") / "target.csv")
    assert cli("in.csv", "-o", "link.csv", "--no-cache")[0] == 0
    assert Path("link.csv").is_symlink()
    assert read_csv(Path("real") / "target.csv")[0]["track"] == "CARNIVAL"

    os.mkfifo("pipe.csv")
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(Path("pipe.csv").read_text()))
    reader.start()
    assert cli("in.csv", "-o", "pipe.csv", "--no-cache")[0] == 0
    reader.join(timeout=30)
    assert "CARNIVAL" in received[0]
    assert Path("pipe.csv").is_fifo()
    assert not list(tmp_path.glob(".*.partial"))


def test_no_partial_file_is_left_behind(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}])
    # A temporary file of a process that died (kill -9) is swept by the next run ...
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".out.csv.{dead}.x1y2z3.partial"
    stale.write_text("half")
    mine = tmp_path / f".out.csv.{os.getpid()}.keep.partial"  # a live process's is kept
    mine.write_text("in use")
    assert cli("in.csv", "-o", "out.csv", "--no-cache")[0] == 0
    assert not stale.exists() and mine.exists()
    mine.unlink()

    # ... and a failed final move removes its own.
    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    code, _, err = cli("in.csv", "-o", "out2.csv", "--no-cache")
    assert code != 0 and "No space left on device" in err
    assert not list(tmp_path.glob(".out2.csv.*"))


# -- spreadsheet formulas ---------------------------------------------------------------

NASTY = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "plain"]


def test_formulas_from_spotify_are_escaped_in_csv_and_tsv_only(
    cli: Cli, hostile: Callable[..., HostileSpotify]
) -> None:
    async def search(request: web.Request) -> web.Response:
        n = int(request.query["q"][-1])
        return page(track(name=NASTY[n], artists=[{"id": "a", "name": NASTY[n]}]))

    hostile(search)
    isrcs = [f"USAAA240000{n}" for n in range(len(NASTY))]
    rows = [{"isrc": i, "note": "=1+1"} for i in isrcs]
    write_csv(Path("in.csv"), rows)
    for out in ("out.csv", "out.tsv"):
        code, _, err = cli("in.csv", "-o", out, "--no-cache")
        assert code == 0, err
        with open(out, newline="", encoding="utf-8") as fh:
            got = list(csv.DictReader(fh, delimiter="\t" if out.endswith("tsv") else ","))
        assert [r["track"] for r in got] == ["'" + n for n in NASTY[:-1]] + ["plain"]
        assert [r["artist"] for r in got] == [r["track"] for r in got]
        assert all(r["note"] == "=1+1" for r in got)  # input cells stay as they were
    assert cli("in.csv", "-o", "out.parquet", "--no-cache")[0] == 0
    assert list(pd.read_parquet("out.parquet")["track"]) == NASTY
    assert cli("in.csv", "-o", "raw.csv", "--no-cache", "--no-escape-formulas")[0] == 0
    assert [r["track"] for r in read_csv(Path("raw.csv"))] == NASTY


# -- hostile answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"duration_ms": "abc"},
        {"duration_ms": 1.5},
        {"duration_ms": 1e30},
        {"explicit": "yes"},
        {"artists": "nobody"},
        {"id": None},
    ],
    ids=["text duration", "fraction", "huge", "text flag", "artists", "no id"],
)
def test_a_field_of_the_wrong_type_is_an_error_row_and_never_cached(
    cli: Cli,
    hostile: Callable[..., HostileSpotify],
    fields: dict[str, object],
) -> None:
    answers = {"bad": True}

    async def search(request: web.Request) -> web.Response:
        return page(track(**fields) if answers["bad"] else track())

    server = hostile(search)
    write_csv(Path("in.csv"), [{"isrc": "USAAA2400001"}, {"isrc": "bad"}])
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite3")
    assert code == 1, err
    rows = read_csv(Path("out.csv"))
    assert [r["status"] for r in rows] == ["error", "invalid"]
    assert rows[0]["error"].startswith("invalid answer from Spotify")
    answers["bad"] = False  # the server is fixed: the next run asks again, and succeeds
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite3")[0] == 0
    assert read_csv(Path("out.csv"))[0]["status"] == "found"
    assert server.counts["search"] == 2


def test_safe_coercions_are_made() -> None:
    from isrc_resolver import Track

    parsed = Track.from_api(track(duration_ms=200000.0, track_number="3"))
    assert (parsed.duration_ms, parsed.track_number) == (200000, 3)


@pytest.mark.parametrize("value", ["1e12", "inf", "1e400"])
def test_absurd_retry_after_is_a_quota_stop(
    capsys: pytest.CaptureFixture[str], cli: Cli, hostile: Callable[..., HostileSpotify], value: str
) -> None:
    async def search(request: web.Request) -> web.Response:
        return json_response({"error": {"status": 429, "message": "slow down"}}, 429,
                             **{"Retry-After": value})  # fmt: skip

    hostile(search)
    write_csv(Path("in.csv"), [{"isrc": "USAAA2400001"}])
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite3")
    assert code == 3, err
    assert read_csv(Path("out.csv"))[0]["status"] == "rate_limited"
    assert main(["cache", "info", "--cache", "c.sqlite3"]) == 0
    assert "cooldown:  until" in capsys.readouterr().out


def test_retry_after_as_an_http_date(cli: Cli, hostile: Callable[..., HostileSpotify]) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)

    async def search(request: web.Request) -> web.Response:
        return json_response({"error": {"status": 429, "message": "later"}}, 429,
                             **{"Retry-After": format_datetime(when, usegmt=True)})  # fmt: skip

    server = hostile(search)
    write_csv(Path("in.csv"), [{"isrc": "USAAA2400001"}])
    args = ["in.csv", "-o", "out.csv", "--no-cache", "--log-format", "json"]
    code, _, err = cli(*args)
    assert code == 3
    assert when.strftime("%Y-%m-%dT%H:%M") in err  # resume_at is the date the server gave
    assert server.counts["search"] == 1  # no polling every 5 s


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"access_token": "t" * 40, "token_type": "Bearer", "expires_in": "abc"}, "expires_in"),
        ({"access_token": "t" * 40, "token_type": "Bearer", "expires_in": [1]}, "expires_in"),
        ({"access_token": "tok\r\nX-Evil: 1", "token_type": "Bearer"}, "cannot be sent"),
    ],
    ids=["text expiry", "list expiry", "header injection"],
)
def test_unusable_token_answers_are_a_clear_token_error(
    cli: Cli,
    hostile: Callable[..., HostileSpotify],
    answer: dict[str, object],
    message: str,
) -> None:
    async def token(request: web.Request) -> web.Response:
        return json_response(answer)

    async def search(request: web.Request) -> web.Response:
        return page()

    server = hostile(search, token)
    write_csv(Path("in.csv"), [{"isrc": "USAAA2400001"}])
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 1
    assert message in err and "internal error" not in err
    assert server.counts["search"] == 0


def test_freshly_issued_tokens_rejected_twice_stop_the_run(
    cli: Cli, hostile: Callable[..., HostileSpotify]
) -> None:
    issued = iter(range(10**6))

    async def token(request: web.Request) -> web.Response:
        value = f"fresh-token-{next(issued):08d}"
        return json_response({"access_token": value, "token_type": "Bearer", "expires_in": 3600})

    async def search(request: web.Request) -> web.Response:
        return json_response({"error": {"status": 401, "message": "Invalid access token"}}, 401)

    server = hostile(search, token)
    write_csv(Path("in.csv"), [{"isrc": f"USAAA24{n:05d}"} for n in range(150)])
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache", "--concurrency", "4")
    assert code == 1
    assert "rejected two freshly issued access tokens" in err
    assert server.counts["token"] <= 3 and server.counts["search"] <= 8


def test_echoed_credentials_are_masked_everywhere(
    cli: Cli, hostile: Callable[..., HostileSpotify]
) -> None:
    async def search(request: web.Request) -> web.Response:
        echo = f"bad request with {request.headers['Authorization']}"
        return json_response({"error": {"status": 400, "message": echo}}, 400)

    hostile(search)
    write_csv(Path("in.csv"), [{"isrc": "USAAA2400001"}])
    code, out, err = cli("in.csv", "-o", "out.csv", "--no-cache", "-v")
    assert code == 1
    written = Path("out.csv").read_text()
    assert "bad request with Bearer ***" in written
    assert "hostile-token" not in written + out + err

    async def token(request: web.Request) -> web.Response:
        echo = request.headers["Authorization"]
        return json_response({"error": echo, "error_description": echo}, 400)

    hostile(search, token)
    code, out, err = cli("in.csv", "-o", "out.csv", "--no-cache", "-v")
    assert code == 2
    basic = base64.b64encode(f"hostile-client-id:{CLIENT_SECRET}".encode()).decode()
    assert basic not in out + err and CLIENT_SECRET not in out + err
    assert "***" in err


def test_an_endless_answer_is_refused_not_read(
    cli: Cli, hostile: Callable[..., HostileSpotify]
) -> None:
    async def search(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        for _ in range(40):  # 40 MB, more than the 16 MB cap, and no Content-Length
            await response.write(chunk)
        await response.write_eof()
        return response

    hostile(search)
    write_csv(Path("in.csv"), [{"isrc": "USAAA2400001"}])
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache", "--max-retries", "1")
    assert code == 1, err
    assert "larger than 16777216 bytes" in read_csv(Path("out.csv"))[0]["error"]


# -- credentials and endpoints ----------------------------------------------------------


def test_a_wrong_secret_is_not_hidden_by_a_stored_token(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--refresh")[0] == 0
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "a-wrong-secret-0123456789")
    code, _, err = cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite3", "--refresh")
    assert code == 2 and "rejected the client id or secret" in err


def test_plain_http_to_another_machine_is_refused_before_any_connection(tmp_path: Path) -> None:
    """Run in a network namespace with no route out: a regression fails, it cannot leak."""
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}])
    env = {**os.environ, "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "secret-0123456789"}
    command = [
        "unshare", "-rn", sys.executable, "-m", "isrc_resolver", "in.csv", "-o", "out.csv",
        "--no-cache", "--api-url", "http://192.0.2.10/v1",
        "--token-url", "http://192.0.2.10/api/token",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "plain http to another machine" in done.stderr
    assert "--allow-insecure-http" in done.stderr
    assert not (tmp_path / "out.csv").exists()
    # With the flag it is allowed, and (with no network here) fails to connect instead.
    allowed = subprocess.run([*command, "--allow-insecure-http", "--max-retries", "0"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert allowed.returncode == 1 and "could not get an access token" in allowed.stderr


# -- options and internal errors --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "nan"],
        ["--rate", "inf"],
        ["--timeout", "inf"],
        ["--max-wait", "nan"],
        ["--max-retries", "-1"],
        ["--market", "ßx"],
        ["--max-age", "-1"],
    ],
)
def test_bad_options_are_refused_at_parse_time(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["in.csv", "-o", "out.csv", *args])
    assert info.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_an_internal_error_has_its_own_exit_code(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}])

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("isrc_resolver.fronts.distinct", broken)
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 70
    assert "internal error (a bug; please report it" in err
