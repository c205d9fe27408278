"""The SQLite backend of :class:`~.cache.Cache`: one file (standard library ``sqlite3``,
WAL mode), safe for several processes of one host."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import EnvironmentFailure
from .leases import owner_alive
from .schema import connect, explain
from .sql import Database, Transaction

__all__ = ["HostSessions", "SqliteBackend"]


class HostSessions:
    """Lease owners on one host: a process that has ended holds nothing."""

    def mark(self, owner: str) -> str:
        return owner

    def alive(self, holders: Iterable[str]) -> set[str]:
        return {holder for holder in holders if owner_alive(holder)}


class SqliteBackend:
    """A cache file: its connection, its write transactions, its copy and its size."""

    def __init__(self, path: Path) -> None:
        self.location = path
        self.path = path
        self._db = connect(path)  # raises CacheError, with advice that fits the cause
        self.db: Database = self._db
        self.sessions = HostSessions()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction. The machine's refusal half-way through a run (a full
        disk, a file made read-only, a lock held past the busy timeout) is an
        :class:`EnvironmentFailure` naming this file: the run stops sending, since what
        it sends could no longer be counted, and writes its output."""
        try:
            with Transaction(self._db):
                yield
        except OSError as exc:
            raise EnvironmentFailure.from_os(exc, "cannot write the cache", self.path) from None
        except sqlite3.OperationalError as exc:
            failure = explain(exc, self.path)
            if failure.reason == "damaged":  # not the machine's: a bug or a broken file
                raise
            raise EnvironmentFailure(str(failure), path=str(self.path)) from None

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def backup(self, target: Path) -> None:
        """A consistent copy at ``target`` (SQLite's online backup: other processes may go
        on writing meanwhile), mode 0600, moved into place whole."""
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            with contextlib.closing(sqlite3.connect(tmp)) as copy:
                self._db.backup(copy)
            os.replace(tmp, target)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            code = exc.errno if isinstance(exc, OSError) else None
            raise EnvironmentFailure(
                f"cannot write the backup {target}: {exc}", path=str(target), code=code
            ) from None

    def compact(self) -> None:
        """Give the space of deleted rows back. Housekeeping: on a full disk it cannot be
        done, and the rows are gone all the same."""
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("VACUUM")
