"""Spreadsheets in and out, as faithfully as CSV: a label's catalogue workbook with a
preamble, several sheets, typed cells; cross-format runs; bad workbooks refused before any
request, with nothing written."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import python_calamine
import xlsxwriter

from .conftest import Cli
from .helpers import ServerThread, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
FORMULA_NAME = '=HYPERLINK("http://example.invalid","click")'


def _catalogue(path: Path) -> None:
    """A label's workbook: a notes sheet first; then the catalogue, with two preamble
    lines and a blank row above the header, the ISRCs under "ISRC Code" in the fourth
    column, a 13-digit UPC stored as a number, a date, a code with leading zeros stored as
    text, an empty cell, a formula, a blank row and a footer line."""
    book = xlsxwriter.Workbook(path, {"strings_to_numbers": False, "strings_to_formulas": False})
    notes = book.add_worksheet("Notes")
    notes.write_string(0, 0, "Read me first")
    sheet = book.add_worksheet("Catalogue")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_string(0, 0, "Label catalogue")
    sheet.write_string(1, 0, "Period: 2024 Q1")
    header = ["Title", "Artist", "UPC", "ISRC Code", "Released", "Code"]
    for col, name in enumerate(header):
        sheet.write_string(3, col, name)
    rows = [
        ("Hey Jude", "The Beatles", 5012345678900, "GBAYE0601498", dt.date(2024, 1, 5), "00123"),
        ("Hosted", "Nobody", 5012345678917, "QZHOS2400001", dt.date(2024, 2, 1), "00042"),
        ("Unknown", "", None, "not an isrc", None, "7"),
    ]
    for r, values in enumerate(rows, start=4):
        for c, value in enumerate(values):
            if value is None or value == "":
                continue
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date)
            elif isinstance(value, int):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, value)
    sheet.write_formula(7, 2, "=1+2", None, 3)
    sheet.write_string(9, 0, "Total")
    book.close()


def _cells(path: Path, sheet: int = 0) -> list[list[Any]]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    rows: list[list[Any]] = book.get_sheet_by_index(sheet).to_python(skip_empty_area=False)
    return rows


@pytest.fixture
def hosted(spotify_thread: Callable[..., ServerThread], env: Env, tmp_path: Path) -> ServerThread:
    """A local server whose track for QZHOS2400001 is named like a formula."""
    fixtures = tmp_path / "fixtures.json"
    entry = {"isrc": "QZHOS2400001", "name": FORMULA_NAME, "artists": ["=SUM(A1:A9)"]}
    fixtures.write_text(json.dumps([entry]), encoding="utf-8")
    server = spotify_thread(fixtures=fixtures)
    env(server)
    return server


def test_a_label_workbook_round_trips_with_its_preamble_types_and_rows(
    hosted: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    _catalogue(tmp_path / "catalogue.xlsx")
    ran = cli("catalogue.xlsx", "-o", "out.xlsx", "--no-cache")
    assert ran.code == 0, ran.err
    given, out = _cells(tmp_path / "catalogue.xlsx", 1), _cells(tmp_path / "out.xlsx")
    width = len(given[3])
    assert [row[:width] for row in out] == given  # preamble, header, every row, every cell
    assert out[3][width : width + 2] == ["isrc_normalized", "status"]
    hey_jude, hosted_row, unknown, formula, blank, total = out[4:10]
    assert hey_jude[2] == 5012345678900 and isinstance(hey_jude[4], dt.date)
    assert hey_jude[5] == "00123" and hosted_row[5] == "00042"  # text keeps its zeros
    status = width + 1
    assert [hey_jude[status], hosted_row[status], unknown[status]] == ["found", "found", "invalid"]
    assert formula[2] == 3 and formula[status] == "invalid"  # a formula: its cached value
    assert blank[status] == "invalid" and total[0] == "Total" and total[status] == "invalid"
    track = out[3].index("track")
    assert hosted_row[track] == FORMULA_NAME  # a store's text is text, never a formula
    with zipfile.ZipFile(tmp_path / "out.xlsx") as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    assert "<v>5012345678900</v>" in xml  # the UPC is that integer, not 5.0123456789E12


def test_cross_format_runs_keep_every_value(hosted: ServerThread, cli: Cli, tmp_path: Path) -> None:
    _catalogue(tmp_path / "catalogue.xlsx")
    assert cli("catalogue.xlsx", "-o", "out.csv", "--no-cache").code == 0
    rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 6 and rows[0]["UPC"] == "5012345678900"
    assert rows[0]["Released"] == "2024-01-05" and rows[0]["Code"] == "00123"
    assert cli("catalogue.xlsx", "-o", "out.parquet", "--no-cache").code == 0
    assert pq.read_table(tmp_path / "out.parquet").column("Code").to_pylist()[:2] == [
        "00123", "00042",
    ]  # fmt: skip
    write_csv(tmp_path / "in.csv", [{"isrc": "GBAYE0601498", "code": "000987", "n": "12"}])
    assert cli("in.csv", "-o", "from_csv.xlsx", "--no-cache").code == 0
    header, row = _cells(tmp_path / "from_csv.xlsx")
    assert row[:3] == ["GBAYE0601498", "000987", "12"]  # CSV text stays text
    assert row[header.index("status")] == "found"


def test_the_sheet_is_chosen_by_name_or_index(
    hosted: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    _catalogue(tmp_path / "catalogue.xlsx")
    for sheet in ("Catalogue", "1"):
        ran = cli("catalogue.xlsx", "-o", "out.csv", "--no-cache", "--sheet", sheet)
        assert ran.code == 0, ran.err
        assert len(read_csv(tmp_path / "out.csv")) == 6
    ran = cli("catalogue.xlsx", "-o", "o.csv", "--no-cache", "--sheet", "Notes")
    assert ran.code == 2 and "catalogue.xlsx, sheet 'Notes': no ISRC column" in ran.err


OLE_HEAD = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _password_protected(path: Path) -> None:
    # An encrypted workbook is an OLE compound file holding an "EncryptedPackage" stream.
    head = OLE_HEAD + b"\0" * 504
    path.write_bytes(head + "EncryptedPackage".encode("utf-16-le") + b"\0" * 512)


def _corrupt(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 50)


def _xls(path: Path) -> None:
    path.write_bytes(OLE_HEAD + b"\0" * 1024)  # a compound file with no encrypted package


BAD = [
    ("corrupt.xlsx", _corrupt, "not a readable workbook"),
    ("locked.xlsx", _password_protected, "is password-protected"),
    ("renamed.xlsx", _xls, "old Excel 97-2003 file (.xls)"),
    ("old.xls", _xls, "old Excel 97-2003 file (.xls)"),
]


@pytest.mark.parametrize(("name", "make", "said"), BAD)
def test_a_bad_workbook_is_refused_before_any_request(
    hosted: ServerThread,
    cli: Cli,
    tmp_path: Path,
    name: str,
    make: Callable[[Path], object],
    said: str,
) -> None:
    make(tmp_path / name)
    ran = cli(name, "-o", "out.csv", "--no-cache")
    assert ran.code == 2 and said in ran.err and name in ran.err, ran.err
    assert hosted.stats()["total_requests"] == 0 and not (tmp_path / "out.csv").exists()


def test_no_sheet_with_isrcs_and_a_missing_sheet_are_refused(
    hosted: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    book = xlsxwriter.Workbook(tmp_path / "plain.xlsx")
    book.add_worksheet("A").write_string(0, 0, "title")
    book.close()
    ran = cli("plain.xlsx", "-o", "out.xlsx", "--no-cache")
    assert ran.code == 2 and "no sheet of plain.xlsx has an ISRC column" in ran.err
    ran = cli("plain.xlsx", "-o", "out.xlsx", "--no-cache", "--sheet", "B")
    assert ran.code == 2 and "plain.xlsx has no sheet 'B'; its sheets are: 'A'" in ran.err
    assert hosted.stats()["total_requests"] == 0 and not (tmp_path / "out.xlsx").exists()


def test_the_library_reads_and_writes_workbooks(hosted: ServerThread, tmp_path: Path) -> None:
    _catalogue(tmp_path / "catalogue.xlsx")

    async def run() -> int:
        async with resolver_for(hosted, cache=None) as r:
            report = await r.resolve_file(
                tmp_path / "catalogue.xlsx", tmp_path / "lib.xlsx", sheet="Catalogue"
            )
            frame = pd.read_excel(
                tmp_path / "catalogue.xlsx", sheet_name=1, header=3, dtype=str, engine="calamine"
            )
            out = await r.resolve_dataframe(frame, "ISRC Code")
            assert list(out["status"][:2]) == ["found", "found"]
        return report.rows

    assert asyncio.run(run()) == 6
    assert _cells(tmp_path / "lib.xlsx")[4][:4] == [
        "Hey Jude",
        "The Beatles",
        5012345678900,
        "GBAYE0601498",
    ]


def test_an_output_longer_than_a_sheet_is_refused_before_any_request(
    hosted: ServerThread, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import isrc_resolver.tables.write as write

    monkeypatch.setattr(write, "EXCEL_ROWS", 6)  # a sheet of 6 rows: 5 under the header
    write_csv(tmp_path / "in.csv", [{"isrc": "GBAYE0601498"}] * 6)
    ran = cli("in.csv", "-o", "out.xlsx", "--no-cache")
    assert ran.code == 2 and "more than one sheet of an .xlsx holds (5 under" in ran.err
    assert hosted.stats()["total_requests"] == 0 and not (tmp_path / "out.xlsx").exists()
    assert cli("in.csv", "-o", "out.csv", "--no-cache").code == 0


def _ods(path: Path, rows: list[list[Any]]) -> None:
    """A minimal OpenDocument spreadsheet, as LibreOffice saves one (one sheet)."""
    cells = []
    for row in rows:
        out = []
        for v in row:
            if v is None:
                out.append("<table:table-cell/>")
            elif isinstance(v, int | float):
                out.append(
                    f'<table:table-cell office:value-type="float" office:value="{v}">'
                    f"<text:p>{v}</text:p></table:table-cell>"
                )
            else:
                out.append(
                    '<table:table-cell office:value-type="string">'
                    f"<text:p>{v}</text:p></table:table-cell>"
                )
        cells.append("<table:table-row>" + "".join(out) + "</table:table-row>")
    office = "urn:oasis:names:tc:opendocument:xmlns"
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<office:document-content xmlns:office="{office}:office:1.0" '
        f'xmlns:table="{office}:table:1.0" xmlns:text="{office}:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Releases">'
        + "".join(cells)
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<manifest:manifest xmlns:manifest="{office}:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)


def test_an_ods_is_read_as_a_workbook(hosted: ServerThread, cli: Cli, tmp_path: Path) -> None:
    rows = [["Releases 2024", None], [None, None], ["ISRC", "UPC"], ["GBAYE0601498", 5012345678900]]
    _ods(tmp_path / "releases.ods", [*rows, ["Total", None]])
    assert cli("releases.ods", "-o", "out.xlsx", "--no-cache").code == 0
    out = _cells(tmp_path / "out.xlsx")
    assert [r[:2] for r in out] == [
        ["Releases 2024", ""], ["", ""], ["ISRC", "UPC"], ["GBAYE0601498", 5012345678900],
        ["Total", ""],
    ]  # fmt: skip
    status = out[2].index("status")
    assert [r[status] for r in out[3:]] == ["found", "invalid"]
    ran = cli("releases.ods", "-o", "again.ods", "--no-cache")
    assert ran.code == 2 and "ods is read, not written" in ran.err
