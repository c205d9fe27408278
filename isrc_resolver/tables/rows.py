"""The output values of each distinct ISRC, built once and written for every row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import pandas as pd

from ..isrc import is_valid_isrc, normalize_value
from ..models import Enrichment, Result, Status
from ..schema import Column, Kind, Row, enriched, output_columns, row_of
from .columns import checks
from .escape import escape_formula

__all__ = ["BuiltRows", "fill_checks", "series"]


def series(values: list[Any], column: Column, index: pd.Index) -> pd.Series:
    return pd.Series(pd.array(values, dtype=column.kind.pandas_dtype), index=index)  # type: ignore[call-overload]


class BuiltRows:
    """The output values of each distinct ISRC as the output format wants them (text from
    the network escaped for CSV/TSV), built once per ISRC, not once per row."""

    def __init__(
        self,
        rows: dict[str, Row],
        columns: Sequence[Column],
        kinds: Sequence[Enrichment],
        *,
        escape: bool,
        consume: bool = False,
    ) -> None:
        self._rows = rows
        self._kinds = kinds
        self._escaped = [
            i for i, c in enumerate(columns) if escape and c.from_network and c.kind is Kind.TEXT
        ]
        self._width = len(columns)
        # A file's run hands its rows over: each is replaced by its built values in the
        # same table (no second table of every ISRC); otherwise they are kept apart.
        self._memo: dict[str, Any] = cast(dict[str, Any], rows) if consume else {}
        self.carriage_return = False  # does any value built so far hold a "\r"?
        self.stale = 0  # rows written so far with a stale answer

    def get(self, value: object) -> tuple[Status, bool, tuple[Any, ...]]:
        isrc = normalize_value(value)
        known = self._memo.get(isrc)
        if known is None or isinstance(known, Row):
            known = self._memo[isrc] = self._build(isrc)
        return known

    def _build(self, isrc: str) -> tuple[Status, bool, tuple[Any, ...]]:
        row = self._rows.get(isrc)
        if row is None:  # invalid values get their result here; valid ones are all known
            result = (
                Result.invalid(isrc)
                if not is_valid_isrc(isrc)
                else Result(isrc, Status.PENDING, error="not attempted")
            )
            row = enriched(row_of(result), self._kinds)
        values = list(row.values)
        for i in self._escaped:
            values[i] = escape_formula(values[i])
        if any(isinstance(v, str) and "\r" in v for v in values):
            self.carriage_return = True
        assert len(values) == self._width, "a row built for other columns"
        return row.status, row.stale, tuple(values)

    def columns(self, values: Sequence[object]) -> tuple[list[list[Any]], Counter[Status]]:
        """For each output column, its values for ``values`` (one per row); the statuses.
        Rows written with a stale answer are counted in :attr:`stale`."""
        built = [self.get(v) for v in values]
        statuses = Counter(status for status, _, _ in built)
        self.stale += sum(stale for _, stale, _ in built)
        if not built:
            return [[] for _ in range(self._width)], statuses
        rows = (row for _, _, row in built)
        return [list(column) for column in zip(*rows, strict=True)], statuses


_AT = {c.name: i for i, c in enumerate(output_columns())}


def fill_checks(
    data: list[list[Any]], titles: list[Any], artists: list[Any], min_score: float
) -> None:
    """Put each row's match_check and match_score into ``data`` (columns of values)."""
    verdicts, scores = checks(titles, artists, data[_AT["track"]], data[_AT["artists"]], min_score)
    data[_AT["match_check"]] = verdicts
    data[_AT["match_score"]] = scores
