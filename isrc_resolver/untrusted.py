"""Checks for fields of an answer from the network, before they are used or cached.

Every field a store sends is optional on the wire and may be of any type; these read one
field each and raise :class:`BadAnswer` (a ``ValueError``) when it is not what it claims.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BadAnswer", "items", "obj", "text", "token", "whole"]

_TEXT_LIMIT = 1000  # characters: longer names are not names
_LARGEST = 2**53
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class BadAnswer(ValueError):
    """A field of an answer that fails its check."""


def obj(value: object, what: str) -> Mapping[str, Any]:
    """An object (a missing one is empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadAnswer(f"{what} is not an object")
    return value


def items(value: object, what: str) -> Sequence[Any]:
    """A list (a missing one is empty)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadAnswer(f"{what} is not a list")
    return value


def text(value: object, what: str) -> str:
    """Text of a reasonable length (a missing one is empty)."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _TEXT_LIMIT:
        raise BadAnswer(f"{what} is not text of a reasonable length")
    return value


def whole(value: object, what: str) -> int | None:
    """A whole number, 0 or more (None when missing)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _LARGEST:
        raise BadAnswer(f"{what} is {value!r:.40}, not a whole number in range")
    return value


def token(value: object, what: str) -> str:
    """An id that goes into a link or a file: letters, digits, ``_ . -``, 1 to 64."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise BadAnswer(f"{what} is {value!r:.40}, not an id")
    return value
