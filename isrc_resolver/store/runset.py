"""The distinct ISRCs of one run, on disk: what a run over millions of them must remember
between reading its input and writing its output, without a Python object per ISRC.

A private temporary SQLite database (deleted when closed): ISRCs go in as the input is
read, each once, in the order first seen, and come out in that order, a batch at a time.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator

from ..errors import EnvironmentFailure

__all__ = ["RunSet"]


def _connect() -> sqlite3.Connection:
    # "" is SQLite's private temporary database: on disk (in the temporary folder), gone
    # when closed.
    return sqlite3.connect("")


@contextlib.contextmanager
def _machine() -> Iterator[None]:
    """SQLite's refusals (a full disk, an unwritable temporary folder) as the machine's:
    exit 1 with the place and the cause, not a bug's exit 70."""
    try:
        yield
    except sqlite3.Error as exc:
        where = tempfile.gettempdir()
        full = "full" in str(exc)
        remedy = (
            "free some space there (or point TMPDIR at a roomier folder), then run again"
            if full
            else "make it writable (or point TMPDIR at another folder), then run again"
        )
        raise EnvironmentFailure(
            f"cannot keep this run's ISRCs in a temporary database in {where}: {exc}; {remedy}",
            path=where,
            code=errno.ENOSPC if full else None,
        ) from None


class RunSet:
    """An ordered set of ISRCs kept in a temporary database. Use in one thread."""

    def __init__(self) -> None:
        with _machine():
            self._db = _connect()
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
        with _machine(), self._db:
            before = self._db.total_changes
            rows = ((isrc,) for isrc in isrcs)
            self._db.executemany("INSERT OR IGNORE INTO isrcs (isrc) VALUES (?)", rows)
            self._count += self._db.total_changes - before

    def batches(self, size: int) -> Iterator[list[str]]:
        """Every ISRC, in the order first added, ``size`` at a time."""
        with _machine():
            cursor = self._db.execute("SELECT isrc FROM isrcs ORDER BY n")
            while rows := cursor.fetchmany(size):
                yield [isrc for (isrc,) in rows]
