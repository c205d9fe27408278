"""Leases: the ISRCs a process is asking right now, so that two processes sharing a cache
ask each ISRC once. Each lease has an expiry; and a lease whose owner is known to have
ended is void at once: on SQLite, a process of this host that is gone; on PostgreSQL, a
database session that is gone (whichever host it was on)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol

from .sql import Database, select_in, upsert

__all__ = ["HostSessions", "Leases", "Sessions", "lease_owner", "owner_alive"]


class Sessions(Protocol):
    """How a backend tells live lease owners: ``mark`` stamps an owner's name with what
    the backend can check later; ``alive`` keeps the marked names whose owner lives."""

    def mark(self, owner: str) -> str: ...

    def alive(self, holders: Iterable[str]) -> set[str]: ...


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


_TAKE = upsert("leases", "isrc, variant, owner, expires", "isrc, variant")


class HostSessions:
    """Lease owners on one host (a SQLite cache's): a process that has ended holds nothing."""

    def mark(self, owner: str) -> str:
        return owner

    def alive(self, holders: Iterable[str]) -> set[str]:
        return {holder for holder in holders if owner_alive(holder)}


class Leases:
    """The ``leases`` table. Writes happen inside the caller's transaction."""

    def __init__(self, db: Database, sessions: Sessions | None = None) -> None:
        self._db = db
        self._sessions = sessions or HostSessions()

    def held_by_others(
        self, isrcs: Sequence[str], variant: str, owner: str, now: float
    ) -> set[str]:
        """Those of ``isrcs`` on which a live process other than ``owner`` holds a lease."""
        held = list(
            select_in(
                self._db,
                "SELECT isrc, owner FROM leases WHERE variant = ? AND owner != ? "
                "AND expires > ? AND isrc IN ({})",
                (variant, self._sessions.mark(owner), now),
                isrcs,
            )
        )
        live = self._sessions.alive({holder for _, holder in held}) if held else set()
        return {isrc for isrc, holder in held if holder in live}

    def take(self, isrcs: Sequence[str], variant: str, owner: str, expires: float) -> None:
        self._db.executemany(
            _TAKE,
            [(isrc, variant, self._sessions.mark(owner), expires) for isrc in isrcs],
        )

    def end(self, isrcs: Sequence[str], variant: str, owner: str) -> None:
        self._db.executemany(
            "DELETE FROM leases WHERE isrc = ? AND variant = ? AND owner = ?",
            [(isrc, variant, self._sessions.mark(owner)) for isrc in isrcs],
        )

    def release(self, owner: str, isrcs: Sequence[str] | None, now: float) -> None:
        """End ``owner``'s leases (on ``isrcs``, or all), and any that have expired."""
        owner = self._sessions.mark(owner)
        if isrcs is None:
            self._db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
        else:
            self._db.executemany(
                "DELETE FROM leases WHERE owner = ? AND isrc = ?",
                [(owner, isrc) for isrc in isrcs],
            )
        self._db.execute("DELETE FROM leases WHERE expires <= ?", (now,))
