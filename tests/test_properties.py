"""Property: whatever table goes in, every row and cell comes back unchanged beside the new
columns, in CSV and TSV, with or without a BOM (hypothesis writes the tables)."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isrc_resolver.cli import main

from .helpers import ServerThread

Env = Callable[[ServerThread], None]

# Cells: any text a spreadsheet may hold, quotes, delimiters, line breaks and BOMs included
# (not NUL, which no CSV tool writes), plus real ISRCs in the ISRC column now and then.
CELL = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
) | st.sampled_from(["", " ", '"', ",", "\n", "\r\n", "\r", "\ufeff", "NA", "null", "0042"])
ISRC_CELL = CELL | st.sampled_from(["QZ7XS2400012", "usrc17607839", "QZ-J84-24-00387"])
NAME = st.text("abcdefghijklmnopqrstuvwxyz_ 0123456789", min_size=1, max_size=8)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    others = draw(st.lists(NAME, max_size=3, unique=True).filter(lambda n: "isrc" not in n))
    header = list(others)
    header.insert(draw(st.integers(0, len(others))), "isrc")
    rows = draw(
        st.lists(
            st.tuples(*(ISRC_CELL if name == "isrc" else CELL for name in header)),
            max_size=8,
        )
    )
    return header, [list(row) for row in rows]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables(), delimiter=st.sampled_from([",", "\t"]), bom=st.booleans())
def test_every_row_and_cell_comes_back(
    env: Env,
    spotify: ServerThread,
    table: tuple[list[str], list[list[str]]],
    delimiter: str,
    bom: bool,
) -> None:
    env(spotify)
    header, rows = table
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / f"in{suffix}", Path(folder) / f"out{suffix}"
        with source.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
            writer = csv.writer(fh, delimiter=delimiter)  # CRLF, quoting what needs it
            writer.writerow(header)
            writer.writerows(rows)
        code = main([str(source), "-o", str(target), "--no-cache", "--rate", "1000", "-q"])
        assert code == 0
        with target.open(newline="", encoding="utf-8") as fh:
            out = list(csv.reader(fh, delimiter=delimiter))
    assert out[0][: len(header)] == header
    assert len(out) == len(rows) + 1
    for written, row in zip(out[1:], rows, strict=True):
        assert written[: len(header)] == row
        status = written[out[0].index("status", len(header))]  # ours, after the input's
        assert status in {"found", "not_found", "invalid"}


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_a_lone_carriage_return_in_a_cell_survives(
    env: Env, spotify: ServerThread, tmp_path: Path, delimiter: str
) -> None:
    """csv quotes a cell with a line feed, but not one with a lone carriage return."""
    env(spotify)
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    with (tmp_path / f"in{suffix}").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows([["isrc", "note"], ["QZ7XS2400012", "a\rb"]])
    assert main([f"in{suffix}", "-o", f"out{suffix}", "--no-cache", "--rate", "1000"]) == 0
    with (tmp_path / f"out{suffix}").open(newline="", encoding="utf-8") as fh:
        out = list(csv.reader(fh, delimiter=delimiter))
    assert out[1][:2] == ["QZ7XS2400012", "a\rb"]


SPELLINGS = st.sampled_from(
    ["QZ7XS2400012", "usrc17607839", "QZ-J84-24-00387", "QZJ842400387", "US RC1 76 07839"]
)


@settings(max_examples=60, deadline=None)
@given(cells=st.lists(SPELLINGS | CELL, max_size=40), chunk=st.integers(1, 7))
def test_the_first_pass_finds_the_isrcs_in_the_order_they_first_appear(
    cells: list[str], chunk: int
) -> None:
    """The run's first pass (a chunk's distinct cells from Arrow, normalised only when
    some cell is not canonical) gives the distinct valid ISRCs in the order a cell-by-cell
    walk finds them: the order new ISRCs are asked in."""
    from isrc_resolver.isrc import normalize_values
    from isrc_resolver.pipeline.plan import distinct
    from isrc_resolver.tables import open_input

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([["isrc", "n"], *([c, str(n)] for n, c in enumerate(cells))])
        with open_input(path, chunk_rows=chunk) as source:
            rows, unique, seen = distinct(source.isrc_spellings(), may_stream=False)
    assert seen is None
    assert rows == len(cells)
    assert unique == list(normalize_values(cells).unique)
