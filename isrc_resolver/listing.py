"""A store's answer for one ISRC, Spotify's aside: a :class:`Listing`.

Spotify's answer is a :class:`~isrc_resolver.models.Result`; every other store answers
with a Listing: whether it has the ISRC, its id and link, and the names and length a
person or the cross-check needs. Built by the store's own folder from its validated JSON;
kept in the cache's details as :meth:`Listing.to_json`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Listing", "ListingStatus"]


class ListingStatus(enum.StrEnum):
    """What a second provider said of one ISRC."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    ERROR = "error"  # no usable answer this run (an outage, a refused request)
    PENDING = "pending"  # not asked: the run stopped first

    @property
    def settled(self) -> bool:
        """An answer worth keeping (until it ages out)."""
        return self in (ListingStatus.FOUND, ListingStatus.NOT_FOUND)


@dataclass(frozen=True, slots=True)
class Listing:
    """One provider's answer for one ISRC. ``id`` is the provider's own track id (as text),
    ``url`` a link built from it; ``duration_ms`` in milliseconds whatever the provider's
    unit; ``fetched_at`` when the provider answered (Unix time)."""

    provider: str
    isrc: str
    status: ListingStatus
    id: str | None = None
    url: str | None = None
    title: str | None = None
    artists: tuple[str, ...] = ()
    album: str | None = None
    release_date: str | None = None
    duration_ms: int | None = None
    fetched_at: float | None = None
    error: str | None = None
    stale: bool = False  # an earlier answer, served because asking again failed
    # The store's other tracks under the same ISRC (other releases, or a label's error),
    # in the store's order after the chosen one: for --candidates and the conflict flag.
    others: tuple[Listing, ...] = ()

    @property
    def found(self) -> bool:
        return self.status is ListingStatus.FOUND

    @classmethod
    def pick(
        cls,
        provider: str,
        isrc: str,
        found: Iterable[Listing],
        fetched_at: float,
        key: Callable[[Listing], Any] | None = None,
    ) -> Listing:
        """The store's answer for ``isrc`` among the tracks it ``found``: the first by
        ``key`` (default: the earliest release, then the id), the others kept with it
        (for --candidates and the conflict flag); a miss when it found none."""
        ordered = sorted(found, key=key or _earliest)
        if not ordered:
            return cls(provider, isrc, ListingStatus.NOT_FOUND, fetched_at=fetched_at)
        others = tuple(replace(x, others=()) for x in ordered[1:])
        return replace(ordered[0], others=others)

    @classmethod
    def missing(cls, provider: str, isrc: str, status: ListingStatus, error: str) -> Listing:
        """No answer this run (``error`` or ``pending``), saying why."""
        return cls(provider, isrc, status, error=error)

    def to_json(self) -> dict[str, Any]:
        """What the cache keeps of a settled answer (:meth:`from_json` reads it back)."""
        if not self.found:
            return {"found": False}
        out: dict[str, Any] = {
            "found": True,
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "artists": list(self.artists),
            "album": self.album,
            "release_date": self.release_date,
            "duration_ms": self.duration_ms,
        }
        if self.others:
            out["others"] = [x.to_json() for x in self.others]
        return out

    @classmethod
    def from_json(
        cls, provider: str, isrc: str, data: Mapping[str, Any], fetched_at: float | None
    ) -> Listing:
        if not data.get("found"):
            return cls(provider, isrc, ListingStatus.NOT_FOUND, fetched_at=fetched_at)
        return cls(
            provider,
            isrc,
            ListingStatus.FOUND,
            id=data["id"],
            url=data["url"],
            title=data["title"],
            artists=tuple(data["artists"]),
            album=data["album"],
            release_date=data["release_date"],
            duration_ms=data["duration_ms"],
            fetched_at=fetched_at,
            others=tuple(
                cls.from_json(provider, isrc, x, fetched_at) for x in data.get("others") or ()
            ),
        )


def _earliest(x: Listing) -> tuple[str, str]:
    return (x.release_date or "9999", x.id or "")
