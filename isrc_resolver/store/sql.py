"""The SQL plumbing every part of the store shares: the connection's shape, transactions
and ``IN`` lists.

The parts of the store (results, ledger, leases, details, history) write SQL that SQLite
and PostgreSQL both take (``?`` marks, ``INSERT ... ON CONFLICT ... DO UPDATE``), against a
:class:`Database`: a ``sqlite3.Connection``, or the PostgreSQL connection of
:mod:`.postgres`, which speaks the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

__all__ = [
    "ANY_ACCOUNT",
    "LOOKUP_BATCH",
    "Database",
    "Rows",
    "Transaction",
    "locked",
    "mark",
    "next_mark",
    "select_in",
    "set_meta",
    "upsert",
]


class Rows(Protocol):
    """What a statement gives back (a DB-API cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ...) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class Database(Protocol):
    """A connection in autocommit mode that takes ``?`` marks."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Rows: ...


ANY_ACCOUNT = "*"  # a cooldown carried over from version 1: it holds every account
LOOKUP_BATCH = 500  # keys in one ``IN`` list: under SQLite's default limit of parameters


def locked(exc: BaseException) -> bool:
    """Is ``exc`` SQLite saying another connection holds the lock?"""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front, so two processes queue
    on the busy timeout rather than deadlocking on a lock upgrade."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def upsert(table: str, columns: str, keys: str, where: str = "") -> str:
    """``INSERT INTO table (columns) VALUES (?...) ON CONFLICT (keys) DO UPDATE`` of every
    column but the keys, when ``where`` holds (always without it): the one statement that
    SQLite and PostgreSQL both take for "add, or replace what is there"."""
    names = [c.strip() for c in columns.split(",")]
    update = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys.split(", "))
    marks = ", ".join("?" * len(names))
    tail = f" WHERE {where}" if where else ""
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {update}{tail}"
    )


_SET_META = upsert("meta", "key, value", "key")


def set_meta(db: Database, key: str, value: str) -> None:
    """Set ``key`` of the ``meta`` table (the schema version, a cooldown, the mark)."""
    db.execute(_SET_META, (key, value))


def mark(db: Database) -> int:
    """The cache's count of commits of answers: a process that takes it before it reads
    the cache knows the answers committed since by their higher mark (``stored_seq``),
    whatever the clocks of the hosts say."""
    row = db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    return int(row[0]) if row else 0


def next_mark(db: Database) -> int:
    """The next mark, counted: inside the write transaction that stores the answers (the
    writers' lock orders the marks as the commits)."""
    seq = mark(db) + 1
    set_meta(db, "seq", str(seq))
    return seq


def select_in(
    db: Database, sql: str, params: tuple[object, ...], keys: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` (whose ``{}`` is an ``IN`` list) for ``keys``, in batches that stay
    under SQLite's limit on parameters. Only ``?`` marks go into the SQL."""
    for start in range(0, len(keys), LOOKUP_BATCH):
        batch = keys[start : start + LOOKUP_BATCH]
        marks = ",".join("?" * len(batch))
        yield from db.execute(sql.format(marks), (*params, *batch))
