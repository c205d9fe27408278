"""Enrichment details (an album, a track's audio features) by kind and Spotify id."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .sql import Database, select_in, upsert

__all__ = ["PINNED_TRACK", "Details"]

PINNED_TRACK = "track"  # the kind pinned tracks (overrides) are kept under
_PUT = upsert("details", "kind, id, data, fetched_at", "kind, id")


class Details:
    """The ``details`` table, as JSON per (kind, id)."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def lookup(self, kind: str, ids: Sequence[str], *, max_age: float) -> dict[str, dict[str, Any]]:
        """Fresh cached details of ``kind`` for those of ``ids`` that have them."""
        rows = select_in(
            self._db,
            "SELECT id, data FROM details WHERE kind = ? AND fetched_at >= ? AND id IN ({})",
            (kind, self._clock() - max_age),
            ids,
        )
        return {row_id: json.loads(data) for row_id, data in rows}

    def ids(self, kinds: Sequence[str], size: int = 20_000) -> Iterator[list[str]]:
        """Every id that has details of any of ``kinds``, in order, ``size`` at a time
        (a page after the last id read each time: memory does not grow with the table)."""
        marks = ", ".join("?" * len(kinds))
        after = ""
        while kinds:
            page = [
                row[0]
                for row in self._db.execute(
                    f"SELECT DISTINCT id FROM details WHERE kind IN ({marks}) AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (*kinds, after, size),
                ).fetchall()
            ]
            if not page:
                return
            after = page[-1]
            yield page

    def put(self, kind: str, items: Mapping[str, Mapping[str, Any]], now: float) -> None:
        rows = [(kind, i, json.dumps(d, ensure_ascii=False), now) for i, d in items.items()]
        if rows:
            self._db.executemany(_PUT, rows)
