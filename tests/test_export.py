"""The answers as a table other engines join: ``cache export`` joined in DuckDB and in
polars gives the rows the CLI writes for the same input."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pytest

from .conftest import Cli
from .helpers import (
    ServerThread,
    a_missing_isrc,
    age_cache,
    catalogue_rows,
    isrcs,
    read_csv,
    write_csv,
)

# The README's normalisation, as SQL: separators out, upper case, an "ISRC" label dropped
# when 12 characters remain.
COMPACT = "upper(regexp_replace({0}, '[\\s.\\-]+', '', 'g'))"
NORMALIZE = (
    "CASE WHEN regexp_matches({c}, '^ISRC[:=#]?[A-Z0-9]{{12}}$') THEN right({c}, 12) ELSE {c} END"
)
COMPARED = ("status", "spotify_track_id", "album_id", "match_count", "resolved_at", "searched")


def duckdb_sql(isrc: str) -> str:
    return NORMALIZE.format(c=COMPACT.format(isrc))


def polars_key(column: str) -> pl.Expr:
    compact = pl.col(column).str.replace_all(r"[\s.\-]+", "").str.to_uppercase()
    return (
        pl.when(compact.str.contains(r"^ISRC[:=#]?[A-Z0-9]{12}$"))
        .then(compact.str.slice(-12))
        .otherwise(compact)
    )


def text(value: Any) -> str:
    return "" if value is None else str(value)


def test_cache_export_joined_in_duckdb_and_polars_gives_the_cli_rows(
    spotify: ServerThread, env: Any, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    rows = catalogue_rows(400, seed=7)
    rows[0]["isrc"] = a_missing_isrc()  # a cached miss is exported too
    write_csv(tmp_path / "in.csv", rows)
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite").code == 0
    out = read_csv(tmp_path / "out.csv")
    spotify.reset_stats()
    for target in ("answers.parquet", "answers.csv"):
        ran = cli("cache", "export", target, "--cache", "c.sqlite")
        assert ran.code == 0, ran.err
    assert spotify.stats()["total_requests"] == 0 and spotify.stats()["token_requests"] == 0

    joined = duckdb.sql(
        f"SELECT i.code, a.* FROM read_csv('{tmp_path / 'in.csv'}', all_varchar = true) i "
        f"LEFT JOIN '{tmp_path / 'answers.parquet'}' a ON a.isrc = {duckdb_sql('i.isrc')} "
        "ORDER BY i.code"
    )
    by_duckdb = dict(zip(joined.columns, zip(*joined.fetchall(), strict=True), strict=True))
    frame = (
        pl.read_csv(tmp_path / "in.csv", infer_schema=False)
        .with_columns(key=polars_key("isrc"))
        .join(
            pl.read_csv(tmp_path / "answers.csv", infer_schema=False),
            left_on="key",
            right_on="isrc",
            how="left",
        )
        .sort("code")
    )
    assert frame.height == joined.shape[0] == len(out) == len(rows)
    for n, row in enumerate(out):
        assert by_duckdb["code"][n] == row["code"]
        if row["status"] == "invalid":  # never asked, so not in the cache
            assert by_duckdb["status"][n] is None and frame["status"][n] is None
            continue
        for name in COMPARED:
            assert text(by_duckdb[name][n]) == row[name], (name, row)
            assert text(frame[name][n]) == row[name], (name, row)
        assert text(by_duckdb["track"][n]) == row["track"]  # no formula escaping in Parquet
        assert text(by_duckdb["isrc_conflict"][n]).lower() == row["isrc_conflict"].lower()
    assert "not_found" in by_duckdb["status"] and "found" in by_duckdb["status"]


def test_cache_export_needs_a_cache_and_a_known_format(
    env: Any, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    ran = cli("cache", "export", "x.parquet", "--cache", "none.sqlite")
    assert ran.code == 2 and "no cache to export" in ran.err
    write_csv(tmp_path / "in.csv", [{"isrc": "GBAAA2400001"}])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite").code == 0
    ran = cli("cache", "export", "x.xlsx", "--cache", "c.sqlite")
    assert ran.code == 2 and "xlsx" in ran.err


def test_a_hive_partitioned_parquet_folder_is_one_input(
    spotify: ServerThread, env: Any, cli: Cli, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    env(spotify)
    codes = isrcs(30)
    table = pa.table(
        {
            "isrc": [*codes, "not an isrc", codes[0].lower()],
            "plays": list(range(32)),
            "year": [2023] * 16 + [2024] * 16,
        }
    )
    pq.write_to_dataset(table, tmp_path / "statements", partition_cols=["year"])
    (tmp_path / "statements" / "_SUCCESS").write_text("")
    plan = cli("plan", "statements", "--format", "json", "--cache", "c.sqlite")
    assert plan.code == 0 and json.loads(plan.out)["unique"] == 30
    assert cli("statements", "-o", "out.parquet", "--cache", "c.sqlite").code == 0
    out = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert len(out) == 32 and sorted(r["plays"] for r in out) == list(range(32))
    by_plays = {r["plays"]: r for r in out}
    assert all(by_plays[n]["isrc_normalized"] == codes[n] for n in range(30))
    assert [by_plays[n]["status"] for n in (30, 31)] == ["invalid", "found"]
    assert {r["year"] for r in out} == {2023, 2024}  # the partition key is a column
    assert sum(r["status"] == "found" for r in out) == 31
    assert spotify.stats()["unique_isrcs_searched"] == 30
    # CSV out, from the cache: the same rows, nothing asked again.
    spotify.reset_stats()
    assert cli("statements", "-o", "out.csv", "--cache", "c.sqlite").code == 0
    assert spotify.stats()["total_requests"] == 0
    assert [r["spotify_track_id"] for r in read_csv(tmp_path / "out.csv")] == [
        r["spotify_track_id"] or "" for r in out
    ]
    (tmp_path / "empty").mkdir()
    ran = cli("empty", "-o", "x.csv")
    assert ran.code == 2 and "no Parquet file" in ran.err
    ran = cli("statements", "-o", "x.csv", "--input-format", "csv")
    assert ran.code == 2 and "folder" in ran.err


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_lines_written_from_text_are_the_bytes_pandas_writes(
    spotify: ServerThread, env: Any, cli: Cli, tmp_path: Path, suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The text path (a line per row from text built once per ISRC) against the frame path
    (pandas' to_csv), byte for byte, on cells that need quoting, and with a carriage
    return, which sends its chunk down the frame path."""
    from isrc_resolver.tables.write import OutputSink

    env(spotify)
    sep = "\t" if suffix == "tsv" else ","
    rows = catalogue_rows(300, seed=11)  # commas, quotes, line breaks, emoji; messy ISRCs
    for n, row in enumerate(rows):
        row["note"] = ["", "a\tb", '"x"', "=1+2", " pad ", "NA", "é, ü"][n % 7]
    odd = [dict(rows[0], note="carriage\rreturn")]
    for name, data in (("plain", rows), ("cr", rows[:150] + odd + rows[150:])):
        write_csv(tmp_path / f"{name}.{suffix}", data, delimiter=sep)
        args = ["--cache", "c.sqlite"]
        assert cli(f"{name}.{suffix}", "-o", f"{name}.lines.{suffix}", *args).code == 0
        with monkeypatch.context() as m:
            m.setattr(OutputSink, "writes_lines", property(lambda self: False))
            assert cli(f"{name}.{suffix}", "-o", f"{name}.frame.{suffix}", *args).code == 0
        lines = (tmp_path / f"{name}.lines.{suffix}").read_bytes()
        frame = (tmp_path / f"{name}.frame.{suffix}").read_bytes()
        assert lines == frame, name
        with (tmp_path / f"{name}.lines.{suffix}").open(newline="", encoding="utf-8") as fh:
            assert len(list(csv.DictReader(fh, delimiter=sep))) == len(data)


