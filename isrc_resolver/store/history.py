"""Answers replaced by different ones, kept per ISRC: what ``isrc-resolve cache history``
tells of a recording over time (a takedown, a re-link, a rename). An answer is kept here
when the next one for the same ISRC and store differs from it in status, id or title."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Result, Status
from .sql import Database, select_in

__all__ = ["Entry", "History"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One store's answer for an ISRC: ``source`` names the store (``spotify``, or the
    second catalogue's name); ``replaced_at`` None for the answer the cache holds now."""

    isrc: str
    source: str
    status: str
    id: str | None
    title: str | None
    fetched_at: float | None
    replaced_at: float | None = None


class History:
    """The ``history`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def keep_results(self, results: Sequence[Result], variant: str, now: float) -> None:
        """Before ``results`` replace the answers of ``variant``: keep each one that a
        settled result changes."""
        new: dict[str, _Said] = {
            r.isrc: (
                r.status.value,
                r.track.id if r.track else None,
                r.track.name if r.track else None,
            )
            for r in results
            if r.status in (Status.FOUND, Status.NOT_FOUND)
        }
        if not new:
            return
        old = select_in(
            self._db,
            "SELECT isrc, status, track, fetched_at FROM results WHERE variant = ? "
            "AND isrc IN ({})",
            (variant,),
            sorted(new),
        )
        self._keep(
            (isrc, "spotify", _of_result(status, track), at, new[isrc], now)
            for isrc, status, track, at in old
        )

    def keep_details(self, kind: str, items: Mapping[str, Mapping[str, Any]], now: float) -> None:
        """Before ``items`` (a second catalogue's answers by ISRC) replace those of
        ``kind``: keep each one they change."""
        new = {isrc: _of_listing(data) for isrc, data in items.items()}
        if not new:
            return
        old = select_in(
            self._db,
            "SELECT id, data, fetched_at FROM details WHERE kind = ? AND id IN ({})",
            (kind,),
            sorted(new),
        )
        source = kind.split(" ", 1)[0]
        self._keep(
            (isrc, source, _of_listing(json.loads(data)), at, new[isrc], now)
            for isrc, data, at in old
        )

    def _keep(self, pairs: Iterable[tuple[str, str, _Said, float, _Said, float]]) -> None:
        rows = [
            (isrc, source, *before, at, now)
            for isrc, source, before, at, after, now in pairs
            if before != after
        ]
        if rows:
            self._db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def of(self, isrc: str) -> list[Entry]:
        """What the cache knows of ``isrc``: every store's answer now, then the answers
        they replaced, newest first."""
        now = [
            Entry(isrc, "spotify", status, *_of_result(status, track)[1:], at)
            for status, track, at in self._db.execute(
                "SELECT status, track, fetched_at FROM results WHERE isrc = ? "
                "ORDER BY fetched_at DESC",
                (isrc,),
            )
        ]
        now += [
            Entry(isrc, kind.split(" ", 1)[0], *_of_listing(json.loads(data)), at)
            for kind, data, at in self._db.execute(
                "SELECT kind, data, fetched_at FROM details WHERE id = ?", (isrc,)
            )
        ]
        past = [
            Entry(*row)
            for row in self._db.execute(
                "SELECT isrc, source, status, id, title, fetched_at, replaced_at FROM history "
                "WHERE isrc = ? ORDER BY replaced_at DESC",
                (isrc,),
            )
        ]
        return now + past


_Said = tuple[str, str | None, str | None]  # status, id, title


def _of_result(status: str, track: str | None) -> _Said:
    data = json.loads(track) if track else {}
    return status, data.get("id"), data.get("name")


def _of_listing(data: Mapping[str, Any]) -> _Said:
    if not data.get("found"):
        return "not_found", None, None
    return "found", data.get("id"), data.get("title")
