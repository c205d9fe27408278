"""Spreadsheets in: ``.xlsx`` and ``.ods``, read with python-calamine (``.xlsx`` out is
:mod:`.workbook_out`'s).

A catalogue sheet often has a title and a period line above its header, several sheets,
UPCs stored as 13-digit numbers, dates, and codes with leading zeros stored as text. The
input is read whole (calamine reads a sheet at once; 200,000 rows of 8 columns are a few
hundred MB at most), its header found under the preamble rows, and every cell kept with
its type: the pipeline sees each cell as text (as a CSV would hold it), and an ``.xlsx``
output writes each input cell back with its own type, then the added columns.

Known traps, handled here: calamine skips empty top rows unless told not to, and gives
every number as a float (a whole number goes back as an integer); a password-protected
workbook is an OLE file holding an encrypted package, not an ``.xls``. A formula in the
input comes back as its cached value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import python_calamine as calamine

from ..errors import InputError
from .columns import find_isrc_column

__all__ = ["HEADER_ROWS", "Sheet"]

HEADER_ROWS = 20  # the header is looked for in this many rows from the top

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE compound file: .xls, or an encrypted .xlsx
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_ZIP = b"PK\x03\x04"


class Sheet:
    """One sheet of a workbook, read whole: its name, the rows above its header, its
    columns and its data rows, each cell typed. ``sheet``: by name, or by 0-based index;
    by default the first sheet that has an ISRC column (or ``column``) in its first rows."""

    def __init__(
        self, data: bytes, display: str, sheet: str | int | None, column: str | None
    ) -> None:
        book = _workbook(data, display)
        self.name, rows, at = _choose_sheet(book, sheet, column, display)
        self.preamble = [_typed_row(r) for r in rows[:at]]
        self.columns = _header(rows[at], self.name, display)
        width = len(self.columns)
        # Calamine gives the sheet's whole used area: each row as wide as the widest.
        self.rows = [_typed_row(r[:width]) for r in rows[at + 1 :]]

    def batches(self, columns: list[str], size: int) -> Iterator[pa.RecordBatch]:
        """``columns`` of the data rows, ``size`` rows at a time, each cell as text (as a
        CSV would hold it)."""
        at = [self.columns.index(n) for n in columns]
        schema = pa.schema([(n, pa.string()) for n in columns])
        for start in range(0, len(self.rows), size):
            part = self.rows[start : start + size]
            arrays = [pa.array([_text(row[i]) for row in part], pa.string()) for i in at]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _workbook(data: bytes, display: str) -> calamine.CalamineWorkbook:
    """The workbook in ``data``, or an InputError saying what the file is instead."""
    if data.startswith(_OLE):
        if _ENCRYPTED in data:
            raise InputError(
                f"{display} is password-protected (an encrypted workbook): save an "
                "unprotected copy (File > Info > Protect Workbook > remove the password)"
            )
        raise InputError(
            f"{display} is an old Excel 97-2003 file (.xls), not .xlsx: save it as .xlsx "
            "(or as CSV UTF-8)"
        )
    if not data.startswith(_ZIP):
        raise InputError(f"{display} is not a workbook (.xlsx and .ods are zip files)")
    try:
        return calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except (calamine.CalamineError, calamine.ZipError, calamine.XmlError, ValueError) as exc:
        raise InputError(f"{display} is not a readable workbook ({exc})") from None


def _choose_sheet(
    book: calamine.CalamineWorkbook,
    sheet: str | int | None,
    column: str | None,
    display: str,
) -> tuple[str, list[list[Any]], int]:
    """The sheet to read, its rows, and where its header is."""
    names = list(book.sheet_names)
    listed = ", ".join(repr(n) for n in names) or "(none)"
    if sheet is not None:
        if isinstance(sheet, int):
            if not 0 <= sheet < len(names):
                raise InputError(
                    f"{display} has no sheet {sheet} (its sheets, from 0: {listed}); "
                    "name one with --sheet"
                )
            name = names[sheet]
        elif sheet in names:
            name = sheet
        else:
            raise InputError(f"{display} has no sheet {sheet!r}; its sheets are: {listed}")
        rows = _rows(book, name, display)
        at = _header_at(rows, column)
        if at is None:
            raise InputError(
                f"{display}, sheet {name!r}: no ISRC column in its first {HEADER_ROWS} rows"
                + (f" (no column named {column!r})" if column else "")
                + "; name it with --column, or choose another sheet with --sheet"
            )
        return name, rows, at
    for name in names:
        rows = _rows(book, name, display)
        at = _header_at(rows, column)
        if at is not None:
            return name, rows, at
    raise InputError(
        f"no sheet of {display} has an ISRC column in its first {HEADER_ROWS} rows (sheets: "
        f"{listed}); name the column with --column, or the sheet with --sheet"
    )


def _rows(book: calamine.CalamineWorkbook, name: str, display: str) -> list[list[Any]]:
    try:
        rows: list[list[Any]] = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except (calamine.CalamineError, calamine.XmlError, ValueError) as exc:
        raise InputError(f"{display}, sheet {name!r}: cannot be read ({exc})") from None
    return rows


def _header_at(rows: Sequence[Sequence[Any]], column: str | None) -> int | None:
    """The first of the top rows that names an ISRC column (or ``column``)."""
    for at, row in enumerate(rows[:HEADER_ROWS]):
        names = [str(v).strip() if v not in (None, "") else "" for v in row]
        if column is not None:
            if column in names:
                return at
            continue
        with contextlib.suppress(InputError):
            find_isrc_column([n for n in names if n], None, "")
            return at
    return None


def _header(row: Sequence[Any], sheet: str, display: str) -> list[str]:
    """The header row's names: an empty cell is named by its column letter."""
    names = [str(v).strip() if v not in (None, "") else _letter(n) for n, v in enumerate(row)]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise InputError(
            f"{display}, sheet {sheet!r}, has duplicate column names: {', '.join(doubled)}; "
            "rename them so each column has its own name"
        )
    return names


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _typed_row(row: Sequence[Any]) -> list[Any]:
    return [_typed(v) for v in row]


def _typed(value: Any) -> Any:
    """A cell as it is meant: empty as None, a whole number as an integer."""
    if value == "" or value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _text(value: Any) -> str:
    """A cell as a CSV would hold it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
