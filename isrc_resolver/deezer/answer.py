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

__all__ = ["PROVIDER", "Busy", "QuotaSignal", "Refused", "listing_of", "track_url"]

PROVIDER = "deezer"
_LARGEST = 2**53
_LONGEST_SECONDS = 24 * 3600  # no track is a day long
_TEXT_LIMIT = 1000  # characters: longer names are not names


class QuotaSignal(Exception):
    """Error code 4: past Deezer's rate (about 50 requests per 5 s per address)."""


class Busy(Exception):
    """Error code 700, or another answer worth asking again."""


class Refused(Exception):
    """An error answer not worth repeating, or an answer that fails the checks."""


def track_url(track_id: int) -> str:
    return f"https://www.deezer.com/track/{track_id}"


def listing_of(isrc: str, body: object, fetched_at: float) -> Listing:
    """The Listing for ``isrc`` from Deezer's parsed JSON ``body``. Raises
    :class:`QuotaSignal`, :class:`Busy` or :class:`Refused` for error answers."""
    if not isinstance(body, Mapping):
        raise Refused("the answer is not a JSON object")
    error = body.get("error")
    if error is not None:
        return _error(isrc, error, fetched_at)
    track_id = _whole(body.get("id"), "id", required=True)
    assert track_id is not None
    answered = _text(body.get("isrc"), "isrc")
    if answered and normalize_value(answered) != isrc:
        raise Refused(f"answered for another ISRC ({answered[:20]!r})")
    duration = _whole(body.get("duration"), "duration")
    if duration is not None and duration > _LONGEST_SECONDS:
        raise Refused(f"duration {duration} s is out of range")
    album = _object(body.get("album"), "album")
    return Listing(
        PROVIDER,
        isrc,
        ListingStatus.FOUND,
        id=str(track_id),
        url=track_url(track_id),
        title=_text(body.get("title"), "title") or _text(body.get("title_short"), "title_short"),
        artists=_artists(body),
        album=_text(album.get("title"), "album title") or None,
        release_date=_text(album.get("release_date") or body.get("release_date"), "release_date")
        or None,
        duration_ms=None if duration is None else duration * 1000,
        fetched_at=fetched_at,
    )


def _error(isrc: str, error: object, fetched_at: float) -> Listing:
    fields = _object(error, "error")
    code = fields.get("code")
    message = _text(fields.get("message"), "error message")[:200]
    if code == 800:
        return Listing(PROVIDER, isrc, ListingStatus.NOT_FOUND, fetched_at=fetched_at)
    if code == 4:
        raise QuotaSignal(message or "quota limit exceeded")
    if code == 700:
        raise Busy(f"code 700 {message}".strip())
    raise Refused(f"error code {str(code)[:12]}: {message or 'no message'}")


def _artists(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The main artist first, then the other contributors (each name once)."""
    main = _text(_object(body.get("artist"), "artist").get("name"), "artist name")
    names = [main] if main else []
    contributors = body.get("contributors")
    if contributors is not None and not isinstance(contributors, list):
        raise Refused("contributors is not a list")
    for person in contributors or ():
        name = _text(_object(person, "contributor").get("name"), "contributor name")
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _object(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Refused(f"{what} is not an object")
    return value


def _text(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _TEXT_LIMIT:
        raise Refused(f"{what} is not text of a reasonable length")
    return value


def _whole(value: object, what: str, *, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _LARGEST:
        raise Refused(f"{what} is {value!r:.40}, not a whole number in range")
    if required and value == 0:
        raise Refused(f"{what} is 0")
    return value
