"""The distinct ISRCs of one run, on disk: what a run over millions of them must remember
between reading its input and writing its output, without a Python object per ISRC.

A private temporary SQLite database (deleted when closed), whichever backend the cache
has: ISRCs go in as the input is read, each once, in the order first seen, and come out
in that order, a batch at a time. The plan puts those it will ask here too, in the order
to ask them (none or few of a big catalogue's may be cached on its first nights), and the
run keeps here the outcome of each it asked that the cache does not hold (an error, a
deferral, a stale answer), until its rows are written.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence

from ..errors import EnvironmentFailure
from .sql import select_in

__all__ = ["RunSet"]


def _connect() -> sqlite3.Connection:
    # "" is SQLite's private temporary database: on disk (in the temporary folder), gone
    # when closed.
    # Written while resolving, read by the write pass on its own thread (never both at once).
    return sqlite3.connect("", check_same_thread=False)


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
            self._db.execute(
                "CREATE TABLE asks (rank INTEGER, first REAL, second REAL, n INTEGER, isrc TEXT)"
            )
            # Indexed once the outcomes are in (one sort), not as each is added.
            self._db.execute("CREATE TABLE kept (isrc TEXT, outcome BLOB)")
            # Pages held in memory (64 MB at most): the indexes of millions of ISRCs are
            # built and read with few trips to the file.
            self._db.execute("PRAGMA cache_size = -65536")
        self._indexed = False
        self._count = 0
        self.asked = 0  # ISRCs in ``asks``

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
        """Every ISRC, in the order first added, ``size`` at a time (a page at a time: the
        caller may add asks between pages)."""
        after = 0
        while True:
            with _machine():
                rows = self._db.execute(
                    "SELECT n, isrc FROM isrcs WHERE n > ? ORDER BY n LIMIT ?", (after, size)
                ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [isrc for _, isrc in rows]

    def add_asks(self, asks: Iterable[tuple[int, float, float, str]]) -> None:
        """Add ISRCs to ask, each with its place: they come out by rank, then by the two
        keys, then in the order added."""
        with _machine(), self._db:
            rows = ((rank, a, b, self.asked + n, isrc) for n, (rank, a, b, isrc) in enumerate(asks))
            before = self._db.total_changes
            self._db.executemany("INSERT INTO asks VALUES (?, ?, ?, ?, ?)", rows)
            self.asked += self._db.total_changes - before

    def asks(self, size: int, rank: int) -> Iterator[list[str]]:
        """The ISRCs of ``rank`` to ask, in order, ``size`` at a time (put in that order
        once, then read a page at a time: the caller may keep outcomes between pages)."""
        with _machine(), self._db:
            self._db.execute("DROP TABLE IF EXISTS ordered")
            self._db.execute(
                "CREATE TABLE ordered AS SELECT isrc FROM asks WHERE rank = ? "
                "ORDER BY first, second, n",
                (rank,),
            )
        after = 0
        while True:
            with _machine():
                rows = self._db.execute(
                    "SELECT rowid, isrc FROM ordered WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, size),
                ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [isrc for _, isrc in rows]

    def keep(self, outcomes: Iterable[tuple[str, bytes]]) -> None:
        """Keep each ISRC's outcome (as the caller encodes it, once each) until
        :meth:`kept`."""
        with _machine(), self._db:
            self._db.executemany("INSERT INTO kept VALUES (?, ?)", outcomes)

    def kept(self, isrcs: Sequence[str]) -> dict[str, bytes]:
        """The outcomes kept for those of ``isrcs`` that have one."""
        with _machine():
            if not self._indexed:
                self._db.execute("CREATE INDEX IF NOT EXISTS kept_by_isrc ON kept (isrc)")
                self._indexed = True
            return dict(
                select_in(self._db, "SELECT isrc, outcome FROM kept WHERE isrc IN ({})", (), isrcs)
            )
