"""Writing an ``.xlsx`` output (xlsxwriter, in constant memory): a workbook's preamble
rows, the header, every row with each input cell in its own type, then the added columns.
Text is always a text cell: a name from a store that starts with ``=`` is never a formula,
a URL never a link."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import xlsxwriter

from ..errors import InputError
from ..schema import output_columns
from .atomic import temporary_beside, umask
from .columns import Table, output_names

__all__ = ["EXCEL_ROWS", "WorkbookSink"]

EXCEL_ROWS = 1_048_576  # rows in one sheet of an .xlsx


class WorkbookSink:
    """Writes the output as one ``.xlsx`` sheet, to a temporary file until complete: the
    input's preamble rows (a workbook's), the header, every row with each input cell in
    its own type, then the added columns typed."""

    format = "xlsx"
    sep = ","
    types = None
    writes_lines = False
    writes_arrow = False

    def __init__(self, path: str, direct: bool, source: Table, kinds: Sequence[str] = ()):
        self.source = source
        self.columns = output_columns(kinds)
        self.names = output_names(source.columns, [c.name for c in self.columns])
        self._path = path
        self._tmp = None if direct else temporary_beside(path)
        self._book = xlsxwriter.Workbook(
            self._tmp or path,
            {
                "constant_memory": True,  # rows written one by one, memory flat
                "strings_to_numbers": False,
                "strings_to_formulas": False,  # a name starting with = stays text
                "strings_to_urls": False,
                "nan_inf_to_errors": True,
            },
        )
        name = source.sheet_name or "resolved"
        self._sheet = self._book.add_worksheet(name[:31])
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._time = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._row = 0  # the next row of the sheet
        self._done = 0  # data rows written
        for row in source.preamble:
            self._cells(row)
        self._cells([*source.columns, *self.names])

    def write(self, chunk: pd.DataFrame, data: Sequence[Sequence[Any]]) -> None:
        """Append ``chunk``'s rows with ``data``: the values of each added column."""
        if self._row + len(chunk) > EXCEL_ROWS:
            raise InputError(
                f"{self._path}: more than {EXCEL_ROWS:,} rows, the most one sheet holds; "
                "write .csv or .parquet"
            )
        inputs = self.source.typed(self._done, self._done + len(chunk))
        if inputs is None:
            inputs = _frame_rows(chunk, self.source.columns)
        for n, cells in enumerate(inputs):
            self._cells([*cells, *(_ours(column[n]) for column in data)])
        self._done += len(chunk)

    def _cells(self, values: Sequence[Any]) -> None:
        sheet, row = self._sheet, self._row
        for col, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row, col, value)
            elif isinstance(value, int | float):
                if isinstance(value, float) and not math.isfinite(value):
                    continue
                if isinstance(value, int) and abs(value) >= 2**53:
                    sheet.write_string(row, col, str(value))  # past a double's digits
                else:
                    sheet.write_number(row, col, value)
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(row, col, value.replace(tzinfo=None), self._time)
            elif isinstance(value, dt.date):
                sheet.write_datetime(row, col, value, self._date)
            else:
                sheet.write_string(row, col, str(value))
        self._row += 1

    def close(self, *, complete: bool) -> None:
        try:
            self._book.close()
            if self._tmp is not None and complete:
                os.chmod(self._tmp, 0o644 & ~umask())
                os.replace(self._tmp, self._path)
                self._tmp = None
        except OSError:
            if complete:
                raise
        finally:
            if self._tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._tmp)


def _frame_rows(chunk: pd.DataFrame, columns: Sequence[str]) -> list[list[Any]]:
    """A CSV's or Parquet's rows as Python values (text stays text; pandas' missing
    values are empty cells)."""
    out = []
    for row in chunk[list(columns)].itertuples(index=False, name=None):
        out.append([_plain(v) for v in row])
    return out


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    return value


def _ours(value: Any) -> Any:
    return None if value is None or value == "" else value
