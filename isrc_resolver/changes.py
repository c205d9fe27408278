"""What changed tonight: one store's fresh answer for an ISRC against the answer it gave
before. A change is a fact, never a guess: only a settled answer obtained this run is
compared, and only with the last settled answer the cache held for it.

- ``gone``: found before, and the store now answers that it has no such track;
- ``appeared``: not found before, found now;
- ``id_changed``: found both times under another id (a re-link); it outranks a rename;
- ``names_changed``: the same id with another title, compared as the store gives it.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from .listing import Listing
from .models import Result, Status

__all__ = ["Answer", "Change", "ChangeKind", "compare", "count", "ordered"]


class ChangeKind(enum.StrEnum):
    GONE = "gone"
    APPEARED = "appeared"
    ID_CHANGED = "id_changed"
    NAMES_CHANGED = "names_changed"


@dataclass(frozen=True, slots=True)
class Answer:
    """A settled answer, reduced to what a change compares: found or not, the store's id
    and title, and when the store gave it (Unix time)."""

    found: bool
    id: str | None = None
    title: str | None = None
    at: float | None = None

    @classmethod
    def of_result(cls, result: Result) -> Answer | None:
        """Spotify's answer (None when it is no settled answer)."""
        if result.status not in (Status.FOUND, Status.NOT_FOUND):
            return None
        track = result.track if result.status is Status.FOUND else None
        if result.status is Status.FOUND and track is None:
            return None
        return cls(
            track is not None,
            track.id if track else None,
            track.name if track else None,
            result.resolved_at,
        )

    @classmethod
    def of_listing(cls, listing: Listing) -> Answer | None:
        """Another store's answer (None when it is no settled answer, or an earlier one
        served because asking failed)."""
        if not listing.status.settled or listing.stale:
            return None
        return cls(listing.found, listing.id, listing.title, listing.fetched_at)


@dataclass(frozen=True, slots=True)
class Change:
    """One ISRC's change at one store (``provider``); ``last_seen``: when the answer
    before was obtained."""

    isrc: str
    provider: str
    change: ChangeKind
    before_id: str | None
    after_id: str | None
    before_title: str | None
    after_title: str | None
    last_seen: float | None


def compare(isrc: str, provider: str, before: Answer | None, after: Answer | None) -> Change | None:
    """The change from ``before`` to ``after`` (None: no change, or nothing to compare)."""
    if before is None or after is None:
        return None
    if before.found and not after.found:
        kind = ChangeKind.GONE
    elif after.found and not before.found:
        kind = ChangeKind.APPEARED
    elif not after.found:
        return None
    elif before.id != after.id:
        kind = ChangeKind.ID_CHANGED
    elif before.title != after.title:
        kind = ChangeKind.NAMES_CHANGED
    else:
        return None
    return Change(isrc, provider, kind, before.id, after.id, before.title, after.title, before.at)


_ORDER = {k: n for n, k in enumerate(ChangeKind)}


def ordered(changes: Iterable[Change]) -> list[Change]:
    """Gone first (what a person must act on), then new arrivals, re-links and renames;
    by provider and ISRC within each."""
    return sorted(changes, key=lambda c: (_ORDER[c.change], c.provider, c.isrc))


def count(changes: Iterable[Change]) -> dict[str, int]:
    """How many of each kind, every kind named."""
    counted = Counter(c.change for c in changes)
    return {kind.value: counted[kind] for kind in ChangeKind}
