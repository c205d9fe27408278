"""The distinct ISRCs of one run, on disk: what a run over millions of them must remember
between reading its input and writing its output, without a Python object per ISRC.

A private temporary SQLite database (deleted when closed): ISRCs go in as the input is
read, each once, in the order first seen, and come out in that order, a batch at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

__all__ = ["RunSet"]


class RunSet:
    """An ordered set of ISRCs kept in a temporary database. Use in one thread."""

    def __init__(self) -> None:
        # "" is SQLite's private temporary database: on disk, gone when closed.
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE isrcs (n INTEGER PRIMARY KEY, isrc TEXT UNIQUE)")
        self._count = 0

    def __enter__(self) -> RunSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return self._count

    def add(self, isrcs: Iterable[str]) -> None:
        """Add ``isrcs`` (valid, normalised); those already in are ignored."""
        with self._db:
            before = self._db.total_changes
            rows = ((isrc,) for isrc in isrcs)
            self._db.executemany("INSERT OR IGNORE INTO isrcs (isrc) VALUES (?)", rows)
            self._count += self._db.total_changes - before

    def batches(self, size: int) -> Iterator[list[str]]:
        """Every ISRC, in the order first added, ``size`` at a time."""
        cursor = self._db.execute("SELECT isrc FROM isrcs ORDER BY n")
        while rows := cursor.fetchmany(size):
            yield [isrc for (isrc,) in rows]
