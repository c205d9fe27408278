"""Enrichment details (an album, a track's audio features) by kind and Spotify id."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
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

    def put(self, kind: str, items: Mapping[str, Mapping[str, Any]], now: float) -> None:
        rows = [(kind, i, json.dumps(d, ensure_ascii=False), now) for i, d in items.items()]
        if rows:
            self._db.executemany(_PUT, rows)
