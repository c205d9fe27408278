"""ISRC normalisation and validation (ISO 3901).

An ISRC is twelve characters, ``CCXXXYYNNNNN``: two letters (country or prefix), three
letters or digits (registrant), two digits (year) and five digits (designation). There is
no check digit, so validation is by position only.
"""

from __future__ import annotations

import re

__all__ = ["is_valid_isrc", "normalize_isrc"]

# Separators people put in ISRCs: any whitespace (incl. no-break space), hyphens and the
# Unicode dashes spreadsheets substitute for them, dots, and zero-width characters.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.\u200b\u200c\u200d\ufeff]+")
_LABEL = re.compile(r"^ISRC[:=#]?")
_VALID = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")


def normalize_isrc(value: str) -> str:
    """Return ``value`` in canonical form: no separators, no ``ISRC`` label, upper case.

    The result is not necessarily valid; check it with :func:`is_valid_isrc`.
    """
    if _VALID.fullmatch(value):  # already canonical: most cells of a clean catalogue
        return value
    compact = _SEPARATORS.sub("", value).upper()
    without_label = _LABEL.sub("", compact, count=1)
    # "ISRC" is also the start of real codes (country IS, registrant RC...), so the label is
    # only dropped when what remains has the length of an ISRC.
    if without_label != compact and len(without_label) == 12:
        return without_label
    return compact


def is_valid_isrc(value: str) -> bool:
    """True when ``value`` (already normalised) has the ISO 3901 shape."""
    return _VALID.fullmatch(value) is not None
