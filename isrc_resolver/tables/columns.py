"""Which input columns hold what (the ISRC, the title, the artist, the duration), the
names of the output columns, and the match check of each row.

Plain Python over sequences of cells: the readers, the writer and the DataFrame front
all use these, and none of them needs pandas or Arrow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import InputError
from ..isrc import normalize_value
from ..matching import Check, Hint, check

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "HintColumns",
    "Table",
    "checks",
    "find_hint_columns",
    "find_isrc_column",
    "first_durations",
    "hints_of",
    "output_names",
]


def find_isrc_column(columns: Sequence[str], wanted: str | None, display: str) -> str:
    """The ISRC column: ``wanted`` if given, else the one column named ``isrc`` in any
    case, else the one a label's file names so ("ISRC Code", "ISRC No."...). The CLI and
    the library share this rule and its messages."""
    listing = ", ".join(columns) or "(none)"
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise InputError(f"column {wanted!r} not found in {display}; columns are: {listing}")
    named = [c for c in columns if c.strip().lower() == "isrc"]
    if not named:
        named = [c for c in columns if _bare_name(c) in _ISRC_NAMES]
    if len(named) == 1:
        return named[0]
    if named:
        raise InputError(
            f"{display} has several ISRC columns ({', '.join(named)}); choose one with column="
        )
    raise InputError(
        f"no column named 'isrc' in {display}; columns are: {listing}. "
        "Name the ISRC column with column="
    )


# What labels' and distributors' files call the ISRC column, compared without case, spaces,
# dashes, dots or underscores.
_ISRC_NAMES = frozenset({"isrc", "isrccode", "isrcno", "isrcnumber", "isrcid"})


def _bare_name(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


# The names labels' and distributors' files give these columns, in order of preference,
# compared without case, spaces, dashes or dots ("Track Title" is track_title).
_TITLE_NAMES = (
    "title", "track_title", "song_title", "track", "track_name", "song", "song_name",
    "recording_title", "title_name", "release_track_title",
)  # fmt: skip
_ARTIST_NAMES = (
    "artist", "main_artist", "primary_artist", "artist_name", "artists", "track_artist",
    "display_artist", "artist_display_name", "performer", "main_artists",
)  # fmt: skip
_DURATION_NAMES = ("duration_ms",)


@dataclass(frozen=True, slots=True)
class HintColumns:
    """The input's title, artist and duration columns (None: not there)."""

    title: str | None = None
    artist: str | None = None
    duration: str | None = None

    @property
    def usable(self) -> bool:
        """Title and artist both: the title/artist search and the match check need both."""
        return self.title is not None and self.artist is not None


def find_hint_columns(
    columns: Sequence[str],
    display: str,
    title: str | None = None,
    artist: str | None = None,
) -> HintColumns:
    """The title and artist columns: as named, else the first of the usual names (``Title``,
    ``Track Title``, ``Song Title``, ``Track Name``...; ``Artist``, ``Main Artist``,
    ``Primary Artist``, ``Artist Name``...), in any case and spelling of the spaces; and a
    ``duration_ms`` column, if any."""
    listing = ", ".join(columns) or "(none)"
    for wanted, name in ((title, "title_column="), (artist, "artist_column=")):
        if wanted is not None and wanted not in columns:
            raise InputError(
                f"{name} {wanted!r} is not a column of {display}; columns are: {listing}"
            )

    def auto(names: Sequence[str]) -> str | None:
        by_name = {_plain_name(c): c for c in reversed(columns)}
        return next((by_name[n] for n in names if n in by_name), None)

    return HintColumns(
        title or auto(_TITLE_NAMES), artist or auto(_ARTIST_NAMES), auto(_DURATION_NAMES)
    )


def _plain_name(column: str) -> str:
    """``Track Title``, ``track-title`` and ``TRACK_TITLE`` alike: ``track_title``."""
    return "_".join(re.split(r"[\s_\-.]+", column.strip().lower())).strip("_")


def _duration(value: object) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if 0 < number < 10**8 else None


def hints_of(
    isrcs: Sequence[object],
    titles: Sequence[object],
    artists: Sequence[object],
    durations: Sequence[object] | None,
    wanted: set[str],
) -> dict[str, Hint]:
    """The first title/artist/duration given for each ISRC of ``wanted``."""
    out: dict[str, Hint] = {}
    for n, value in enumerate(isrcs):
        isrc = normalize_value(value)
        if isrc in wanted and isrc not in out:
            out[isrc] = Hint(
                _cell(titles[n]),
                _cell(artists[n]),
                _duration(durations[n]) if durations is not None else None,
            )
    return out


def first_durations(
    isrcs: Sequence[object], durations: Sequence[object], out: dict[str, int]
) -> None:
    for value, duration in zip(isrcs, durations, strict=True):
        isrc = normalize_value(value)
        if isrc not in out and (ms := _duration(duration)) is not None:
            out[isrc] = ms


def _cell(value: object) -> str:
    return value if isinstance(value, str) else ""


def checks(
    titles: Sequence[object],
    artists: Sequence[object],
    tracks: Sequence[object],
    track_artists: Sequence[object],
    threshold: float,
) -> tuple[list[str | None], list[float | None]]:
    """``match_check`` and ``match_score`` for rows: the input's title and artist against
    the found track's (rows without a track, or without a title and artist, get none)."""
    verdicts: list[str | None] = []
    scores: list[float | None] = []
    for title, artist, track, names in zip(titles, artists, tracks, track_artists, strict=True):
        verdict, score = check_row(title, artist, track, names, threshold)
        verdicts.append(verdict)
        scores.append(score)
    return verdicts, scores


def check_row(
    title: object, artist: object, track: object, names: object, threshold: float
) -> tuple[str | None, float | None]:
    """One row's ``match_check`` and ``match_score`` (see :func:`checks`); ``track`` and
    ``names`` are the row's values as written (escaped for a spreadsheet or not)."""
    if not (isinstance(track, str) and _cell(title).strip() and _cell(artist).strip()):
        return None, None
    result = _check(
        _cell(title), _cell(artist), track.lstrip("'"), str(names or "").lstrip("'"), threshold
    )
    return result.verdict.value, result.score


@functools.lru_cache(maxsize=65_536)
def _check(title: str, artist: str, track: str, names: str, threshold: float) -> Check:
    return check(title, artist, track, names.split("; "), threshold)


class Table(Protocol):
    """What the writer needs of an input (:class:`.read.InputSource` is one): its columns,
    which of them hold the ISRC and the hints, and its rows in chunks."""

    columns: list[str]
    column: str
    hint_columns: HintColumns
    format: str  # csv, tsv, parquet, xlsx or ods: what it was read from
    display: str  # its name in messages
    preamble: list[list[Any]]  # a workbook's rows above its header (else none)
    sheet_name: str | None  # a workbook's sheet

    @property
    def schema(self) -> pa.Schema: ...

    def typed(self, start: int, stop: int) -> list[list[Any]] | None:
        """Data rows ``start`` to ``stop`` with each cell in its own type, where the
        chunks hold them as text (a workbook's); None: the chunks' cells are the cells."""
        ...

    def chunks(self, *, text: bool = False) -> Iterator[pd.DataFrame]: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...


def output_names(input_columns: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Output column names: ``spotify_`` is put before a name until it is free, so no
    input column is ever overwritten."""
    taken = set(input_columns)
    names = []
    for column in columns:
        name = column
        while name in taken:
            name = f"spotify_{name}"
        taken.add(name)
        names.append(name)
    return names
