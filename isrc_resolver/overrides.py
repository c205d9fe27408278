"""Overrides: answers a person pinned, which no search may change.

A row says an ISRC is a given Spotify track (its id, an ``open.spotify.com/track/`` link
or a ``spotify:track:`` URI), or is not on Spotify at all (``none``, or an empty id). They
are read and checked whole before any request: a bad ISRC, a malformed id, or one ISRC
given two different answers stops the run with every offending row named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import InputError
from .isrc import is_valid_isrc, normalize_value

__all__ = [
    "NOT_ON_SPOTIFY",
    "Override",
    "overrides_from_mapping",
    "parse_overrides",
    "parse_track_id",
]

NOT_ON_SPOTIFY = "none"  # the id that says "this ISRC is not on Spotify"
_ID = re.compile(r"[0-9A-Za-z]{22}")
_LINK = re.compile(
    r"(?:https?://open\.spotify\.com/(?:intl-[a-z-]+/)?track/|spotify:track:)"
    r"([0-9A-Za-z]{22})(?:[?#].*)?"
)
_SHOWN = 12  # problems named in one message, at most


@dataclass(frozen=True, slots=True)
class Override:
    """An ISRC pinned to a track (``track_id``), or to "not on Spotify" (None)."""

    isrc: str
    track_id: str | None
    note: str = ""
    row: int = 0  # where it was given (a file's line, counting the header as 1)


def parse_track_id(value: object) -> str | None:
    """A Spotify track id from an id, a link or a URI; None for "not on Spotify" (an
    empty cell or ``none``). Raises :class:`ValueError` for anything else."""
    if value is None:
        return None
    text = str(value).strip()
    if text == "" or text.casefold() == NOT_ON_SPOTIFY:
        return None
    if _ID.fullmatch(text):
        return text
    link = _LINK.fullmatch(text)
    if link:
        return link.group(1)
    raise ValueError(text)


def parse_overrides(
    rows: Iterable[tuple[int, object, object, object]],
    display: str,
    *,
    empty_means_none: bool = True,
) -> dict[str, Override]:
    """Overrides by normalised ISRC from ``(row, isrc, track id, note)``. ``empty_means_
    none``: an empty id says "not on Spotify" (False for a review file, whose empty ids
    are rows nobody decided yet: they are skipped). Repeats of the same answer are one;
    every problem is collected and raised as one :class:`InputError`."""
    out: dict[str, Override] = {}
    problems: list[str] = []
    for row, raw_isrc, raw_id, raw_note in rows:
        isrc = normalize_value(raw_isrc)
        if not is_valid_isrc(isrc):
            problems.append(f"row {row}: {_show(raw_isrc)} is not an ISRC")
            continue
        if not empty_means_none and (raw_id is None or str(raw_id).strip() == ""):
            continue
        try:
            track_id = parse_track_id(raw_id)
        except ValueError:
            problems.append(
                f"row {row}: {_show(raw_id)} is not a Spotify track id (22 letters and "
                "digits, an open.spotify.com/track/ link, or 'none' for not on Spotify)"
            )
            continue
        note = "" if raw_note is None else str(raw_note).strip()
        earlier = out.get(isrc)
        if earlier is not None and earlier.track_id != track_id:
            problems.append(
                f"rows {earlier.row} and {row} give {isrc} different answers "
                f"({earlier.track_id or NOT_ON_SPOTIFY}, {track_id or NOT_ON_SPOTIFY})"
            )
            continue
        if earlier is None:
            out[isrc] = Override(isrc, track_id, note, row)
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise InputError(
            f"the overrides in {display} cannot be used: {'; '.join(problems[:_SHOWN])}{more}. "
            "Correct those rows and run again (nothing was sent)"
        )
    return out


def overrides_from_mapping(pairs: Mapping[str, str | None]) -> dict[str, Override]:
    """Overrides given as ``{isrc: track id or None}`` (the library's form)."""
    rows = ((n, isrc, track, "") for n, (isrc, track) in enumerate(pairs.items(), start=1))
    return parse_overrides(rows, "overrides=")


def _show(value: object) -> str:
    text = "" if value is None else str(value)
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
