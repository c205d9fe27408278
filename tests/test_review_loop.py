"""The review loop round-trips: an output re-saved by a spreadsheet, a Parquet review file,
pins that are noted, warned about and counted, and an export that agrees with the run."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import Cli
from .helpers import read_csv


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def _as_german_excel(source: Path, target: Path) -> None:
    """``source`` as German Excel saves a CSV: semicolons, WAHR and FALSCH, decimal
    commas, a byte-order mark and CRLF line ends."""
    with source.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))

    def cell(value: str) -> str:
        if value in ("True", "true"):
            return "WAHR"
        if value in ("False", "false"):
            return "FALSCH"
        if re.fullmatch(r"-?\d+\.\d+", value):
            return value.replace(".", ",")
        return value

    with target.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        out.writerow(rows[0])
        out.writerows([cell(v) for v in row] for row in rows[1:])


def test_an_output_resaved_by_german_excel_reviews_as_the_original(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli("--demo", "-o", "demo.csv", "--cache", "d.db").code == 0
    _as_german_excel(tmp_path / "demo.csv", tmp_path / "excel.csv")
    assert cli("review", "demo.csv", "-o", "a.csv", "--cache", "d.db").code == 0
    assert cli("review", "excel.csv", "-o", "b.csv", "--cache", "d.db").code == 0
    original, resaved = read_csv(tmp_path / "a.csv"), read_csv(tmp_path / "b.csv")
    assert any(r["isrc_conflict"] == "True" for r in original)  # the sample has conflicts
    assert any(r["match_score"] not in ("", "100.0") for r in original)  # and low scores
    assert resaved == original


def test_a_parquet_review_keeps_false_and_works_as_overrides(cli: Cli, tmp_path: Path) -> None:
    assert cli("--demo", "-o", "demo.parquet", "--cache", "d.db").code == 0
    assert cli("review", "demo.parquet", "-o", "r.parquet", "--cache", "d.db").code == 0
    review = pd.read_parquet(tmp_path / "r.parquet")
    found = review[review["status"] == "found"]
    assert found["isrc_conflict"].notna().all() and (~found["isrc_conflict"]).any()
    # Undecided (empty) rows are skipped; a decided one is taken.
    table = pq.read_table(tmp_path / "r.parquet")
    ids = table.column("spotify_track_id").to_pylist()
    ids[0] = "none"
    decided = table.set_column(1, "spotify_track_id", pa.array(ids, pa.string()))
    pq.write_table(decided, tmp_path / "pins.parquet")
    ran = cli("--demo", "-o", "again.csv", "--cache", "d.db", "--overrides", "pins.parquet")
    assert ran.code == 0, ran.err
    pinned = [r for r in read_csv(tmp_path / "again.csv") if r["match_method"] == "override"]
    assert {r["isrc_normalized"] for r in pinned} == {table.column("isrc")[0].as_py()}
    assert "pinned=1" in ran.err


def test_pins_are_noted_warned_about_counted_and_not_reviewed_again(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli("--demo", "-o", "demo.csv", "--cache", "d.db").code == 0
    found = [r for r in read_csv(tmp_path / "demo.csv") if r["status"] == "found"]
    conflicted = next(r for r in found if r["isrc_conflict"] == "True")
    other = next(r for r in found if r["isrc_normalized"] != conflicted["isrc_normalized"])
    with (tmp_path / "pins.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["isrc", "spotify_track_id", "note"])
        # A conflicted ISRC decided by a person; a track that carries another ISRC; an
        # ISRC the input does not have.
        out.writerow([conflicted["isrc_normalized"], conflicted["spotify_track_id"], "checked"])
        out.writerow([other["isrc_normalized"], conflicted["spotify_track_id"], "label says"])
        out.writerow(["GBAAA9900001", "none", "not in this input"])
    args = ["--demo", "-o", "pinned.csv", "--cache", "d.db", "--overrides", "pins.csv"]
    ran = cli(*args, "--summary-json", "s.json")
    assert ran.code == 0, ran.err
    assert "overrides: 3 ISRCs read from pins.csv" in ran.err
    assert f"pins {other['isrc_normalized']} to track" in ran.err  # the warning
    assert "pinned=2" in ran.err
    assert json.loads((tmp_path / "s.json").read_text())["pinned"] == 2
    rows = {r["isrc_normalized"]: r for r in read_csv(tmp_path / "pinned.csv")}
    assert rows[conflicted["isrc_normalized"]]["error"] == "pinned by the overrides file: checked"
    said = rows[other["isrc_normalized"]]["error"]
    assert "label says" in said and f"carries ISRC {conflicted['isrc_normalized']}" in said
    assert cli("review", "pinned.csv", "-o", "r.csv", "--cache", "d.db").code == 0
    listed = {r["isrc"] for r in read_csv(tmp_path / "r.csv")}
    assert conflicted["isrc_normalized"] not in listed and other["isrc_normalized"] not in listed
    # The export agrees with the run for pinned ISRCs (with the same overrides).
    assert (
        cli("cache", "export", "x.csv", "--cache", "d.db", "--demo", "--overrides", "pins.csv").code
        == 0
    )
    exported = {r["isrc"]: r for r in read_csv(tmp_path / "x.csv")}
    for isrc in (conflicted["isrc_normalized"], other["isrc_normalized"]):
        assert exported[isrc]["spotify_track_id"] == rows[isrc]["spotify_track_id"]
        assert exported[isrc]["match_method"] == "override"


def test_a_dataset_whose_parts_differ_keeps_every_column(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ds" / "day=1").mkdir(parents=True)
    (tmp_path / "ds" / "day=2").mkdir()
    pq.write_table(pa.table({"isrc": ["GBAYE0601498"], "a": [1]}), tmp_path / "ds/day=1/p.parquet")
    later = pa.table({"isrc": ["USUM71703861"], "a": [2], "label": ["X"]})
    pq.write_table(later, tmp_path / "ds/day=2/p.parquet")
    assert cli("--demo", "ds", "-o", "out.csv").code == 0
    rows = read_csv(tmp_path / "out.csv")
    assert [r["label"] for r in rows] == ["", "X"] and [r["a"] for r in rows] == ["1", "2"]
