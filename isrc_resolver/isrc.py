"""ISRC normalisation and validation (ISO 3901), and the distinct ISRCs of many values.

An ISRC is twelve characters, ``CCXXXYYNNNNN``: two letters (country or prefix), three
letters or digits (registrant), two digits (year) and five digits (designation). There is
no check digit, so validation is by position only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ISRC_PATTERN",
    "Normalized",
    "count_isrcs",
    "is_valid_isrc",
    "normalize_isrc",
    "normalize_value",
    "normalize_values",
]

# Separators people put in ISRCs: any whitespace (incl. no-break space), hyphens and the
# Unicode dashes spreadsheets substitute for them, dots, and zero-width characters.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.\u200b\u200c\u200d\ufeff]+")
_LABEL = re.compile(r"^ISRC[:=#]?")
ISRC_PATTERN = "^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"  # a canonical ISRC (also for Arrow's regex)
_VALID = re.compile(ISRC_PATTERN)


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


def normalize_value(value: object) -> str:
    """The normalised form of one input value; anything but text is not an ISRC."""
    return normalize_isrc(value) if isinstance(value, str) else ""


@dataclass
class Normalized:
    """Input values, normalised: one entry per value, and the distinct valid ISRCs."""

    values: list[str] = field(default_factory=list)
    unique: dict[str, None] = field(default_factory=dict)  # an ordered set
    invalid: int = 0  # values that are not an ISRC (blanks included)

    def add(self, raw: Iterable[object], *, keep_values: bool = True) -> None:
        unique = self.unique
        for value in raw:
            isrc = normalize_value(value)
            if isrc not in unique:
                if is_valid_isrc(isrc):
                    unique[isrc] = None
                else:
                    self.invalid += 1
            if keep_values:
                self.values.append(isrc)


def normalize_values(raw: Iterable[object]) -> Normalized:
    normalized = Normalized()
    normalized.add(raw)
    return normalized


def count_isrcs(chunks: Iterable[Sequence[object]]) -> tuple[int, int, list[str]]:
    """Values, invalid values, and the distinct valid ISRCs in order, of ``chunks``."""
    rows = 0
    normalized = Normalized()
    for values in chunks:
        rows += len(values)
        normalized.add(values, keep_values=False)
    return rows, normalized.invalid, list(normalized.unique)
