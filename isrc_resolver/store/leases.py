"""Leases: the ISRCs a process is asking right now, so that two processes sharing a cache
ask each ISRC once. A killed process's leases are void at once on this host, and expire
elsewhere."""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import Sequence

from .sql import select_in

__all__ = ["Leases", "lease_owner", "owner_alive"]


def lease_owner() -> str:
    """A name for a process's leases: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str) -> bool:
    """False when a lease's owner is a process of this host that has ended (killed, say):
    its leases are void at once. Other hosts' leases live until they expire."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's process
    return True


class Leases:
    """The ``leases`` table. Writes happen inside the caller's transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def held_by_others(
        self, isrcs: Sequence[str], variant: str, owner: str, now: float
    ) -> set[str]:
        """Those of ``isrcs`` on which a live process other than ``owner`` holds a lease."""
        return {
            isrc
            for isrc, holder in select_in(
                self._db,
                "SELECT isrc, owner FROM leases WHERE variant = ? AND owner != ? "
                "AND expires > ? AND isrc IN ({})",
                (variant, owner, now),
                isrcs,
            )
            if owner_alive(holder)
        }

    def take(self, isrcs: Sequence[str], variant: str, owner: str, expires: float) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
            [(isrc, variant, owner, expires) for isrc in isrcs],
        )

    def end(self, isrcs: Sequence[str], variant: str, owner: str) -> None:
        self._db.executemany(
            "DELETE FROM leases WHERE isrc = ? AND variant = ? AND owner = ?",
            [(isrc, variant, owner) for isrc in isrcs],
        )

    def release(self, owner: str, isrcs: Sequence[str] | None, now: float) -> None:
        """End ``owner``'s leases (on ``isrcs``, or all), and any that have expired."""
        if isrcs is None:
            self._db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
        else:
            self._db.executemany(
                "DELETE FROM leases WHERE owner = ? AND isrc = ?",
                [(owner, isrc) for isrc in isrcs],
            )
        self._db.execute("DELETE FROM leases WHERE expires <= ?", (now,))
