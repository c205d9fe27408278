"""Inputs and surroundings that are odd but real: a Parquet ISRC column of bytes, a
console that cannot encode the names, files that are not text, a reserved account name,
a cache that is a device. Each is read right or refused with the advice that fits."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import Cli
from .helpers import ServerThread, read_csv, write_csv

Env = Callable[[ServerThread], None]
CYRILLIC = "USUM71703861"  # the local Spotify's title for it is in Cyrillic


def test_a_parquet_isrc_column_of_bytes_is_read_as_text(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    cells = [b"GBAYE0601498", b" usum71703861 ", None, b"\xff\xfe"]
    pq.write_table(pa.table({"isrc": pa.array(cells, pa.binary()), "n": [1, 2, 3, 4]}), "b.parquet")
    ran = cli("b.parquet", "-o", "out.csv", "--no-cache")
    assert ran.code == 0, ran.err
    rows = read_csv(tmp_path / "out.csv")
    assert [r["status"] for r in rows] == ["found", "found", "invalid", "invalid"]
    assert [r["isrc"] for r in rows][:2] == ["GBAYE0601498", " usum71703861 "]
    assert cli("b.parquet", "-o", "out.parquet", "--no-cache").code == 0
    back = pq.read_table(tmp_path / "out.parquet")
    assert back.column("status").to_pylist() == ["found", "found", "invalid", "invalid"]


def test_csv_on_a_console_that_cannot_encode_the_names_is_utf8(
    spotify: ServerThread, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": CYRILLIC}, {"isrc": "GBAYE0601498"}])
    env = {**os.environ, **spotify.env(), "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run(
        [sys.executable, "-m", "isrc_resolver", "in.csv", "-o", "-", "--no-cache", "-q"],
        cwd=tmp_path, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    text = done.stdout.decode("utf-8")  # UTF-8, as a file would be
    assert len(text.splitlines()) == 3 and any("\u0400" <= c <= "\u04ff" for c in text)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: p.write_bytes("isrc\nGBAYE0601498\n".encode("utf-16")), "is UTF-16 text"),
        (lambda p: p.write_bytes(gzip.compress(b"isrc\nGBAYE0601498\n")), "gzip-compressed"),
        (lambda p: p.write_bytes(b"isrc,t\nGBAYE0601498,caf\xe9\n"), "iconv -f cp1252"),
    ],
)
def test_a_file_that_is_not_utf8_text_gets_the_advice_that_fits(
    env: Env,
    spotify: ServerThread,
    cli: Cli,
    tmp_path: Path,
    make: Callable[[Path], object],
    said: str,
) -> None:
    env(spotify)
    make(tmp_path / "in.csv")
    before = (tmp_path / "in.csv").read_bytes()
    ran = cli("in.csv", "-o", "out.csv", "--no-cache")
    assert ran.code == 2 and said in ran.err, ran.err
    assert "latin1" not in ran.err and "> in.csv" not in ran.err  # never over the input
    assert spotify.stats()["total_requests"] == 0
    assert (tmp_path / "in.csv").read_bytes() == before


def test_a_parquet_file_or_a_workbook_named_csv_is_read_for_what_it_is(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    import xlsxwriter

    env(spotify)
    pq.write_table(pa.table({"isrc": ["GBAYE0601498"], "n": [7]}), tmp_path / "parquet.csv")
    book = xlsxwriter.Workbook(tmp_path / "book.csv")
    book.add_worksheet().write_row(0, 0, ["ISRC", "n"])
    book.worksheets()[0].write_row(1, 0, ["GBAYE0601498", 7])
    book.close()
    for name in ("parquet.csv", "book.csv"):
        ran = cli(name, "-o", f"{name}.out.csv", "--no-cache")
        assert ran.code == 0, ran.err
        (row,) = read_csv(tmp_path / f"{name}.out.csv")
        assert row["status"] == "found" and row["n"] == "7"


def test_the_ledger_wildcard_is_no_account_name(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": "GBAYE0601498"}])
    ran = cli("in.csv", "-o", "out.csv", "--cache", "c.db", "--account", "*")
    assert ran.code == 2 and "--account '*' is reserved" in ran.err
    assert spotify.stats()["total_requests"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device file needs root")
def test_a_cache_that_is_a_device_is_called_one(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    import stat

    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": "GBAYE0601498"}])
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    ran = cli("in.csv", "-o", "out.csv", "--cache", "null")
    assert ran.code == 2 and "is a device or another special file, not a file" in ran.err
    assert "a folder?" not in ran.err


@pytest.mark.parametrize("option", [["--candidates", "c.csv"], ["--daily-quota", "5"]])
def test_a_demo_run_is_told_to_name_a_cache_not_to_drop_no_cache(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = cli("--demo", "-o", "out.csv", *option)
    assert ran.code == 2 and "name one with --cache PATH" in ran.err, ran.err
    assert "--no-cache" not in ran.err  # the user gave no --no-cache
    assert cli("--demo", "-o", "out.csv", *option, "--cache", "d.db").code in (0, 3)
