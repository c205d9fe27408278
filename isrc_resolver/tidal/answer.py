"""TIDAL's answer to ``GET /tracks?filter[isrc]=...`` (JSON:API), checked and made listings.

Tracks are matched to the ISRCs asked by their ``isrc`` attribute, never by position; an
ISRC with no track is a miss. Names come from the ``included`` albums and artists. Every
attribute is optional on the wire and checked before it is used or cached; ids must be
plain tokens and links are built from them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..isrc import normalize_value
from ..listing import Listing, ListingStatus
from ..untrusted import BadAnswer, items, obj, text, token

__all__ = ["duration_ms", "listings_of", "track_url"]

PROVIDER = "tidal"
_DURATION = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_LONGEST_MS = 24 * 3600 * 1000


def track_url(track_id: str) -> str:
    return f"https://tidal.com/browse/track/{track_id}"


def duration_ms(value: object) -> int | None:
    """An ISO 8601 duration (``PT4M44S``) in milliseconds; None when missing."""
    if value is None:
        return None
    found = _DURATION.fullmatch(value) if isinstance(value, str) and len(value) < 40 else None
    if found is None or value in ("P", "PT"):
        raise BadAnswer(f"duration {value!r:.40} is not an ISO 8601 duration")
    parts = {k: float(v) if v else 0.0 for k, v in found.groupdict().items()}
    seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    ms = round(seconds * 1000)
    if ms > _LONGEST_MS:
        raise BadAnswer(f"duration {value!r:.40} is out of range")
    return ms


def listings_of(isrcs: Sequence[str], body: object, fetched_at: float) -> dict[str, Listing]:
    """A listing for each of ``isrcs`` from TIDAL's parsed JSON ``body``."""
    top = obj(body, "the answer")
    included = _included(top.get("included"))
    tracks: dict[str, list[Listing]] = defaultdict(list)
    for item in items(top.get("data"), "data"):
        listing = _track(obj(item, "track"), included, fetched_at)
        if listing is not None and listing.isrc in isrcs:
            tracks[listing.isrc].append(listing)
    out = {}
    for isrc in isrcs:
        out[isrc] = Listing.pick(PROVIDER, isrc, tracks.get(isrc, ()), fetched_at)
    return out


def _included(value: object) -> dict[tuple[str, str], Mapping[str, Any]]:
    out = {}
    for item in items(value, "included"):
        resource = obj(item, "included resource")
        kind, rid = text(resource.get("type"), "type"), text(resource.get("id"), "id")
        out[(kind, rid)] = obj(resource.get("attributes"), f"{kind} attributes")
    return out


def _track(
    item: Mapping[str, Any], included: Mapping[tuple[str, str], Mapping[str, Any]], at: float
) -> Listing | None:
    if item.get("type") != "tracks":
        return None
    track_id = token(item.get("id"), "track id")
    attributes = obj(item.get("attributes"), "track attributes")
    isrc = normalize_value(text(attributes.get("isrc"), "isrc"))
    title = text(attributes.get("title"), "title")
    version = text(attributes.get("version"), "version")
    relations = obj(item.get("relationships"), "relationships")
    artists = [
        text(included.get(("artists", rid), {}).get("name"), "artist name")
        for rid in _ids(relations, "artists")
    ]
    albums = [included.get(("albums", rid), {}) for rid in _ids(relations, "albums")]
    album = albums[0] if albums else {}
    return Listing(
        PROVIDER,
        isrc,
        ListingStatus.FOUND,
        id=track_id,
        url=track_url(track_id),
        title=f"{title} ({version})" if version and version not in title else title,
        artists=tuple(dict.fromkeys(a for a in artists if a)),
        album=text(album.get("title"), "album title") or None,
        release_date=text(album.get("releaseDate"), "release date")[:10] or None,
        duration_ms=duration_ms(attributes.get("duration")),
        fetched_at=at,
    )


def _ids(relations: Mapping[str, Any], name: str) -> list[str]:
    data = obj(relations.get(name), name).get("data")
    return [text(obj(x, name).get("id"), f"{name} id") for x in items(data, f"{name} data")]
