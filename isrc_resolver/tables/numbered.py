"""The rows a write has built, by number: what the Arrow paths of the writer put together
a chunk at a time (see :class:`~isrc_resolver.tables.rows.BuiltRows`)."""

from __future__ import annotations

import array
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..models import Status

__all__ = ["Numbered"]

_STATUSES = tuple(Status)
_CODES = {status: n for n, status in enumerate(_STATUSES)}

_STRAIGHT = 2  # parts taken row by row from the list; more are built once per number
Check = tuple[object, object, str | None, float | None]  # title, artist, verdict, score


class Numbered:
    """Rows by number, each as a few parts of ``types`` (for a text output its CSV or TSV
    text, in one or two pieces; for Parquet its values), with its status, whether it is
    stale, its track and artists (for the match check) and the last check made with it.
    And the number of each spelling of an ISRC the input used (a statement repeats an
    ISRC as it wrote it the first time: the next rows need no normalising)."""

    def __init__(self, types: Sequence[pa.DataType]) -> None:
        self._types = list(types)
        self._whole = len(self._types) == 1  # one part: kept as it is, not in a tuple
        self._kept: list[Any] = []
        self._codes = array.array("b")
        self._stales = array.array("b")
        self.names: list[tuple[Any, Any] | None] = []  # track and artists, as written
        # A statement repeats an ISRC with the same title and artist: that check is kept.
        self.checked: list[Check | None] = []
        self.by_cell: dict[object, int] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def add(
        self, parts: tuple[Any, ...], names: tuple[Any, Any] | None, status: Status, stale: bool
    ) -> int:
        self._kept.append(parts[0] if self._whole else parts)
        self.names.append(names)
        self.checked.append(None)
        self._codes.append(_CODES[status])
        self._stales.append(stale)
        return len(self._codes) - 1

    def parts(self, number: int) -> tuple[Any, ...]:
        kept = self._kept[number]
        return (kept,) if self._whole else kept

    def arrays(self, at: list[int]) -> list[pa.Array]:
        """Each part for rows ``at`` (numbers, one per output row), as Arrow arrays: a
        text or two straight from the rows' list (cheaper than finding the distinct
        numbers first); many values built from each distinct number once and taken per
        row by Arrow."""
        kept = self._kept
        if self._whole:
            return [pa.array([kept[n] for n in at], self._types[0])]
        if len(self._types) <= _STRAIGHT:
            return [pa.array([kept[n][i] for n in at], t) for i, t in enumerate(self._types)]
        distinct, rows = np.unique(np.array(at, dtype=np.int64), return_inverse=True)
        values = [kept[n] for n in distinct.tolist()]
        taken = pa.array(rows.reshape(-1))
        columns = zip(*values, strict=True) if values else ([] for _ in self._types)
        return [pa.array(list(c), t).take(taken) for c, t in zip(columns, self._types, strict=True)]

    def state(self, number: int) -> tuple[Status, bool]:
        """The status of row ``number`` and whether it is stale."""
        return _STATUSES[self._codes[number]], bool(self._stales[number])

    def counts(self, at: list[int]) -> tuple[Counter[Status], int]:
        """The statuses of rows ``at`` (numbers, one per output row) and how many are
        stale, counted by numpy."""
        where = np.array(at, dtype=np.int64)
        codes = np.bincount(np.frombuffer(self._codes, np.int8)[where], minlength=len(_STATUSES))
        stale = int(np.frombuffer(self._stales, np.int8)[where].sum())
        return Counter({_STATUSES[c]: n for c, n in enumerate(codes.tolist()) if n}), stale

    def clear(self) -> None:
        self._kept.clear()
        self.names.clear()
        self.checked.clear()
        self.by_cell.clear()
        del self._codes[:], self._stales[:]
