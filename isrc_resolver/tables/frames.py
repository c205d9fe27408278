"""DataFrames in and out, for the library: the ISRC column of a frame, and the frame
with the output columns added."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from ..errors import InputError
from ..matching import Hint
from ..schema import Row, output_columns
from .columns import (
    HintColumns,
    find_isrc_column,
    first_durations,
    hints_of,
    output_names,
)
from .rows import BuiltRows, fill_checks, series

__all__ = ["DataFrame", "column_values", "frame_durations", "frame_hints", "with_results"]

# The frame type, for the fronts' annotations: they name it from here, so that pandas is
# imported by this folder alone.
DataFrame = pd.DataFrame


def column_values(df: pd.DataFrame, column: str | None) -> list[object]:
    """The ISRC column of ``df`` (text as it is; anything else is not an ISRC)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"expected a pandas DataFrame, got {type(df).__module__}.{type(df).__name__}; "
            "for polars, pass df.to_pandas() and convert the result back with "
            "polars.from_pandas()"
        )
    name = find_isrc_column(list(map(str, df.columns)), column, "the DataFrame")
    return [None if _missing(v) else v for v in df[name].tolist()]


def with_results(
    df: pd.DataFrame,
    values: Sequence[object],
    rows: dict[str, Row],
    kinds: Sequence[str] = (),
    hints: HintColumns | None = None,
    min_score: float = 90.0,
) -> pd.DataFrame:
    """A copy of ``df`` with the output columns added (one row per value of ``values``)."""
    columns = output_columns(kinds)
    names = output_names(list(map(str, df.columns)), [c.name for c in columns])
    data, _ = BuiltRows(rows, columns, kinds, escape=False).columns(values)
    if hints is not None and hints.usable:
        assert hints.title is not None and hints.artist is not None
        fill_checks(data, df[hints.title].tolist(), df[hints.artist].tolist(), min_score)
    out = df.copy()
    for column, name, column_values in zip(columns, names, data, strict=True):
        out[name] = series(column_values, column, df.index)
    return out


def frame_hints(
    df: pd.DataFrame, values: list[object], columns: HintColumns
) -> Callable[[list[str]], dict[str, Hint]]:
    """The title/artist/duration of a DataFrame's ISRCs, for the title/artist search."""

    def read(wanted: list[str]) -> dict[str, Hint]:
        if not columns.usable:
            return {}
        assert columns.title is not None and columns.artist is not None
        durations = df[columns.duration].tolist() if columns.duration else None
        return hints_of(
            values, df[columns.title].tolist(), df[columns.artist].tolist(), durations, set(wanted)
        )

    return read


def frame_durations(df: pd.DataFrame, values: list[object], columns: HintColumns) -> dict[str, int]:
    """Each ISRC's first ``duration_ms`` in a DataFrame (empty without that column)."""
    out: dict[str, int] = {}
    if columns.duration is not None:
        first_durations(values, df[columns.duration].tolist(), out)
    return out


def _missing(value: object) -> bool:
    if value is None or isinstance(value, str):
        return value is None
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))  # type: ignore[call-overload]
