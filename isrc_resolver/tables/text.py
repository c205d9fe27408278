"""Parquet values as the text a CSV keeps without loss."""

from __future__ import annotations

import base64
import json

import pandas as pd
import pyarrow as pa

__all__ = ["as_text"]


def as_text(batch: pa.RecordBatch) -> pd.DataFrame:
    """``batch`` as a frame that CSV writes without losing anything: integers as integers
    (every digit, blanks for nulls, never ``1001.0`` or ``1e+17``), lists, structs and maps
    as JSON, binary as base64. Other types are written as pandas writes them."""
    frame: pd.DataFrame = batch.to_pandas()
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind):
            values: list[object] = column.to_pylist()
        elif pa.types.is_nested(kind):
            values = [None if v is None else _json(v) for v in column.to_pylist()]
        elif _is_binary(kind):
            values = [None if v is None else _base64(v) for v in column.to_pylist()]
        else:
            continue
        frame[name] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def _json(value: object) -> str:
    # A map arrives as a list of (key, value) pairs; anything else JSON has no word for
    # (a date, a decimal, bytes in a struct) as its text.
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _plain(value: object) -> object:
    return _base64(value) if isinstance(value, bytes) else str(value)


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _is_binary(kind: pa.DataType) -> bool:
    types = pa.types
    return bool(
        types.is_binary(kind) or types.is_large_binary(kind) or types.is_fixed_size_binary(kind)
    )
