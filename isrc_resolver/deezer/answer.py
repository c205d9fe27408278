"""Deezer's answer to ``GET /track/isrc:{ISRC}``, checked and made a :class:`Listing`.

Deezer says most things with HTTP 200: a track object, or ``{"error": {"code": N, ...}}``.
Code 800 ("no data") is a miss; code 4 ("quota limit exceeded") asks us to slow down; 700
("service busy") is worth retrying; anything else is a refusal. Every field of a track is
optional on the wire and checked for its type and range before it is used or cached; ids
and links are rebuilt from the integer id, never copied from the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..isrc import normalize_value
from ..listing import Listing, ListingStatus
from ..untrusted import BadAnswer, items, obj, text, whole

__all__ = ["PROVIDER", "Busy", "QuotaSignal", "Refused", "listing_of", "track_url"]

PROVIDER = "deezer"
_LONGEST_SECONDS = 24 * 3600  # no track is a day long


class QuotaSignal(Exception):
    """Error code 4: past Deezer's rate (about 50 requests per 5 s per address)."""


class Busy(Exception):
    """Error code 700, or another answer worth asking again."""


class Refused(BadAnswer):
    """An error answer not worth repeating, or an answer that fails the checks."""


def track_url(track_id: int) -> str:
    return f"https://www.deezer.com/track/{track_id}"


def listing_of(isrc: str, body: object, fetched_at: float) -> Listing:
    """The Listing for ``isrc`` from Deezer's parsed JSON ``body``. Raises
    :class:`QuotaSignal`, :class:`Busy` or :class:`Refused` for error answers."""
    try:
        return _listing_of(isrc, body, fetched_at)
    except Refused:
        raise
    except BadAnswer as exc:
        raise Refused(str(exc)) from None


def _listing_of(isrc: str, body: object, fetched_at: float) -> Listing:
    if not isinstance(body, Mapping):
        raise Refused("the answer is not a JSON object")
    error = body.get("error")
    if error is not None:
        return _error(isrc, error, fetched_at)
    track_id = whole(body.get("id"), "id")
    if not track_id:
        raise Refused(f"id is {body.get('id')!r:.40}, not a whole number above 0")
    answered = text(body.get("isrc"), "isrc")
    if answered and normalize_value(answered) != isrc:
        raise Refused(f"answered for another ISRC ({answered[:20]!r})")
    duration = whole(body.get("duration"), "duration")
    if duration is not None and duration > _LONGEST_SECONDS:
        raise Refused(f"duration {duration} s is out of range")
    album = obj(body.get("album"), "album")
    return Listing(
        PROVIDER,
        isrc,
        ListingStatus.FOUND,
        id=str(track_id),
        url=track_url(track_id),
        title=text(body.get("title"), "title") or text(body.get("title_short"), "title_short"),
        artists=_artists(body),
        album=text(album.get("title"), "album title") or None,
        release_date=text(album.get("release_date") or body.get("release_date"), "release_date")
        or None,
        duration_ms=None if duration is None else duration * 1000,
        fetched_at=fetched_at,
    )


def _error(isrc: str, error: object, fetched_at: float) -> Listing:
    fields = obj(error, "error")
    code = fields.get("code")
    message = text(fields.get("message"), "error message")[:200]
    if code == 800:
        return Listing(PROVIDER, isrc, ListingStatus.NOT_FOUND, fetched_at=fetched_at)
    if code == 4:
        raise QuotaSignal(message or "quota limit exceeded")
    if code == 700:
        raise Busy(f"code 700 {message}".strip())
    raise Refused(f"error code {str(code)[:12]}: {message or 'no message'}")


def _artists(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The main artist first, then the other contributors (each name once)."""
    main = text(obj(body.get("artist"), "artist").get("name"), "artist name")
    names = [main] if main else []
    for person in items(body.get("contributors"), "contributors"):
        name = text(obj(person, "contributor").get("name"), "contributor name")
        if name and name not in names:
            names.append(name)
    return tuple(names)
