"""What a person should know of a table's columns before a run (logged, not raised)."""

from __future__ import annotations

from collections.abc import Sequence

from ..schema import output_columns
from .columns import HintColumns, output_names

__all__ = ["column_notes"]


def column_notes(
    columns: Sequence[str], hints: HintColumns, kinds: Sequence[str], display: str
) -> list[str]:
    """What a person should know of the columns: which give the title and artist (or that
    none do, and how to name them), and which output columns were renamed so as not to
    overwrite the input's own."""
    notes = []
    if hints.usable:
        notes.append(
            f"title and artist from {display} columns {hints.title!r} and {hints.artist!r}"
        )
    else:
        listing = ", ".join(columns) or "(none)"
        notes.append(
            f"{display} has no title and artist columns that the title/artist search and "
            f"match_check could use (columns: {listing}); name them with title_column= and "
            "artist_column="
        )
    ours = [c.name for c in output_columns(kinds)]
    pairs = zip(ours, output_names(columns, ours), strict=True)
    if renamed := [f"{a} -> {b}" for a, b in pairs if a != b]:
        notes.append(f"output columns renamed ({display} has its own): {', '.join(renamed)}")
    return notes
