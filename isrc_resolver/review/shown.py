"""Candidates as a person reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..models import Candidate

__all__ = ["Kept", "describe"]

Kept = Mapping[str, tuple[tuple[Candidate, ...], str | None]]  # isrc -> candidates, reason


def describe(candidates: Sequence[Candidate], chosen: str | None) -> str:
    """Candidates as lines a person can compare in one cell (the review list)."""
    lines = []
    for n, c in enumerate(candidates, start=1):
        length = (
            ""
            if c.duration_ms is None
            else f" {c.duration_ms // 60_000}:{c.duration_ms // 1000 % 60:02d}"
        )
        mark = " [chosen]" if c.id == chosen else ""
        lines.append(
            f"{n}. {c.id} {c.name} - {', '.join(c.artists)} | {c.album} "
            f"({c.album_type}, {c.release_date}){length} isrc {c.isrc or '?'}{mark}"
        )
    return "\n".join(lines)
