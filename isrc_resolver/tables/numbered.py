"""The rows a write has built, by number: what the Arrow paths of the writer put together
a chunk at a time (see :class:`~isrc_resolver.tables.rows.BuiltRows`)."""

from __future__ import annotations

import array
from collections import Counter
from typing import Any

import numpy as np

from ..models import Status

__all__ = ["Numbered"]

_STATUSES = tuple(Status)
_CODES = {status: n for n, status in enumerate(_STATUSES)}


class Numbered:
    """Rows by number: what is kept of each (its text for a text output, else its values),
    its status and whether it is stale; and the number of each spelling of an ISRC the
    input used (a statement repeats an ISRC as it wrote it the first time: the next rows
    need no normalising)."""

    def __init__(self) -> None:
        self.kept: list[Any] = []
        self._codes = array.array("b")
        self._stales = array.array("b")
        self.by_cell: dict[object, int] = {}

    def __len__(self) -> int:
        return len(self.kept)

    def add(self, kept: Any, status: Status, stale: bool) -> int:
        self.kept.append(kept)
        self._codes.append(_CODES[status])
        self._stales.append(stale)
        return len(self.kept) - 1

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
        self.kept.clear()
        self.by_cell.clear()
        del self._codes[:], self._stales[:]
