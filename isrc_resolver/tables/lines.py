"""CSV and TSV text from Arrow arrays, as the csv module writes it (``QUOTE_MINIMAL``),
built by Arrow compute: a chunk's lines without a Python object per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["csv_lines", "has_carriage_return", "holds"]

_MUST_QUOTE = {",": '[,"\n]', "\t": '[\t"\n]'}


def holds(column: pa.Array, text: str) -> bool:
    """Does any cell of ``column`` (strings) contain ``text``?"""
    return bool(pc.any(pc.match_substring(column, text)).as_py())


def quoted(column: pa.Array, sep: str) -> pa.Array:
    """Text cells as the csv module writes them with QUOTE_MINIMAL (no "\r" among them:
    a cell with one is the caller's to handle)."""
    needs = pc.match_substring_regex(column, _MUST_QUOTE[sep])
    if not pc.any(needs).as_py():
        return column
    escaped = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(needs, escaped, column)


def csv_lines(columns: Sequence[pa.Array], ours: Sequence[pa.Array], sep: str) -> str:
    """One line per row: the cells of ``columns`` (text) quoted where needed, then those
    of ``ours`` (text already written as CSV or TSV, the last of them ending the line),
    joined by ``sep``."""
    cells = [quoted(column, sep) for column in columns]
    return _text_of(pc.binary_join_element_wise(*cells, *ours, sep))


def _text_of(lines: pa.Array) -> str:
    """The text of a string array's values, one after the other (read from its buffers:
    no Python string per value)."""
    if len(lines) == 0:
        return ""
    _, offsets, data = lines.buffers()
    at = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    return str(memoryview(data)[at[0] : at[-1]], "utf-8")  # one copy: the text


def has_carriage_return(frame: pd.DataFrame) -> bool:
    """Does any input cell (or column name) of ``frame`` hold a carriage return?"""
    if any("\r" in str(name) for name in frame.columns):
        return True
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
            if column.str.contains("\r", regex=False).fillna(False).any():
                return True
        elif column.dtype == object and any(
            isinstance(v, str) and "\r" in v for v in column.tolist()
        ):
            return True
    return False
