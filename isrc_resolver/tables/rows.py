"""The output values of each distinct ISRC, built once and written for every row."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Sequence
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
        sep: str = ",",
        fill: Callable[[list[str]], dict[str, Row]] | None = None,
    ) -> None:
        self._rows = rows
        # The rows not in ``rows`` (a streaming run's cached answers), read a chunk at a
        # time by :meth:`prepare`, and kept only while they are few (see _FILLED_KEPT).
        self._fill = fill
        self._filled: list[str] = []
        self._sep = sep  # of the text :meth:`line` makes
        self._kinds = kinds
        self._escaped = [
            i for i, c in enumerate(columns) if escape and c.from_network and c.kind is Kind.TEXT
        ]
        self._width = len(columns)
        self._column_kinds = [c.kind for c in columns]
        # A file's run hands its rows over: each is replaced by its built values in the
        # same table (no second table of every ISRC); otherwise they are kept apart.
        self._memo: dict[str, Any] = cast(dict[str, Any], rows) if consume else {}
        self.carriage_return = False  # does any value built so far hold a "\r"?
        self.stale = 0  # rows written so far with a stale answer
        # line() by the input's own spelling: a statement repeats each ISRC as it wrote it
        # the first time, and the next rows need no normalising. Bounded (see lines).
        self._by_cell: dict[object, tuple[Status, bool, str]] = {}

    def get(self, value: object) -> tuple[Status, bool, tuple[Any, ...]]:
        return self._values(normalize_value(value))

    def _values(self, isrc: str) -> tuple[Status, bool, tuple[Any, ...]]:
        known = self._memo.get(isrc)
        if known is None or isinstance(known, Row):
            known = self._memo[isrc] = self._build(isrc)
        elif isinstance(known[2], str):  # kept as text (see line): its values, as text
            status, stale, text = known
            known = self._memo[isrc] = (status, stale, self._parse(text))
        return known

    def _parse(self, text: str) -> tuple[Any, ...]:
        """The values :func:`_render` wrote as ``text``, typed again (an empty cell is
        None: what pandas and the csv module write for None)."""
        cells = next(csv.reader([text], delimiter=self._sep))
        return tuple(
            None if cell == "" else _FROM_TEXT[kind](cell)
            for cell, kind in zip(cells, self._column_kinds, strict=True)
        )

    def line(self, value: object) -> tuple[Status, bool, str]:
        """For a text output: the row's status, whether it is stale, and its output values
        as they are written (one piece of CSV or TSV text), built once per ISRC and kept
        in that form only (smaller than the values)."""
        isrc = normalize_value(value)
        known = self._memo.get(isrc)
        if known is not None and not isinstance(known, Row) and isinstance(known[2], str):
            return known  # type: ignore[no-any-return]
        status, stale, values = self._values(isrc)
        known = self._memo[isrc] = (status, stale, _render(values, self._sep))
        return known

    def prepare(self, values: Sequence[object]) -> None:
        """Before a chunk's rows are built: read the rows of its ISRCs that are not at
        hand (with ``fill``; without it every row is in ``rows`` already)."""
        if self._fill is None:
            return
        if len(self._filled) > _FILLED_KEPT:  # let the oldest go: memory stays flat
            for isrc in self._filled:
                self._memo.pop(isrc, None)
            self._filled.clear()
            self._by_cell.clear()
        cells = set(values).difference(self._by_cell)  # a spelling lines() knows is at hand
        wanted = {normalize_value(v) for v in cells}
        missing = [i for i in wanted if i not in self._memo and is_valid_isrc(i)]
        if missing:
            for isrc, row in self._fill(missing).items():
                self._memo[isrc] = row
                self._filled.append(isrc)

    def lines(self, values: Sequence[object]) -> list[tuple[Status, bool, str]]:
        """:meth:`line` of each of ``values`` (cells of the input's ISRC column)."""
        seen = self._by_cell
        if len(seen) > _CELLS_KEPT:
            seen.clear()
        get = seen.get
        return [get(v) or self._line_of_cell(v) for v in values]

    def _line_of_cell(self, value: object) -> tuple[Status, bool, str]:
        known = self._by_cell[value] = self.line(value)
        return known

    def _build(self, isrc: str) -> tuple[Status, bool, tuple[Any, ...]]:
        known = self._memo.get(isrc)  # a row prepare() read, or one of ``rows`` (consumed)
        row = known if isinstance(known, Row) else self._rows.get(isrc)
        if row is None:  # invalid values get their result here; valid ones are all known
            result = (
                Result.invalid(isrc)
                if not is_valid_isrc(isrc)
                else Result(isrc, Status.PENDING, error="not attempted")
            )
            row = enriched(row_of(result, None, self._kinds), self._kinds)
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


_CELLS_KEPT = 250_000  # spellings remembered by lines(), at most (then it starts again)
_FILLED_KEPT = 250_000  # rows read by prepare() kept at once, at most (about 100 MB)


def _render(values: Sequence[Any], sep: str) -> str:
    """``values`` as the csv module writes them (and so pandas: empty for None, True and
    False, integers as digits), quoted where needed."""
    # The writer quotes a value holding a character of its line end: "\n" as pandas does,
    # and "\r" too, so the text reads back (a row with a "\r" is never written from it: its
    # chunk goes through pandas, quoted whole).
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()[:-2]


_FROM_TEXT: dict[Kind, Callable[[str], Any]] = {
    Kind.TEXT: str,
    Kind.INTEGER: int,
    Kind.FLOAT: float,
    Kind.BOOLEAN: lambda text: text == "True",
}


_AT = {c.name: i for i, c in enumerate(output_columns())}


def fill_checks(
    data: list[list[Any]], titles: list[Any], artists: list[Any], min_score: float
) -> None:
    """Put each row's match_check and match_score into ``data`` (columns of values)."""
    verdicts, scores = checks(titles, artists, data[_AT["track"]], data[_AT["artists"]], min_score)
    data[_AT["match_check"]] = verdicts
    data[_AT["match_score"]] = scores
