"""The CLI and the library read the same configuration, find columns by the same rule, and
write files that other tools read back with the right types."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest

import isrc_resolver
from isrc_resolver import (
    ConfigurationError,
    InputError,
    Resolver,
    Status,
    resolve_dataframe_sync,
)
from isrc_resolver.cli import main

from .helpers import ServerThread, read_csv, write_csv

Env = Callable[[ServerThread], None]


# test_packaging runs this file again against the installed wheel, and says where that is:
# then the package imported must be that one, not the checkout.
if "ISRC_RESOLVER_EXPECT_FROM" in os.environ:
    _where = Path(isrc_resolver.__file__).resolve()
    assert _where.is_relative_to(Path(os.environ["ISRC_RESOLVER_EXPECT_FROM"]).resolve()), _where


def test_the_library_reads_endpoints_and_credentials_from_the_environment(
    env: Env, spotify: ServerThread
) -> None:
    env(spotify)  # SPOTIFY_CLIENT_ID/SECRET and SPOTIFY_API_URL/TOKEN_URL, nothing passed

    async def go() -> Status:
        async with Resolver(rate=1000) as r:
            return (await r.resolve("QZ7XS2400012")).status

    assert asyncio.run(go()) is Status.FOUND
    assert spotify.stats()["search_requests"] == 1


def test_spotipy_names_are_a_fallback(
    env: Env, spotify: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(spotify)
    for ours, theirs in (
        ("SPOTIFY_CLIENT_ID", "SPOTIPY_CLIENT_ID"),
        ("SPOTIFY_CLIENT_SECRET", "SPOTIPY_CLIENT_SECRET"),
    ):
        monkeypatch.setenv(theirs, spotify.env()[ours])
        monkeypatch.delenv(ours)
    frame = resolve_dataframe_sync(pd.DataFrame({"isrc": ["QZ7XS2400012"]}), rate=1000)
    assert list(frame["track"]) == ["CARNIVAL"]
    # The CLI reads them too.
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}])
    assert main(["in.csv", "-o", "out.csv", "--no-cache", "--rate", "1000"]) == 0
    assert read_csv(Path("out.csv"))[0]["track"] == "CARNIVAL"


def test_missing_credentials_name_both_spellings(env: Env) -> None:
    with pytest.raises(ConfigurationError) as info:
        Resolver()
    message = str(info.value)
    assert "SPOTIFY_CLIENT_ID is not set" in message and "SPOTIPY_CLIENT_ID" in message
    assert "client_id=" in message and "--" not in message  # parameters, not flags


def test_library_errors_name_parameters() -> None:
    with pytest.raises(ConfigurationError, match=r"^rate must be a positive, finite number"):
        Resolver("id", "secret", rate=float("nan"))
    with pytest.raises(ConfigurationError, match=r"^market must be a Spotify market"):
        Resolver("id", "secret", market="ßx")


def test_dataframe_column_rule_is_the_clis(env: Env, spotify: ServerThread) -> None:
    env(spotify)
    frame = pd.DataFrame({"Code": ["1", "2"], "ISRC": ["qz-7xs-24-00012", "nope"]})
    out = resolve_dataframe_sync(frame, rate=1000)
    assert list(out["status"]) == ["found", "invalid"]
    assert list(out["ISRC"]) == ["qz-7xs-24-00012", "nope"]  # the input stays as it was
    with pytest.raises(InputError) as info:
        resolve_dataframe_sync(pd.DataFrame({"isrc": ["x"], "ISRC": ["y"]}), rate=1000)
    assert str(info.value) == (
        "the DataFrame has several ISRC columns (isrc, ISRC); choose one with column="
    )


def test_a_polars_frame_gets_a_clear_error(env: Env, spotify: ServerThread) -> None:
    env(spotify)
    with pytest.raises(InputError, match=r"expected a pandas DataFrame, got polars.*to_pandas"):
        resolve_dataframe_sync(pl.DataFrame({"isrc": ["QZ7XS2400012"]}), rate=1000)  # type: ignore[arg-type]
    assert spotify.stats()["search_requests"] == 0


def test_non_text_values_are_invalid_rows_not_errors(env: Env, spotify: ServerThread) -> None:
    env(spotify)
    frame = pd.DataFrame({"isrc": pd.Series(["QZ7XS2400012", None, math.nan, pd.NA, 1.0])})
    out = resolve_dataframe_sync(frame, rate=1000)
    assert list(out["status"]) == ["found", "invalid", "invalid", "invalid", "invalid"]
    assert list(out["isrc_normalized"])[1:] == ["", "", "", ""]

    async def many() -> list[Status]:
        async with Resolver(rate=1000) as r:
            return [x.status async for x in r.resolve_many([None, 1.0, "QZ7XS2400012"])]  # type: ignore[list-item]

    assert asyncio.run(many()) == [Status.INVALID, Status.INVALID, Status.FOUND]


async def test_resolve_dataframe_sync_inside_a_running_loop(
    env: Env, spotify: ServerThread
) -> None:
    env(spotify)  # the server runs on a thread of its own, so blocking this loop is safe
    asyncio.get_running_loop()  # as in a notebook cell
    out = resolve_dataframe_sync(pd.DataFrame({"isrc": ["QZ7XS2400012"]}), rate=1000)
    assert list(out["track"]) == ["CARNIVAL"]


def test_a_closed_resolver_says_how_to_open_it() -> None:
    async def go() -> None:
        await Resolver("id", "secret").resolve("QZ7XS2400012")

    with pytest.raises(RuntimeError, match=r"not open; use `async with Resolver"):
        asyncio.run(go())


def test_parquet_reads_back_typed_in_pandas_polars_and_duckdb(
    env: Env, spotify: ServerThread
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}, {"isrc": "bad"}])
    assert main(["in.csv", "-o", "out.parquet", "--no-cache", "--rate", "1000"]) == 0
    frame = pd.read_parquet("out.parquet")
    assert (str(frame["duration_ms"].dtype), str(frame["match_count"].dtype)) == ("Int64", "Int64")
    assert str(frame["explicit"].dtype) == "boolean"
    assert frame["duration_ms"].isna().tolist() == [False, True]
    polars = pl.read_parquet("out.parquet")
    assert (polars.schema["duration_ms"], polars.schema["explicit"]) == (pl.Int64, pl.Boolean)
    types = dict(
        duckdb.sql("DESCRIBE SELECT duration_ms, explicit FROM 'out.parquet'").fetchall()[i][:2]
        for i in range(2)
    )
    assert types == {"duration_ms": "BIGINT", "explicit": "BOOLEAN"}


def test_parquet_on_standard_input(
    env: Env,
    spotify: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(spotify)
    buffer = io.BytesIO()
    pd.DataFrame({"isrc": ["QZ7XS2400012"], "n": [7]}).to_parquet(buffer)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(buffer.getvalue())))
    code = main(["-", "--input-format", "parquet", "-o", "out.csv", "--no-cache", "--rate", "1000"])
    assert code == 0, capsys.readouterr().err
    assert read_csv(Path("out.csv")) and read_csv(Path("out.csv"))[0]["track"] == "CARNIVAL"


def test_quiet_json_keeps_the_summary_at_info(
    env: Env, spotify: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}])
    args = ["in.csv", "-o", "out.csv", "--no-cache", "--rate", "1000", "-q", "--log-format", "json"]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["level"], x.get("event")) for x in lines] == [("info", "summary")]


def test_column_names_never_collide(env: Env, spotify: ServerThread) -> None:
    env(spotify)
    rows = [{"isrc": "QZ7XS2400012", "status": "mine", "spotify_status": "also mine"}]
    write_csv(Path("in.csv"), rows)
    assert main(["in.csv", "-o", "out.csv", "--no-cache", "--rate", "1000"]) == 0
    (out,) = read_csv(Path("out.csv"))
    assert (out["status"], out["spotify_status"]) == ("mine", "also mine")
    assert out["spotify_spotify_status"] == "found"


def test_the_progress_bar_covers_the_whole_run_and_stays(
    env: Env, spotify: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": "QZ7XS2400012"}, {"isrc": "QZJ842400387"}])

    async def go() -> None:
        async with Resolver(rate=1000, progress=True, with_=["album"]) as r:
            await r.resolve_file("in.csv", "out.csv")

    asyncio.run(go())
    err = capsys.readouterr().err
    assert "resolving" in err and "enriching" in err
    assert "writing: 100%" in err and "2/2" in err
    assert err.endswith("\n")  # the last state is left on screen as a line of its own
