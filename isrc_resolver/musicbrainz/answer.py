"""MusicBrainz's answer to ``GET /isrc/{isrc}?inc=artist-credits``, checked.

A 404 is a miss ("not in MusicBrainz", not proof the ISRC does not exist). One ISRC may
have several recordings: the earliest first release is chosen, then the smallest MBID.
Ids must be UUIDs; links are built from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..listing import Listing, ListingStatus
from ..untrusted import BadAnswer, items, obj, text, whole

__all__ = ["listing_of", "recording_url"]

PROVIDER = "musicbrainz"
_MBID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LONGEST_MS = 24 * 3600 * 1000


def recording_url(mbid: str) -> str:
    return f"https://musicbrainz.org/recording/{mbid}"


def listing_of(isrc: str, body: object, fetched_at: float) -> Listing:
    """The listing for ``isrc`` from MusicBrainz's parsed JSON ``body`` (a 200's)."""
    top = obj(body, "the answer")
    answered = text(top.get("isrc"), "isrc")
    if answered and answered != isrc:
        raise BadAnswer(f"answered for another ISRC ({answered[:20]!r})")
    recordings = items(top.get("recordings"), "recordings")
    found = [_recording(obj(r, "recording"), isrc, fetched_at) for r in recordings]
    return Listing.pick(PROVIDER, isrc, found, fetched_at)


def _recording(item: Mapping[str, Any], isrc: str, at: float) -> Listing:
    mbid = text(item.get("id"), "recording id")
    if not _MBID.fullmatch(mbid):
        raise BadAnswer(f"recording id {mbid[:40]!r} is not an MBID")
    length = whole(item.get("length"), "length")
    if length is not None and length > _LONGEST_MS:
        raise BadAnswer(f"length {length} is out of range")
    credits = [obj(c, "artist credit") for c in items(item.get("artist-credit"), "artist-credit")]
    return Listing(
        PROVIDER,
        isrc,
        ListingStatus.FOUND,
        id=mbid,
        url=recording_url(mbid),
        title=text(item.get("title"), "title"),
        artists=tuple(n for c in credits if (n := text(c.get("name"), "credited name"))),
        release_date=text(item.get("first-release-date"), "first-release-date")[:10] or None,
        duration_ms=length,
        fetched_at=at,
    )
