"""The cache files of this user, so that runs with different caches can see that they
spend one account's allowance.

Spotify counts the quota per developer account, but each cache file keeps its own ledger:
a notebook on the default cache and a nightly job on its own would each think they had
the whole allowance. Every cache opened for a run is listed in one small file in the
user's state folder (``$XDG_STATE_HOME/isrc-resolver/caches``), and a run with a daily
quota reads what the account spent, in the last 24 hours, in the ledgers of the others.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .ledger import WINDOW

__all__ = ["register", "registry_path", "spent_elsewhere"]

_MOST = 64  # caches remembered (the oldest are forgotten first)


def registry_path() -> Path:
    from platformdirs import user_state_path

    return user_state_path("isrc-resolver", appauthor=False) / "caches"


def _listed(registry: Path) -> list[str]:
    try:
        return [line for line in registry.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, UnicodeDecodeError):
        return []


def register(cache: Path) -> None:
    """Remember ``cache`` (best effort: a state folder that cannot be written costs only
    the sight of the other caches' spending)."""
    registry, entry = registry_path(), str(cache.resolve())
    listed = _listed(registry)
    if entry in listed:
        return
    with contextlib.suppress(OSError):
        registry.parent.mkdir(parents=True, exist_ok=True)
        tmp = registry.with_name(f".caches.{os.getpid()}")
        tmp.write_text("\n".join([*listed, entry][-_MOST:]) + "\n", encoding="utf-8")
        os.replace(tmp, registry)


def spent_elsewhere(cache: Path, account: str, now: float) -> Iterator[tuple[Path, int]]:
    """Each other remembered cache whose ledger holds requests of ``account`` in the 24
    hours to ``now``, with how many. Read-only; a file gone or unreadable is passed over."""
    own = cache.resolve()
    first = int(now - WINDOW)
    for entry in _listed(registry_path()):
        other = Path(entry)
        if other == own or not other.is_file():
            continue
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{other}?mode=ro", uri=True, timeout=1.0)
            ) as db:
                (total,) = db.execute(
                    "SELECT SUM(requests) FROM ledger WHERE account = ? AND second >= ?",
                    (account, first),
                ).fetchone()
        except sqlite3.Error:
            continue
        if total:
            yield other, int(total)
