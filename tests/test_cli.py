"""The CLI: messages, exit codes and files, run in-process against the local Spotify."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from isrc_resolver.cli import build_parser, demo_sample, main

from .conftest import Cli
from .helpers import ServerThread, catalogue_rows, check_rows, read_csv, write_csv

Env = Callable[[ServerThread], None]
SAMPLE = demo_sample()


# -- configuration and input errors: exit 2, a message that says what to do ---------------


def test_missing_credentials(cli: Cli, env: Env, tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}])
    code, _, err = cli("in.csv", "-o", "out.csv")
    assert code == 2
    assert "SPOTIFY_CLIENT_ID is not set (looked in the environment and" in err
    assert str(tmp_path / ".env") in err and "--demo" in err
    assert not (tmp_path / "out.csv").exists()


def test_env_file_is_read(cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}])
    lines = [f"{k}={v}" for k, v in spotify.env().items()]
    (tmp_path / "creds.env").write_text("\n".join(lines) + "\n")
    code, _, err = cli("in.csv", "-o", "out.csv", "--env-file", "creds.env", "--no-cache")
    assert code == 0, err
    assert read_csv(tmp_path / "out.csv")[0]["track"] == "CARNIVAL"
    (tmp_path / "creds.env").rename(tmp_path / ".env")  # the default location
    assert cli("in.csv", "-o", "out.csv", "--no-cache")[0] == 0
    code, _, err = cli("in.csv", "-o", "out.csv", "--env-file", "missing.env")
    assert (code, err.strip()) == (2, "ERROR: --env-file missing.env not found")


def test_rejected_credentials(
    cli: Cli,
    env: Env,
    spotify_thread: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server = spotify_thread()
    env(server)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "not-the-secret")
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}])
    (tmp_path / "out.csv").write_text("previous output\n")
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 2
    assert "Spotify rejected the client id or secret" in err
    assert "not-the-secret" not in err
    assert (tmp_path / "out.csv").read_text() == "previous output\n"  # untouched
    assert server.stats()["token_requests"] == 1  # no retries


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "ERROR: missing.csv not found; check the path"),
        (
            "code,title\n1,x\n",
            [],
            "ERROR: no column named 'isrc' in in.csv; columns are: code, title. "
            "Name the ISRC column with --column",
        ),
        (
            "isrc,title\n1,x\n",
            ["--column", "code"],
            "ERROR: column 'code' not found in in.csv; columns are: isrc, title",
        ),
        (
            "ISRC,isrc\n1,x\n",
            [],
            "ERROR: in.csv has several ISRC columns (ISRC, isrc); choose one with --column",
        ),
        ("", [], "ERROR: in.csv is empty; it needs a header row naming its columns"),
        (
            "isrc,isrc\n1,2\n",
            [],
            "ERROR: in.csv has duplicate column names: isrc; "
            "rename them so each column has its own name",
        ),
    ],
)
def test_input_errors(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    tmp_path: Path,
    content: str | None,
    args: list[str],
    message: str,
) -> None:
    env(spotify)
    name = "missing.csv" if content is None else "in.csv"
    if content is not None:
        (tmp_path / name).write_text(content)
    code, _, err = cli(name, "-o", "out.csv", "--no-cache", *args)
    assert (code, err.strip()) == (2, message)
    assert spotify.stats()["search_requests"] == 0


def test_unreachable_token_endpoint_stops_the_run_once(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    import socket

    env(spotify)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    write_csv(tmp_path / "in.csv", catalogue_rows(200, seed=12))
    code, _, err = cli(
        "in.csv",
        "-o",
        "out.csv",
        "--no-cache",
        "--max-retries",
        "1",
        "--token-url",
        f"http://127.0.0.1:{closed}/api/token",
    )
    assert code == 1
    assert f"could not get an access token from http://127.0.0.1:{closed}/api/token" in err
    assert "check --token-url" in err
    assert spotify.stats()["total_requests"] == 0
    assert not (tmp_path / "out.csv").exists()


def test_not_utf8(cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path) -> None:
    env(spotify)
    (tmp_path / "in.csv").write_bytes("isrc,title\nQZ7XS2400012,Caf\xe9\n".encode("latin-1"))
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 2
    assert "in.csv is not UTF-8 text" in err and "iconv" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["in.csv", "-o", "out.csv", "--market", "USA"])
    assert info.value.code == 2
    assert "expected a 2-letter country code" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["in.csv", "-o", "out.csv", "--rate", "0"])
    assert info.value.code == 2


# -- formats ------------------------------------------------------------------------------


def test_sample_data_to_csv_and_parquet(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    code, _, err = cli(str(SAMPLE), "-o", "out.csv", "--no-cache")
    assert code == 0, err
    rows = read_csv(tmp_path / "out.csv")
    source = read_csv(SAMPLE)
    check_rows(source, rows, column="ISRC", titles=True)
    by_code = {r["catalogue_code"]: r for r in rows}
    assert (by_code["0001"]["track"], by_code["0001"]["album"], by_code["0001"]["artist"]) == (
        "CARNIVAL",
        "VULTURES 1",
        "¥$",
    )
    assert by_code["0002"]["artist"] == "Artemas" and by_code["0002"]["match_count"] == "6"
    assert by_code["0002"]["album_type"] == "single"
    assert by_code["0033"]["ISRC"] == "NA" and by_code["0033"]["status"] == "invalid"
    assert by_code["0003"]["territory"] == "null"  # text stays text
    assert re.search(r"summary: rows=36 unique=\d+ found=\d+", err)

    code, _, err = cli(str(SAMPLE), "-o", "out.parquet", "--no-cache")
    assert code == 0, err
    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("duration_ms").type) == "int64"
    assert str(table.schema.field("explicit").type) == "bool"
    assert str(table.schema.field("catalogue_code").type) == "string"
    frame = table.to_pandas()
    assert list(frame["catalogue_code"]) == [r["catalogue_code"] for r in source]
    assert list(frame["status"]) == [r["status"] for r in rows]


REPOSITORY = Path(__file__).resolve().parent.parent


def test_the_demo_catalogue_in_sample_data_is_the_one_the_wheel_carries() -> None:
    assert (REPOSITORY / "sample_data" / "catalogue.csv").read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize(
    ("name", "rows", "found"),
    [("catalogue", 36, 28), ("statement", 1400, 1398), ("titles", 10, 7)],
)
def test_every_sample_file_runs_with_demo(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, rows: int, found: int
) -> None:
    """The README's first command, on each file of sample_data/: every row comes back."""
    monkeypatch.chdir(tmp_path)
    source = REPOSITORY / "sample_data" / f"{name}.csv"
    code, _, err = cli("--demo", str(source), "-o", "out.csv")
    assert code == 0, err
    out = read_csv(tmp_path / "out.csv")
    assert len(out) == len(read_csv(source)) == rows
    assert sum(r["status"] == "found" for r in out) == found


