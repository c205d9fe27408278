"""The output columns: each one's name, meaning and type, and how it is read off a result.

This is the one place that knows the columns. :mod:`isrc_resolver.io` asks it for types
(Arrow for Parquet, pandas dtypes for DataFrames and CSV) and for the values of a chunk of
rows; nothing indexes a row by position. A new column is one :class:`Column` here.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .listing import Listing
from .matching import Answered, CrossCheck, Told, conflicting, disagreeing, first_found
from .models import (
    FEATURE_NAMES,
    PINNED,
    AlbumDetails,
    AudioFeatures,
    Enrichment,
    MatchMethod,
    Result,
    Status,
    Track,
)
from .provider import catalogues

SPOTIFY = "spotify"

__all__ = [
    "FORMATS",
    "FRAMES",
    "OUTPUT_COLUMNS",
    "RESULT_COLUMNS",
    "SHARED_COLUMNS",
    "WRITTEN",
    "Column",
    "Kind",
    "Resolved",
    "Row",
    "enriched",
    "enrichment_columns",
    "iso_time",
    "output_columns",
    "result_row",
    "row_of",
    "store_columns",
]


FORMATS = ("csv", "tsv", "parquet", "xlsx", "ods")  # what a table can be read from
WRITTEN = ("csv", "tsv", "parquet", "xlsx")  # ... and written to (an .ods is only read)
FRAMES = ("csv", "tsv", "parquet")  # what the side tables (candidates, review...) are


class Kind(enum.StrEnum):
    """A column's type, the same in every format (text in CSV, typed in Parquet/pandas)."""

    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"

    @property
    def pandas_dtype(self) -> str:
        return {"text": "object", "integer": "Int64", "float": "Float64", "boolean": "boolean"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class Resolved:
    """Everything one output row is built from: the result and any enrichment of it."""

    result: Result
    album: AlbumDetails | None = None
    features: AudioFeatures | None = None
    listings: Mapping[str, Listing] = field(default_factory=dict)  # the other stores', by name
    order: tuple[str, ...] = (SPOTIFY,)  # the stores by preference for the names shown
    told: Mapping[str, Told] = field(init=False, default_factory=dict)  # each store, by preference
    differ: tuple[tuple[str, CrossCheck], ...] = field(init=False, default=())  # unlike the shown

    def __post_init__(self) -> None:  # derived once: several columns read them
        if self.listings:
            told = _told(self)
            object.__setattr__(self, "told", told)
            object.__setattr__(self, "differ", tuple(disagreeing(told, _SAME)))


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    meaning: str
    value: Callable[[Resolved], Any]
    from_network: bool = True  # its text came from Spotify: untrusted (formula escaping)


def _track(get: Callable[[Track], Any]) -> Callable[[Resolved], Any]:
    def read(row: Resolved) -> Any:
        track = row.result.track
        return get(track) if track is not None else None

    return read


def iso_time(moment: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC, to the second (None stays None)."""
    return None if moment is None else _iso_second(int(moment))


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    # Answers come thousands a second: those of one second share one string.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1024)
def _joined(places: tuple[str, ...]) -> str | None:
    # A handful of distinct lists across millions of rows: each string is made once.
    return ";".join(places) or None


def _first_artist(t: Track) -> str | None:
    return t.artists[0].name if t.artists else None


def _first_of(x: Listing) -> str | None:
    return x.artists[0] if x.artists else None


def _named(
    spotify: Callable[[Track], Any], other: Callable[[Listing], Any]
) -> Callable[[Resolved], Any]:
    """A name column: the first store's in --providers order that has the track."""

    def read(row: Resolved) -> Any:
        track = row.result.track
        if not row.listings:
            return spotify(track) if track is not None else None
        shown = first_found(row.told)  # the first store in --providers order that has it
        if shown == SPOTIFY and track is not None:
            return spotify(track)
        return other(row.listings[shown]) if shown is not None else None

    return read


RESULT_COLUMNS: tuple[Column, ...] = (
    Column(
        "isrc_normalized",
        Kind.TEXT,
        "the ISRC as searched: no spaces, hyphens, dots or ISRC label; upper case",
        lambda r: r.result.isrc,
        from_network=False,
    ),
    Column(
        "status",
        Kind.TEXT,
        "found, not_found, invalid, error, rate_limited, pending, deferred or not_asked",
        lambda r: r.result.status.value,
        from_network=False,
    ),
    Column(
        "track",
        Kind.TEXT,
        "the track's name (another store's when Spotify has none: see names_from)",
        _named(lambda t: t.name, lambda x: x.title),
    ),
    Column(
        "album", Kind.TEXT, "the album's name", _named(lambda t: t.album.name, lambda x: x.album)
    ),
    Column("artist", Kind.TEXT, "the first artist", _named(_first_artist, _first_of)),
    Column(
        "artists",
        Kind.TEXT,
        "all the artists, joined with '; '",
        _named(lambda t: "; ".join(a.name for a in t.artists), lambda x: "; ".join(x.artists)),
    ),
    Column("spotify_track_id", Kind.TEXT, "the track's Spotify id", _track(lambda t: t.id)),
    Column("spotify_url", Kind.TEXT, "the track's open.spotify.com link", _track(lambda t: t.url)),
    Column("album_id", Kind.TEXT, "the album's Spotify id", _track(lambda t: t.album.id)),
    Column(
        "album_type",
        Kind.TEXT,
        "album, single or compilation",
        _track(lambda t: t.album.album_type),
    ),
    Column(
        "release_date",
        Kind.TEXT,
        "as precise as Spotify has it: 2024, 2024-03 or 2024-03-19",
        _track(lambda t: t.album.release_date),
    ),
    Column("duration_ms", Kind.INTEGER, "length in milliseconds", _track(lambda t: t.duration_ms)),
    Column("explicit", Kind.BOOLEAN, "explicit lyrics", _track(lambda t: t.explicit)),
    Column(
        "match_count",
        Kind.INTEGER,
        "how many tracks Spotify has with this ISRC (its total)",
        lambda r: r.result.match_count,
    ),
    Column(
        "match_method",
        Kind.TEXT,
        "how the track was found: isrc (first market), isrc_market (a fallback market), "
        "title_artist (title/artist search, proven by the ISRC), title_artist_fuzzy",
        lambda r: r.result.method.value if r.result.method else None,
        from_network=False,
    ),
    Column(
        "market",
        Kind.TEXT,
        "the market the track was found in (empty: Spotify's default, the US)",
        lambda r: r.result.market,
        from_network=False,
    ),
    Column(
        "searched",
        Kind.TEXT,
        "where it was looked for, in order: markets, then title_artist; for a not_found row, "
        "everywhere it was not found",
        lambda r: _joined(r.result.searched),
        from_network=False,
    ),
    Column(
        "match_check",
        Kind.TEXT,
        "the input's own title and artist against the track's: ok, title_differs, "
        "artist_differs or both_differ (empty without title and artist columns)",
        lambda r: None,  # filled in row by row from the input (see io)
        from_network=False,
    ),
    Column(
        "match_score",
        Kind.FLOAT,
        "how alike the input's title and artist are to the track's, 0-100 (the lower of the two)",
        lambda r: None,  # filled in row by row from the input (see io)
        from_network=False,
    ),
    Column(
        "isrc_conflict",
        Kind.BOOLEAN,
        "true when the tracks Spotify has under this ISRC are different recordings (titles "
        "that differ once normalised, or lengths more than 10 s apart); empty when not known",
        lambda r: r.result.conflict,
        from_network=False,
    ),
    Column(
        "resolved_at",
        Kind.TEXT,
        "when Spotify gave this answer (UTC, ISO 8601); older than the run for a cached "
        "answer, and for a stale one that could not be refreshed",
        lambda r: iso_time(r.result.resolved_at),
        from_network=False,
    ),
    Column(
        "error",
        Kind.TEXT,
        "a short reason for error, rate_limited, pending and invalid rows; for a row pinned "
        "by --overrides, the pin's note and any warning about it",
        lambda r: r.result.error or _pin_said(r.result),
    ),
)


def _pin_said(result: Result) -> str | None:
    """What the overrides file said of a pinned row (its note), and a warning about the pin
    (a track that carries another ISRC); none for a bare pin."""
    if result.method is not MatchMethod.OVERRIDE or result.reason in (None, PINNED):
        return None
    return result.reason


_SAME = 90.0  # the cross-check's threshold (match_check's default min_score)
_DECIDED = frozenset({Status.FOUND, Status.NOT_FOUND})


def _told(r: Resolved) -> dict[str, Told]:
    """Every store's answer, Spotify's among them, in the order of preference."""
    t = r.result.track
    told: dict[str, Told] = {SPOTIFY: Answered(False)}
    if t is not None:
        told[SPOTIFY] = Answered(True, t.name, tuple(a.name for a in t.artists), t.duration_ms)
    told.update(r.listings)
    return {name: told[name] for name in r.order if name in told}


def _found_on(r: Resolved) -> str | None:
    """The stores asked that have the ISRC, in --providers order."""
    found = tuple(name for name, x in r.told.items() if x.found)
    return _joined(found) if r.listings else None


def _cross_check(r: Resolved) -> str | None:
    """Empty unless Spotify and some other store gave an answer (found or not) this run
    or before; else the first disagreement with the names shown, or how they agree."""
    settled = [x for x in r.listings.values() if x.status.settled]
    if not settled or r.result.status not in _DECIDED:
        return None
    on_spotify = r.result.track is not None
    if not any(x.found for x in settled):
        return (CrossCheck.ONLY_SPOTIFY if on_spotify else CrossCheck.NEITHER).value
    if not on_spotify:
        return CrossCheck.ONLY_OTHER.value
    return (r.differ[0][1] if r.differ else CrossCheck.AGREE).value


def _disagree(r: Resolved) -> str | None:
    return _joined(tuple(name for name, _ in r.differ))


_ENRICHMENTS = frozenset(Enrichment)


def _listing_of(name: str, get: Callable[[Listing], Any]) -> Callable[[Resolved], Any]:
    def read(r: Resolved) -> Any:
        x = r.listings.get(name)
        return get(x) if x is not None else None

    return read


@functools.lru_cache(maxsize=16)
def store_columns(name: str) -> tuple[Column, ...]:
    """One store's columns: its id, its link and its status."""
    spec = catalogues()[name]
    id_, url, status = spec.columns
    return (
        Column(
            id_,
            Kind.TEXT,
            f"the {spec.item}'s {spec.label} id ({spec.label}'s choice when several carry "
            "the ISRC; the others are in --candidates)",
            _listing_of(name, lambda x: x.id),
        ),
        Column(url, Kind.TEXT, f"the {spec.site} link", _listing_of(name, lambda x: x.url)),
        Column(
            status,
            Kind.TEXT,
            "found, not_found, error or pending",
            _listing_of(name, lambda x: x.status.value),
            from_network=False,
        ),
    )


SHARED_COLUMNS: tuple[Column, ...] = (
    Column(
        "found_on",
        Kind.TEXT,
        "the stores asked that have the ISRC, in --providers order, joined with ';'",
        _found_on,
        from_network=False,
    ),
    Column(
        "cross_check",
        Kind.TEXT,
        f"the names shown against the other stores' tracks: "
        f"{', '.join(c.value for c in CrossCheck)} (the first disagreement; empty when "
        "Spotify or every other store has no answer this run)",
        _cross_check,
        from_network=False,
    ),
    Column(
        "disagree",
        Kind.TEXT,
        "the stores whose track differs from the names shown (title, artist, or length "
        "by more than 3 s), joined with ';'",
        _disagree,
        from_network=False,
    ),
    Column(
        "conflict_on",
        Kind.TEXT,
        "the stores whose tracks under this ISRC are different recordings (their others "
        "are in --candidates), joined with ';'",
        lambda r: _joined(conflicting(r.listings)),
        from_network=False,
    ),
    Column(
        "names_from",
        Kind.TEXT,
        "whose names track, album, artist and artists are: spotify, another store or empty",
        lambda r: first_found(r.told),
        from_network=False,
    ),
)


def _album(get: Callable[[AlbumDetails], Any]) -> Callable[[Resolved], Any]:
    return lambda r: get(r.album) if r.album is not None else None


ALBUM_COLUMNS: tuple[Column, ...] = (
    Column("album_label", Kind.TEXT, "the album's label", _album(lambda a: a.label)),
    Column("album_upc", Kind.TEXT, "the album's UPC", _album(lambda a: a.upc)),
    Column(
        "album_total_tracks", Kind.INTEGER, "tracks on the album", _album(lambda a: a.total_tracks)
    ),
    Column(
        "album_genres",
        Kind.TEXT,
        "the album's genres, joined with '; '",
        _album(lambda a: "; ".join(a.genres) or None),
    ),
)

_INTEGER_FEATURES = frozenset({"key", "mode", "time_signature"})


def _feature(name: str) -> Column:
    def read(r: Resolved) -> Any:
        return getattr(r.features, name) if r.features is not None else None

    kind = Kind.INTEGER if name in _INTEGER_FEATURES else Kind.FLOAT
    return Column(name, kind, f"Spotify's audio feature '{name}'", read)


AUDIO_FEATURE_COLUMNS: tuple[Column, ...] = tuple(_feature(name) for name in FEATURE_NAMES)

OUTPUT_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULT_COLUMNS)


def enrichment_columns(kinds: Iterable[str]) -> tuple[Column, ...]:
    """The columns of ``kinds`` (stores by name, and :class:`Enrichment` groups): the
    stores' first, in order, then the columns they share, then the enrichments'."""
    by_kind: dict[str, tuple[Column, ...]] = {
        Enrichment.ALBUM: ALBUM_COLUMNS,
        Enrichment.AUDIO_FEATURES: AUDIO_FEATURE_COLUMNS,
    }
    ordered = list(dict.fromkeys(kinds))
    stores = tuple(
        c for k in ordered if k not in by_kind and k != SPOTIFY for c in store_columns(k)
    )
    shared = SHARED_COLUMNS if stores else ()
    return (*stores, *shared, *(c for k in ordered if k in by_kind for c in by_kind[k]))


def output_columns(kinds: Iterable[str] = ()) -> tuple[Column, ...]:
    """The columns a run adds, in order: the result's, then each group's."""
    return (*RESULT_COLUMNS, *enrichment_columns(kinds))


@dataclass(frozen=True, slots=True)
class Row:
    """One ISRC's output values, compact: what a run keeps per distinct ISRC between
    resolving and writing (the result objects themselves are let go at once)."""

    status: Status
    values: tuple[Any, ...]  # RESULT_COLUMNS, then the enrichment columns asked for
    stale: bool = False  # a cached answer past its age, kept because it was not refreshed

    def get(self, name: str) -> Any:
        """A result column's value, by name."""
        return self.values[_RESULT_INDEX[name]]


_RESULT_INDEX = {c.name: i for i, c in enumerate(RESULT_COLUMNS)}
# Enrichment columns read only the details; this stands in for the result they do not use.
_NO_RESULT = Result("", Status.PENDING)


def row_of(
    result: Result, listings: Mapping[str, Listing] | None = None, kinds: Iterable[str] = ()
) -> Row:
    """The result's own columns, compact; with the stores' columns when ``kinds`` names
    stores (``listings``: their answers by name; names from them where Spotify has none)."""
    stores = [k for k in kinds if k not in _ENRICHMENTS and k != SPOTIFY]
    order = [k for k in kinds if k == SPOTIFY or k in stores]
    order = order if SPOTIFY in order else [SPOTIFY, *order]
    resolved = Resolved(result, listings=listings or {}, order=tuple(order))
    columns = (*RESULT_COLUMNS, *enrichment_columns(stores)) if stores else RESULT_COLUMNS
    return Row(result.status, tuple(c.value(resolved) for c in columns), result.stale)


def enriched(
    row: Row,
    kinds: Sequence[str],
    album: AlbumDetails | None = None,
    features: AudioFeatures | None = None,
) -> Row:
    """``row`` with the columns of ``kinds``' enrichments appended (empty where a detail is
    missing; the stores' columns are :func:`row_of`'s)."""
    wanted = [k for k in kinds if k in _ENRICHMENTS]
    if not wanted:
        return row
    details = Resolved(_NO_RESULT, album, features)
    extra = tuple(c.value(details) for c in enrichment_columns(wanted))
    return Row(row.status, row.values + extra, row.stale)


def result_row(result: Result) -> dict[str, Any]:
    """The result's own columns, by name."""
    resolved = Resolved(result)
    return {c.name: c.value(resolved) for c in RESULT_COLUMNS}
