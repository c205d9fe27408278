"""API requests per account and second over a rolling 24 hours, and cooldowns.

The grain is one second. A nightly run that starts when yesterday's did waits for
yesterday's requests to leave the window; the grain is how much later each night's requests
land, so it is kept small (a minute would push a quota-bound job a minute later every night).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .sql import ANY_ACCOUNT, Database, set_meta

__all__ = ["ANY_ACCOUNT", "WINDOW", "Allowance", "Ledger"]

_GRAIN = 1
WINDOW = 86_400.0  # the quota's rolling window
_KEPT_DAYS = 31  # the ledger's history: requests per day over the last 30 days


@dataclass(frozen=True, slots=True)
class Allowance:
    """One account's use of its rolling 24 hours, from the ledger."""

    account: str
    requests: int  # sent in the last 24 hours
    oldest: float | None  # when the oldest of them leaves the window
    cooldown_until: float | None


def _date(day: int) -> str:
    """Day ``day`` since 1970-01-01 (UTC), as ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(day * WINDOW))


class Ledger:
    """The ``ledger`` table and the cooldowns in ``meta``. Writes happen inside the
    caller's transaction."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def count(self, account: str, requests: int, now: float) -> int:
        """Add ``requests`` to ``account``'s second of ``now``; returns that second."""
        second = int(now // _GRAIN)
        if requests > 0:
            self._db.execute(
                "INSERT INTO ledger VALUES (?, ?, ?) ON CONFLICT (account, second) "
                "DO UPDATE SET requests = ledger.requests + excluded.requests",
                (account, second, requests),
            )
        return second

    def uncount(self, account: str, requests: int, second: int) -> None:
        """Take back ``requests`` counted at ``second`` (reserved, never sent)."""
        self._db.execute(
            "UPDATE ledger SET requests = CASE WHEN requests > ? THEN requests - ? ELSE 0 END "
            "WHERE account = ? AND second = ?",
            (requests, requests, account, second),
        )

    def forget_old(self, now: float) -> None:
        """Drop seconds long out of the window (kept 31 days, for ``cache info``)."""
        oldest = int((now - _KEPT_DAYS * WINDOW) // _GRAIN)
        self._db.execute("DELETE FROM ledger WHERE second < ?", (oldest,))

    def window(self, account: str, now: float) -> tuple[int, float | None]:
        """Requests of ``account`` in the 24 hours to ``now``, and when the oldest of them
        leaves the window. A second counts until it has left entirely: the count errs
        on the side of sending less."""
        first = int((now - WINDOW) // _GRAIN)
        total, oldest = self._db.execute(
            "SELECT SUM(requests), MIN(second) FROM ledger WHERE account = ? AND second >= ?",
            (account, first),
        ).fetchone()
        leaves = (oldest + 1) * _GRAIN + WINDOW if oldest is not None else None
        return int(total or 0), leaves

    def allowance(self, account: str) -> Allowance:
        """What ``account`` has spent of its rolling 24 hours, and its cooldown."""
        requests, oldest = self.window(account, self._clock())
        return Allowance(account, requests, oldest, self.cooldown_until(account))

    def accounts(self, days: float = 1) -> list[str]:
        """Accounts with requests in the last ``days`` days or a cooldown, by name."""
        now = self._clock()
        names = {
            key.removeprefix("cooldown:")
            for (key,) in self._db.execute("SELECT key FROM meta WHERE key LIKE 'cooldown:%'")
        }
        names.update(
            account
            for (account,) in self._db.execute(
                "SELECT DISTINCT account FROM ledger WHERE second >= ?",
                (int((now - days * WINDOW) // _GRAIN),),
            )
        )
        return sorted(names)

    def per_day(self, account: str, days: int = 30) -> dict[str, int]:
        """``account``'s requests per UTC day over the last ``days`` days, by date."""
        since = int((self._clock() - days * WINDOW) // _GRAIN)
        rows = self._db.execute(
            "SELECT second / ?, SUM(requests) FROM ledger "
            "WHERE account = ? AND second >= ? GROUP BY 1 ORDER BY 1",
            (int(WINDOW) // _GRAIN, account, since),
        )
        return {_date(int(day)): int(total) for day, total in rows}

    def cooldown_until(self, account: str) -> float | None:
        """Unix time before which ``account`` should send nothing, if a quota stop set one
        (its own, or one carried over from a version-1 cache, which holds every account)."""
        keys = (f"cooldown:{account}", f"cooldown:{ANY_ACCOUNT}")
        rows = self._db.execute("SELECT value FROM meta WHERE key IN (?, ?)", keys).fetchall()
        until = max((float(value) for (value,) in rows), default=None)
        return until if until is not None and until > self._clock() else None

    def set_cooldown(self, account: str, until: float) -> None:
        set_meta(self._db, f"cooldown:{account}", repr(until))

    def clear_cooldowns(self) -> int:
        return self._db.execute("DELETE FROM meta WHERE key LIKE 'cooldown:%'").rowcount

    def clear_cooldown(self, account: str) -> None:
        self._db.execute(
            "DELETE FROM meta WHERE key IN (?, ?)",
            (f"cooldown:{account}", f"cooldown:{ANY_ACCOUNT}"),
        )