def test_semicolons_bom_and_awkward_cells_round_trip(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    rows = catalogue_rows(50, seed=2)
    path = write_csv(tmp_path / "in.csv", rows, delimiter=";")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 0, err
    check_rows(rows, read_csv(tmp_path / "out.csv"))


def test_tsv_stdin_and_stdout(
    cli: Cli,
    env: Env,
    spotify: ServerThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.tsv", [{"isrc": "QZ7XS2400012", "n": "007"}], delimiter="\t")
    code, out, _ = cli("in.tsv", "-o", "-", "--no-cache", "-q")
    assert code == 0
    assert out.splitlines()[0].startswith("isrc,n,isrc_normalized,status,track")
    assert ",007,QZ7XS2400012,found,CARNIVAL," in out

    import io
    import sys

    class Stdin:
        buffer = io.BytesIO(b"isrc\nQZJ842400387\n")

    monkeypatch.setattr(sys, "stdin", Stdin)
    code, _, _ = cli("-", "-o", "out.tsv", "--no-cache", "-q")
    assert code == 0
    text = (tmp_path / "out.tsv").read_text()
    assert "\tfound\t" in text


def test_empty_input_gives_a_header_only_output(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    (tmp_path / "in.csv").write_text("isrc,title\n")
    code, _, _ = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 0
    assert (tmp_path / "out.csv").read_text().startswith("isrc,title,isrc_normalized,status,")
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 1
    code, _, _ = cli("in.csv", "-o", "out.parquet", "--no-cache")
    assert code == 0 and pd.read_parquet(tmp_path / "out.parquet").empty


def test_input_columns_named_like_output_columns_are_kept(
    cli: Cli, env: Env, spotify: ServerThread, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012", "artist": "Ye", "status": "live"}])
    assert cli("in.csv", "-o", "out.csv", "--no-cache")[0] == 0
    (row,) = read_csv(tmp_path / "out.csv")
    assert (row["artist"], row["status"]) == ("Ye", "live")
    assert (row["spotify_artist"], row["spotify_status"]) == ("¥$", "found")


def test_exit_1_when_some_rows_error(
    cli: Cli,
    env: Env,
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
) -> None:
    server = spotify_thread(fault_5xx=1.0)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}, {"isrc": "bad"}])
    code, _, _ = cli("in.csv", "-o", "out.csv", "--no-cache", "--max-retries", "1")
    assert code == 1
    rows = read_csv(tmp_path / "out.csv")
    assert [r["status"] for r in rows] == ["error", "invalid"]
    assert "gave up after 1 retries" in rows[0]["error"]


def test_retry_after_50000_exits_3_in_seconds(
    cli: Cli,
    env: Env,
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
) -> None:
    server = spotify_thread(window_limit=3, window_seconds=50_000)
    env(server)
    write_csv(tmp_path / "in.csv", catalogue_rows(40, seed=8, unique=40))
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache", "--concurrency", "2")
    assert code == 3
    assert re.search(r"run again after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", err)
    statuses = [r["status"] for r in read_csv(tmp_path / "out.csv")]
    assert len(statuses) == 40 and "rate_limited" in statuses


def test_demo_needs_no_credentials(cli: Cli, env: Env, tmp_path: Path) -> None:
    code, _, err = cli("--demo", str(SAMPLE), "-o", "out.csv")
    assert code == 0, err
    assert "demo: local Spotify at http://127.0.0.1:" in err
    assert read_csv(tmp_path / "out.csv")[0]["track"] == "CARNIVAL"


# -- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [[], ["-v"], ["-v", "--log-format", "json"]])
def test_no_secret_or_token_anywhere(
    cli: Cli,
    env: Env,
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
    flags: list[str],
) -> None:
    server = spotify_thread(
        token_lifetime=1,
        fault_5xx=0.2,
        window_limit=20,
        window_seconds=1,
        client_secret="TopSecret-Value-123",
    )
    env(server)
    write_csv(tmp_path / "in.csv", catalogue_rows(60, seed=9))
    code, out, err = cli("in.csv", "-o", "out.csv", "--cache", "c/cache.sqlite3", *flags)
    assert code in (0, 1)
    tokens = list(server.server._tokens)
    assert tokens
    texts = [out, err, (tmp_path / "out.csv").read_text()]
    texts += [p.read_text(errors="replace") for p in (tmp_path / "c").glob("*.json")]
    for text in texts[:3]:
        assert "TopSecret-Value-123" not in text
        assert not any(t in text for t in tokens)
    if "-v" in flags:
        assert (
            "search QZ" in err or '"message": "search' in err or "search " in err
        )  # debug lines were written
    if "--log-format" in flags:
        records = [json.loads(line) for line in err.splitlines() if line.strip()]
        summary = [r for r in records if r.get("event") == "summary"]
        assert summary and summary[0]["rows"] == 60 and summary[0]["exit_code"] == code


# -- docs -----------------------------------------------------------------------------------


def test_readme_documents_every_option() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", build_parser().format_help()))
    missing = sorted(opt for opt in options if f"`{opt}" not in readme)
    assert not missing, f"README lacks: {missing}"


def test_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for code in ("0", "1", "2", "3", "130", "143"):
        assert re.search(rf"^\s+{code}\s+\w", text, re.MULTILINE), code
    assert "isrc-resolve cache info" in text


@pytest.mark.parametrize(
    ("title", "artist"),
    [
        ("Track Title", "Main Artist"),
        ("Song Title", "Artist Name"),
        ("Track Name", "Primary Artist"),
    ],
)
def test_label_style_headers_are_found(
    cli: Cli, env: Env, spotify: ServerThread, title: str, artist: str
) -> None:
    env(spotify)
    # The local catalogue's Uptown Funk is missed by isrc: and found by title and artist.
    row = {"ISRC": "GBARL1401524", title: "Uptown Funk", artist: "Mark Ronson"}
    write_csv(Path("in.csv"), [row])
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache", "--fallback-markets", "none")
    assert code == 0, err
    (row,) = read_csv(Path("out.csv"))
    assert (row["status"], row["match_method"], row["match_check"]) == (
        "found",
        "title_artist",
        "ok",
    )
    assert f"title and artist from in.csv columns {title!r} and {artist!r}" in err


def test_a_file_without_title_columns_says_which_flags_to_use(
    cli: Cli, env: Env, spotify: ServerThread
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012", "Name": "x", "Who": "y"}])
    code, _, err = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert code == 0
    assert "in.csv has no title and artist columns" in err and "(columns: isrc, Name, Who)" in err
    assert "name them with --title-column and --artist-column" in err
