"""Apple Music's answer to ``GET /catalog/{sf}/songs?filter[isrc]=...``, checked.

Songs are matched to the ISRCs asked by their ``isrc`` attribute (never by position); an
ISRC with no song is a miss. One ISRC often has many songs (the album, the single, a
compilation): the earliest release is chosen, then the lowest id. Every attribute is
optional on the wire and checked; the link is Apple's own when it is one of
music.apple.com, else built from the id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..isrc import normalize_value
from ..listing import Listing, ListingStatus
from ..untrusted import BadAnswer, items, obj, text, token, whole

__all__ = ["listings_of", "song_url"]

PROVIDER = "apple"
_LONGEST_MS = 24 * 3600 * 1000


def song_url(storefront: str, song_id: str) -> str:
    return f"https://music.apple.com/{storefront}/song/{song_id}"


def listings_of(
    isrcs: Sequence[str], body: object, storefront: str, fetched_at: float
) -> dict[str, Listing]:
    """A listing for each of ``isrcs`` from Apple's parsed JSON ``body``."""
    songs: dict[str, list[Listing]] = defaultdict(list)
    for item in items(obj(body, "the answer").get("data"), "data"):
        listing = _song(obj(item, "song"), storefront, fetched_at)
        if listing is not None and listing.isrc in isrcs:
            songs[listing.isrc].append(listing)
    out = {}
    for isrc in isrcs:
        out[isrc] = Listing.pick(PROVIDER, isrc, songs.get(isrc, ()), fetched_at, _order)
    return out


def _order(x: Listing) -> tuple[str, int, str]:
    song_id = x.id or ""
    return (x.release_date or "9999", int(song_id) if song_id.isdigit() else 0, song_id)


def _song(item: Mapping[str, Any], storefront: str, at: float) -> Listing | None:
    if item.get("type") != "songs":
        return None
    song_id = token(item.get("id"), "song id")
    attributes = obj(item.get("attributes"), "song attributes")
    duration = whole(attributes.get("durationInMillis"), "durationInMillis")
    if duration is not None and duration > _LONGEST_MS:
        raise BadAnswer(f"durationInMillis {duration} is out of range")
    artist = text(attributes.get("artistName"), "artistName")
    return Listing(
        PROVIDER,
        normalize_value(text(attributes.get("isrc"), "isrc")),
        ListingStatus.FOUND,
        id=song_id,
        url=_link(text(attributes.get("url"), "url"), storefront, song_id),
        title=text(attributes.get("name"), "name"),
        artists=(artist,) if artist else (),
        album=text(attributes.get("albumName"), "albumName") or None,
        release_date=text(attributes.get("releaseDate"), "releaseDate")[:10] or None,
        duration_ms=duration,
        fetched_at=at,
    )


def _link(given: str, storefront: str, song_id: str) -> str:
    parts = urlsplit(given)
    if parts.scheme == "https" and parts.hostname == "music.apple.com" and given.isprintable():
        return given
    return song_url(storefront, song_id)
