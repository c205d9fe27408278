"""The output values of each distinct ISRC, built once and written for every row."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, cast

import pandas as pd
import pyarrow as pa

from ..isrc import is_valid_isrc, normalize_value
from ..models import Result, Status
from ..schema import Column, Kind, Row, enriched, output_columns, row_of
from .columns import check_row, checks
from .escape import FORMULA_STARTS, escape_formula
from .numbered import Numbered

__all__ = ["BuiltRows", "fill_checks", "series"]


def series(values: list[Any], column: Column, index: pd.Index) -> pd.Series:
    return pd.Series(pd.array(values, dtype=column.kind.pandas_dtype), index=index)  # type: ignore[call-overload]


class BuiltRows:
    """The output values of each distinct ISRC as the output format wants them (text from
    the network escaped for CSV/TSV), built once per ISRC, not once per row.

    The writer's Arrow paths number them instead (:meth:`numbers`, then :meth:`parts_of`):
    each ISRC's values are kept once (for a text output, the CSV or TSV text they become;
    for Parquet, with ``types``, the values), and a chunk's rows are put together from
    their numbers by Arrow. With ``checked`` (the input has titles and artists), a text
    is kept in two pieces, before and after the match check's columns, which the writer
    fills row by row."""

    def __init__(
        self,
        rows: dict[str, Row],
        columns: Sequence[Column],
        kinds: Sequence[str],
        *,
        escape: bool,
        consume: bool = False,
        sep: str = ",",
        fill: Callable[[list[str]], dict[str, Row]] | None = None,
        types: Sequence[pa.DataType] | None = None,
        checked: bool = False,
    ) -> None:
        self._rows = rows
        # The rows not in ``rows`` (a streaming run's cached answers), read a chunk at a
        # time by :meth:`prepare`, and kept only while they are few (see _FILLED_KEPT).
        self._fill = fill
        self._filled: list[str] = []
        self._sep = sep  # of the texts kept
        self._kinds = kinds
        self._escaped = [
            i for i, c in enumerate(columns) if escape and c.from_network and c.kind is Kind.TEXT
        ]
        self._width = len(columns)
        self._column_kinds = [c.kind for c in columns]
        # A file's run hands its rows over: each is replaced by its built values (or, for
        # a text output, by its number) in the same table (no second table of every ISRC);
        # otherwise they are kept apart.
        self._memo: dict[str, Any] = cast(dict[str, Any], rows) if consume else {}
        self.carriage_return = False  # does any value built so far hold a "\r"?
        self.stale = 0  # rows written so far with a stale answer
        self._as_text = types is None
        self._split = self._as_text and checked
        pieces = [pa.string()] * (2 if self._split else 1)
        self._numbered_rows = Numbered(pieces if types is None else types)
        self._render = _Renderer(sep)
        names = [c.name for c in columns]
        self.checked_at = names.index("match_check")  # then match_score
        self._named_at = names.index("track"), names.index("artists")

    def get(self, value: object) -> tuple[Status, bool, tuple[Any, ...]]:
        return self._values(normalize_value(value))

    def _values(self, isrc: str) -> tuple[Status, bool, tuple[Any, ...]]:
        known = self._memo.get(isrc)
        if isinstance(known, int):  # numbered: its values (kept, or its text's)
            parts = self._numbered_rows.parts(known)
            values = self._parse(parts) if self._as_text else parts
            return *self._numbered_rows.state(known), values
        if known is None or isinstance(known, Row):
            known = self._memo[isrc] = self._build(isrc)
        return known

    def _parse(self, pieces: tuple[str, ...]) -> tuple[Any, ...]:
        """The values a row's text was rendered from, typed again (an empty cell is None:
        what pandas and the csv module write for None)."""
        # Two pieces: the checks between them, empty; the last ends the line.
        text = (self._sep * 3).join(pieces)[:-1]
        cells = next(csv.reader([text], delimiter=self._sep))
        return tuple(
            None if cell == "" else _FROM_TEXT[kind](cell)
            for cell, kind in zip(cells, self._column_kinds, strict=True)
        )

    def _numbered(self, isrc: str) -> int:
        """The number of ``isrc``'s row, built now if it has none."""
        known = self._memo.get(isrc)
        if isinstance(known, int):
            return known
        if known is None or isinstance(known, Row):
            status, stale, values = self._build(isrc, rendered=self._as_text)
        else:
            status, stale, values = known
        parts = values
        if self._split:
            at = self.checked_at
            parts = (self._render(values[:at]), self._render(values[at + 2 :]) + "\n")
        elif self._as_text:
            parts = (self._render(values) + "\n",)  # the line's end, for the writer
        if self._as_text:  # a value holds one (the writer adds none: the line end is cut)
            self.carriage_return |= any("\r" in piece for piece in parts)
        track, artists = self._named_at
        # Kept apart only for a text in pieces: values (Parquet) have them at hand.
        named = (values[track], values[artists]) if self._split else None
        number = self._memo[isrc] = self._numbered_rows.add(parts, named, status, stale)
        return number

    def number_all(self) -> None:
        """Number every row at hand now, in the order they were made (a held run): for a
        text output each row's memory goes back as its text is made, in the order it was
        taken, so it can be used again for the texts."""
        for isrc in list(self._memo):
            self._numbered(isrc)

    def prepare(self, values: Sequence[object]) -> None:
        """Before a chunk's rows are built (a streaming run's, with ``fill``; without it
        every row is in ``rows`` already): read the rows of its ISRCs not at hand."""
        assert self._fill is not None, "prepare() is for a run that reads rows as it writes"
        if len(self._filled) > _FILLED_KEPT:  # let the oldest go: memory stays flat
            for isrc in self._filled:
                self._memo.pop(isrc, None)
            self._filled.clear()
            self._forget_numbers()
        cells = set(values).difference(self._numbered_rows.by_cell)  # those at hand
        wanted = {normalize_value(v) for v in cells}
        missing = [i for i in wanted if i not in self._memo and is_valid_isrc(i)]
        if missing:
            for isrc, row in self._fill(missing).items():
                self._memo[isrc] = row
                self._filled.append(isrc)

    def _forget_numbers(self) -> None:
        """Let every numbered row go (a streaming run's, whose rows are read again)."""
        self._numbered_rows.clear()
        numbered = [isrc for isrc, known in self._memo.items() if isinstance(known, int)]
        for isrc in numbered:
            del self._memo[isrc]

    def numbers(self, column: pa.Array) -> tuple[list[int], Counter[Status], int]:
        """For a chunk whose ISRC cells are ``column``: each row's number (its ISRC's
        row built now when new), the rows' statuses, and how many are stale (for the
        caller to add to :attr:`stale` once they are written)."""
        cells = column.to_pylist()
        # A cell as written is most often the ISRC itself, whose entry holds its number.
        get = self._memo.get
        seen = [get(cell) for cell in cells]
        at = cast(list[int], seen)
        if set(map(type, seen)) != {int}:
            at = [
                n if type(n) is int else self._number_cell(c)
                for c, n in zip(cells, seen, strict=True)
            ]
        return at, *self._numbered_rows.counts(at)

    def parts_of(self, at: list[int]) -> list[pa.Array]:
        """What is kept of rows ``at``, as Arrow arrays: for a text output its text (with
        ``checked``, the pieces before and after the match check's two columns), for
        Parquet each column's values."""
        return self._numbered_rows.arrays(at)

    def checks_of(
        self, at: list[int], titles: list[Any], artists: list[Any], threshold: float
    ) -> tuple[list[str | None], list[float | None]]:
        """The match check of rows ``at`` with the input's ``titles`` and ``artists``
        (:func:`~isrc_resolver.tables.columns.check_row` against each ISRC's track and
        artists as written), made once per ISRC while its title and artist stay the same."""
        last = self._numbered_rows.checked
        verdicts: list[str | None] = []
        scores: list[float | None] = []
        for n, title, artist in zip(at, titles, artists, strict=True):
            made = last[n]
            if made is None or made[0] != title or made[1] != artist:
                track, names = self._names(n)
                made = last[n] = (title, artist, *check_row(title, artist, track, names, threshold))
            verdicts.append(made[2])
            scores.append(made[3])
        return verdicts, scores

    def _names(self, number: int) -> tuple[Any, Any]:
        """The track and artists of row ``number``, as written (None when its text was
        kept whole: a row built for an output without a match check)."""
        named = self._numbered_rows.names[number]
        if named is not None:
            return named
        if self._as_text:
            return None, None
        values = self._numbered_rows.parts(number)
        return values[self._named_at[0]], values[self._named_at[1]]

    def _number_cell(self, cell: object) -> int:
        """The number of a cell that is not an ISRC as it is (or not numbered yet), by
        its spelling (then normalised, once per spelling: the spellings are remembered,
        up to _CELLS_KEPT of them)."""
        spelling = self._numbered_rows.by_cell
        known = spelling.get(cell)
        if known is None:
            isrc = normalize_value(cell)
            known = self._numbered(isrc)
            if isrc != cell:  # an ISRC as it is is found by its own entry
                if len(spelling) > _CELLS_KEPT:
                    spelling.clear()
                spelling[cell] = known
        return known

    def _build(self, isrc: str, rendered: bool = False) -> tuple[Status, bool, tuple[Any, ...]]:
        """The row's values, escaped. ``rendered``: they will be made text, which tells
        whether any holds a carriage return; otherwise they are looked at here."""
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
            value = values[i]
            if value.__class__ is str and value.startswith(FORMULA_STARTS):
                values[i] = escape_formula(value)
        if not rendered and any(isinstance(v, str) and "\r" in v for v in values):
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


_CELLS_KEPT = 250_000  # spellings remembered by _number_cell, at most (then it starts again)
_FILLED_KEPT = 250_000  # rows read by prepare() kept at once, at most (about 100 MB)


class _Renderer:
    """Values as the csv module writes them (and so pandas: empty for None, True and
    False, integers as digits), quoted where needed, one row at a time."""

    def __init__(self, sep: str) -> None:
        # The writer quotes a value holding a character of its line end: "\n" as pandas
        # does, and "\r" too, so the text reads back (a row with a "\r" is never written
        # from it: its chunk goes through pandas, quoted whole).
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=sep, lineterminator="\r\n")

    def __call__(self, values: Sequence[Any]) -> str:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._writer.writerow(values)
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