def test_cache_export_and_review_never_write_over_the_cache(
    spotify: ServerThread, env: Any, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.csv").code == 0  # a cache named .csv
    before = (tmp_path / "c.csv").read_bytes()
    ran = cli("cache", "export", "c.csv", "--cache", "c.csv")
    assert ran.code == 2 and "is the same file as c.csv (--cache)" in ran.err
    ran = cli("review", "out.csv", "-o", "c.csv", "--cache", "c.csv")
    assert ran.code == 2 and "is the same file as c.csv (--cache)" in ran.err
    assert (tmp_path / "c.csv").read_bytes() == before


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_catalogue_past_what_a_run_holds_streams_with_the_same_bytes(
    spotify: ServerThread, env: Callable[[ServerThread], None], cli: Cli, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, suffix: str,
) -> None:  # fmt: skip
    """Past HELD_AT_MOST distinct ISRCs a run keeps them on disk and reads each cached
    answer again as it writes (letting the oldest go past _FILLED_KEPT): its output is the
    one the in-memory run writes, cold (every ISRC asked), warm (every answer cached) and
    with every answer past its age (asked again), duplicates and invalid values among the
    rows."""
    from isrc_resolver.pipeline import plan
    from isrc_resolver.store.runset import RunSet
    from isrc_resolver.tables import rows

    env(spotify)
    monkeypatch.setattr(rows, "_FILLED_KEPT", 7)
    spilled: list[int] = []
    add = RunSet.add

    def spy(self: RunSet, isrcs: Any) -> None:
        spilled.append(1)
        add(self, isrcs)

    monkeypatch.setattr(RunSet, "add", spy)
    codes = isrcs(120)
    values = [*codes, *codes[::3], "not an isrc", "", codes[5].lower()]
    write_csv(tmp_path / "in.csv", [{"isrc": v, "n": str(i)} for i, v in enumerate(values)])

    def run(name: str, cache: str, held_at_most: int) -> pd.DataFrame:
        monkeypatch.setattr(plan, "HELD_AT_MOST", held_at_most)
        spotify.reset_stats()
        ran = cli("in.csv", "-o", f"{name}.{suffix}", "--cache", cache)
        assert ran.code == 0, ran.err
        read = pd.read_csv if suffix == "csv" else pd.read_parquet
        return (
            read(tmp_path / f"{name}.{suffix}", dtype=str)
            if suffix == "csv"
            else read(tmp_path / f"{name}.{suffix}")
        )

    def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
        """The same rows and answers (each run that asks stamps its own resolved_at)."""
        return a.drop(columns=["resolved_at"]).equals(b.drop(columns=["resolved_at"]))

    cold = run("streamed", "s.sqlite", 10)
    assert spilled  # it streamed (the held runs add nothing to a RunSet)
    spilled.clear()
    assert same(cold, run("held", "h.sqlite", 250_000)) and len(cold) == len(values)
    assert not spilled
    # Warm, on one cache: the very same bytes, and no request.
    run("warm.held", "s.sqlite", 250_000)
    run("warm.streamed", "s.sqlite", 10)
    assert spotify.stats()["search_requests"] == 0
    warm = [(tmp_path / f"warm.{k}.{suffix}").read_bytes() for k in ("held", "streamed")]
    assert warm[0] == warm[1]
    # Every answer past its age: asked again, kept the same.
    age_cache(tmp_path / "s.sqlite", days=40)
    shutil.copy(tmp_path / "s.sqlite", tmp_path / "h2.sqlite")
    again = run("again", "s.sqlite", 10)
    assert spotify.stats()["search_requests"] == 120
    assert same(again, run("held.again", "h2.sqlite", 250_000))
    assert spotify.stats()["search_requests"] == 120


def test_a_streamed_run_under_a_budget_writes_what_a_held_run_writes(
    spotify: ServerThread, env: Callable[[ServerThread], None], cli: Cli, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A streamed run keeps the ISRCs it asks, and the outcomes the cache does not hold
    (deferred, here), in its temporary database, asking a batch at a time, and stops
    asking once the budget is spent: under ``--max-requests`` its rows are those of a run
    that holds them in memory."""
    from isrc_resolver.pipeline import plan
    from isrc_resolver.store.runset import RunSet

    env(spotify)
    monkeypatch.setattr(plan, "ASK_BATCH", 16)  # several batches, the budget spent in the 2nd
    kept: list[int] = []
    keep = RunSet.keep

    def spy(self: RunSet, outcomes: Any) -> None:
        outcomes = list(outcomes)
        kept.append(len(outcomes))
        keep(self, outcomes)

    monkeypatch.setattr(RunSet, "keep", spy)
    codes = isrcs(90)
    write_csv(tmp_path / "in.csv", [{"isrc": v} for v in [*codes, *codes[::4], "nope"]])

    def run(name: str, held_at_most: int) -> pd.DataFrame:
        monkeypatch.setattr(plan, "HELD_AT_MOST", held_at_most)
        spotify.reset_stats()
        ran = cli("in.csv", "-o", f"{name}.csv", "--cache", f"{name}.sqlite",
                  "--max-requests", "25", "--fallback-markets", "none")  # fmt: skip
        assert ran.code == 3, ran.err
        assert spotify.stats()["search_requests"] == 25
        return pd.read_csv(tmp_path / f"{name}.csv", dtype=str).drop(columns=["resolved_at"])

    streamed = run("streamed", 10)
    # 90 new ISRCs in batches of 16: the budget of 25 runs out in the second batch; the 58
    # left are not put through the stages one by one, their rows made as they are written.
    assert len(kept) == 2
    held = run("held", 250_000)
    # Which ISRCs the last few requests answered is the workers' race: the same counts,
    # and the same rows where the two runs reached the same ISRCs.
    assert streamed["status"].value_counts().equals(held["status"].value_counts())
    same = streamed["status"] == held["status"]
    assert same.sum() >= len(streamed) - 16
    assert streamed[same].equals(held[same])
    assert (streamed["status"] == "deferred").sum() > 50


def test_a_stopped_streamed_run_still_serves_its_stale_answers(
    spotify: ServerThread, env: Callable[[ServerThread], None], cli: Cli, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Stale answers are asked after the new ISRCs; a streamed run whose budget runs out
    among the new ones still serves every stale answer it knows, marked stale, as a held
    run does."""
    from isrc_resolver.pipeline import plan

    env(spotify)
    monkeypatch.setattr(plan, "ASK_BATCH", 8)
    old, new = isrcs(30), isrcs(40, start=500)
    write_csv(tmp_path / "old.csv", [{"isrc": v} for v in old])
    write_csv(tmp_path / "in.csv", [{"isrc": v} for v in [*new, *old]])
    assert cli("old.csv", "-o", "old.out.csv", "--cache", "a.sqlite").code == 0
    age_cache(tmp_path / "a.sqlite", days=40)
    shutil.copy(tmp_path / "a.sqlite", tmp_path / "b.sqlite")

    def run(name: str, cache: str, held_at_most: int) -> pd.DataFrame:
        monkeypatch.setattr(plan, "HELD_AT_MOST", held_at_most)
        ran = cli("in.csv", "-o", f"{name}.csv", "--cache", cache, "--max-requests", "10")
        assert ran.code == 3, ran.err
        return pd.read_csv(tmp_path / f"{name}.csv", dtype=str).drop(columns=["resolved_at"])

    streamed, held = run("streamed", "a.sqlite", 10), run("held", "b.sqlite", 250_000)
    # Which new ISRCs the 10 requests answered is the workers' race; the rest is the same.
    counts = [frame["status"].value_counts().to_dict() for frame in (streamed, held)]
    assert counts[0] == counts[1]
    stale = streamed[streamed["isrc"].isin(old)]
    assert stale.equals(held[held["isrc"].isin(old)])
    assert len(stale) == 30 and (stale["status"] != "deferred").all()
    assert (streamed["status"] == "deferred").sum() == 30  # the new ones not reached


def test_a_full_disk_under_the_streamed_isrcs_is_the_machine_s_failure(
    spotify: ServerThread, env: Callable[[ServerThread], None], cli: Cli, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The temporary database of a streaming run fills up (SQLite says the disk is full):
    exit 1 naming the folder and what to do, before any request, and no output file."""
    import sqlite3

    from isrc_resolver.pipeline import plan
    from isrc_resolver.store import runset

    def small() -> sqlite3.Connection:
        db = sqlite3.connect("")
        db.execute("PRAGMA max_page_count = 3")  # a few pages: as good as a full disk
        return db

    env(spotify)
    monkeypatch.setattr(plan, "HELD_AT_MOST", 10)
    monkeypatch.setattr(runset, "_connect", small)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(400)])
    ran = cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite")
    assert ran.code == 1, ran.err
    assert "temporary database" in ran.err and "free some space" in ran.err
    assert "Traceback" not in ran.err
    assert spotify.stats()["total_requests"] == 0
    assert not (tmp_path / "out.csv").exists()


def test_parquet_written_by_arrow_is_the_bytes_pandas_writes(
    spotify: ServerThread, env: Any, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parquet out (here without a match check): the input's batches with our columns added by
    Arrow (each distinct ISRC's values taken per row) against the frame path (pandas per
    chunk), byte for byte, from CSV and from typed Parquet with nulls."""
    from isrc_resolver.tables.write import OutputSink

    env(spotify)
    rows = catalogue_rows(300, seed=12)
    write_csv(tmp_path / "in.csv", rows)
    typed = pd.DataFrame(
        {
            "isrc": [None if n % 17 == 0 else r["isrc"] for n, r in enumerate(rows)],
            "plays": pd.array([None if n % 5 == 0 else n for n in range(300)], dtype="Int64"),
            "share": [n / 7 for n in range(300)],
        }
    )
    typed.to_parquet(tmp_path / "in.parquet", index=False)
    arrow_chunks: list[int] = []
    write_arrow = OutputSink.write_arrow

    def counted(self: OutputSink, batch: Any, *rest: Any) -> Any:
        arrow_chunks.append(batch.num_rows)
        return write_arrow(self, batch, *rest)

    for source in ("in.csv", "in.parquet"):
        arrow_chunks.clear()
        with monkeypatch.context() as m:
            m.setattr(OutputSink, "write_arrow", counted)
            assert cli(source, "-o", "arrow.parquet", "--cache", "c.sqlite").code == 0
        assert sum(arrow_chunks) == 300, source  # every row went the Arrow way
        with monkeypatch.context() as m:
            m.setattr(OutputSink, "writes_arrow", property(lambda self: False))
            assert cli(source, "-o", "frame.parquet", "--cache", "c.sqlite").code == 0
        arrow = (tmp_path / "arrow.parquet").read_bytes()
        assert arrow == (tmp_path / "frame.parquet").read_bytes(), source
        out = pd.read_parquet(tmp_path / "arrow.parquet")
        assert len(out) == 300 and set(out["status"]) >= {"found", "invalid"}
        assert out["spotify_track_id"].notna().sum() == (out["status"] == "found").sum()


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet"])
def test_rows_with_a_match_check_are_the_bytes_pandas_writes(
    spotify: ServerThread, env: Any, cli: Cli, tmp_path: Path, suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """With title and artist columns each row gets its own match check: the Arrow paths
    (the check put between the pieces of the ISRC's text, or into its Arrow columns)
    against the frame path, byte for byte; the checks are there (ok and not)."""
    from isrc_resolver.tables.write import OutputSink

    env(spotify)
    rows = catalogue_rows(300, seed=13)
    for n, row in enumerate(rows):
        row["artist"] = ["", "Nobody", 'Ünïcödé, "Band"', "=cmd"][n % 4]
    write_csv(tmp_path / "in.csv", rows)
    args = ["--cache", "c.sqlite", "--fallback-markets", "none"]
    assert cli("in.csv", "-o", "first.csv", *args).code == 0
    for n, got in enumerate(read_csv(tmp_path / "first.csv")):
        if n % 3 == 0:  # the server's own names: the check says ok
            rows[n]["title"], rows[n]["artist"] = got["track"], got["artist"]
    write_csv(tmp_path / "in.csv", rows)
    assert cli("in.csv", "-o", f"fast.{suffix}", *args).code == 0
    with monkeypatch.context() as m:
        m.setattr(OutputSink, "writes_lines", property(lambda self: False))
        m.setattr(OutputSink, "writes_arrow", property(lambda self: False))
        assert cli("in.csv", "-o", f"frame.{suffix}", *args).code == 0
    fast = (tmp_path / f"fast.{suffix}").read_bytes()
    assert fast == (tmp_path / f"frame.{suffix}").read_bytes()
    out = (
        pd.read_parquet(tmp_path / "fast.parquet")
        if suffix == "parquet"
        else pd.read_csv(tmp_path / f"fast.{suffix}", sep="\t" if suffix == "tsv" else ",",
                         dtype=str, keep_default_na=False)
    )  # fmt: skip
    checked = out[out["status"] == "found"]
    assert len(checked) > 100 and checked["match_check"].nunique() >= 2
    assert (out.loc[out["status"] != "found", "match_check"].fillna("") == "").all()
