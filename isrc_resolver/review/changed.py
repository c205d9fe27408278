"""What changed since the cache's answers, as the rows of the ``--changes`` table (gone
first): plain values, written by the fronts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..changes import Change
from ..schema import Kind, iso_time

__all__ = ["CHANGE_COLUMNS", "FROM_STORES", "change_records"]

CHANGE_COLUMNS = (
    ("isrc", Kind.TEXT),
    ("provider", Kind.TEXT),
    ("change", Kind.TEXT),
    ("before_id", Kind.TEXT),
    ("after_id", Kind.TEXT),
    ("before_title", Kind.TEXT),
    ("after_title", Kind.TEXT),
    ("last_seen", Kind.TEXT),
)
FROM_STORES = ("before_id", "after_id", "before_title", "after_title")  # text from outside


def change_records(changes: Sequence[Change]) -> list[dict[str, Any]]:
    """One record per change, in the order given (``changes.ordered``: gone first)."""
    return [
        {
            "isrc": c.isrc,
            "provider": c.provider,
            "change": c.change.value,
            "before_id": c.before_id,
            "after_id": c.after_id,
            "before_title": c.before_title,
            "after_title": c.after_title,
            "last_seen": iso_time(c.last_seen),
        }
        for c in changes
    ]
