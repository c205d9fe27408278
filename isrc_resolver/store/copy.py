"""Copying one cache's contents into another, whichever their backends: ``isrc-resolve
cache copy`` (a SQLite file into a team's PostgreSQL, say) and the backup of a database
into a file.

What is copied: the answers (``results``, and the second catalogues' and enrichment
``details``), the ledger, the answers they replaced (``history``) and the cooldowns.
Leases are not: they belong to the processes running now. Copying is a merge that can be
repeated: an answer replaces one in the target only when it is as new or newer, a
second's count of requests never goes down (the larger count stays), and a replaced answer
already in the target's history is not added twice. Pages are read by key, so memory
does not grow with the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .sql import Database, select_in, set_meta, upsert

__all__ = ["Copied", "copy_rows"]

_PAGE = 5_000

_RESULTS = (
    "isrc, variant, status, track, match_count, fetched_at, method, market, searched, "
    "stored_at, conflict, candidates"
)
_NEWER = (
    "coalesce(excluded.stored_at, excluded.fetched_at) "
    ">= coalesce(results.stored_at, results.fetched_at)"
)


_PUT_RESULTS = upsert("results", _RESULTS, "isrc, variant", _NEWER)
_PUT_DETAILS = upsert(
    "details", "kind, id, data, fetched_at", "kind, id", "excluded.fetched_at >= details.fetched_at"
)
_PUT_LEDGER = (
    "INSERT INTO ledger (account, second, requests) VALUES (?, ?, ?) "
    "ON CONFLICT (account, second) DO UPDATE SET requests = CASE "
    "WHEN excluded.requests > ledger.requests THEN excluded.requests ELSE ledger.requests END"
)
_HISTORY = "isrc, replaced_at, source, status, id, title, fetched_at"


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy carried: rows read from the source, by table; ``requests``: the
    ledger's requests in them."""

    answers: int = 0
    details: int = 0
    ledger_seconds: int = 0
    requests: int = 0
    history: int = 0
    cooldowns: int = 0


def _pages(db: Database, table: str, columns: str, keys: tuple[str, ...]) -> Iterator[list[Any]]:
    """Every row of ``table``, ``_PAGE`` at a time, ordered by ``keys`` (the first
    columns of ``columns``), each page after the last key read."""
    key = ", ".join(keys)
    after: tuple[Any, ...] | None = None
    while True:
        if after is None:
            sql, params = f"SELECT {columns} FROM {table} ORDER BY {key} LIMIT ?", (_PAGE,)
        else:
            marks = ", ".join("?" * len(keys))
            sql = f"SELECT {columns} FROM {table} WHERE ({key}) > ({marks}) ORDER BY {key} LIMIT ?"
            params = (*after, _PAGE)
        rows = db.execute(sql, params).fetchall()
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][: len(keys)])


def copy_rows(
    source: Database, target: Database, turn: Callable[[], AbstractContextManager[None]]
) -> Copied:
    """Merge ``source``'s contents into ``target``; ``turn`` opens one of the target's
    write transactions (one per page)."""
    answers = details = seconds = requests = history = 0
    for rows in _pages(source, "results", _RESULTS, ("isrc", "variant")):
        with turn():
            target.executemany(_PUT_RESULTS, rows)
        answers += len(rows)
    for rows in _pages(source, "details", "kind, id, data, fetched_at", ("kind", "id")):
        with turn():
            target.executemany(_PUT_DETAILS, rows)
        details += len(rows)
    for rows in _pages(source, "ledger", "account, second, requests", ("account", "second")):
        with turn():
            target.executemany(_PUT_LEDGER, rows)
        seconds += len(rows)
        requests += sum(int(r[2]) for r in rows)
    for rows in _pages(source, "history", _HISTORY, ("isrc", "replaced_at", "source")):
        with turn():
            history += _add_history(target, rows)
    cooldowns = source.execute("SELECT key, value FROM meta WHERE key LIKE 'cooldown:%'").fetchall()
    if cooldowns:
        with turn():
            for key, value in cooldowns:
                set_meta(target, key, value)
    return Copied(answers, details, seconds, requests, history, len(cooldowns))


def _add_history(target: Database, rows: Sequence[Sequence[Any]]) -> int:
    """Add those of ``rows`` the target's history does not hold yet; returns how many."""
    isrcs = sorted({str(r[0]) for r in rows})
    held = {
        (isrc, source, replaced)
        for isrc, source, replaced in select_in(
            target,
            "SELECT isrc, source, replaced_at FROM history WHERE isrc IN ({})",
            (),
            isrcs,
        )
    }
    new = [r for r in rows if (r[0], r[2], r[1]) not in held]
    if new:
        target.executemany(f"INSERT INTO history ({_HISTORY}) VALUES (?, ?, ?, ?, ?, ?, ?)", new)
    return len(new)
