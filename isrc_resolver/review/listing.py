"""The review list: the rows of a run's output that need a person's look, most doubtful
first, one per ISRC, with the candidates beside each and an empty id to fill. As written,
it is an overrides file: fill ``spotify_track_id`` (or write ``none``) where the answer is
wrong, and pass it to the next run with ``--overrides``; rows left empty are skipped."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..matching import CrossCheck, MatchCheck
from ..models import MatchMethod, Status
from ..provider import catalogues
from ..schema import Kind
from .shown import Kept, describe

__all__ = ["REVIEW_COLUMNS", "Item", "Scan", "review_records", "scan_output"]

REVIEW_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("isrc", Kind.TEXT),
    ("spotify_track_id", Kind.TEXT),  # to fill: the right track, or none
    ("note", Kind.TEXT),
    ("review_reason", Kind.TEXT),
    ("rows", Kind.INTEGER),
    ("input_title", Kind.TEXT),
    ("input_artist", Kind.TEXT),
    ("status", Kind.TEXT),
    ("chosen_track_id", Kind.TEXT),
    ("track", Kind.TEXT),
    ("artists", Kind.TEXT),
    ("album", Kind.TEXT),
    ("match_method", Kind.TEXT),
    ("match_check", Kind.TEXT),
    ("match_score", Kind.FLOAT),
    ("isrc_conflict", Kind.BOOLEAN),
    ("spotify_url", Kind.TEXT),
    ("candidates", Kind.TEXT),
)
FROM_NETWORK = ("track", "artists", "album", "candidates")
INPUT_TEXT = ("input_title", "input_artist", "note")

# Why a row is on the list, most doubtful first.
_CONFLICT = "isrc_conflict: the tracks under this ISRC are different recordings"
_BOTH = "both_differ: neither the title nor the artist is the input's"
_ONE = "{}: the track's {} is not the input's"
_FUZZY = "title_artist_fuzzy: found by title/artist similarity, no track carries the ISRC"
_MISS = "not_found: the input names a title and an artist; find it by hand"
_DISAGREE = "cross_check {}: {} has another track under this ISRC ({})"
_DISAGREEMENTS = {
    CrossCheck.TITLE_DIFFERS: "another title",
    CrossCheck.ARTIST_DIFFERS: "another artist",
    CrossCheck.DURATION_DIFFERS: "more than 3 s apart",
}
_ONLY_OTHERS = "only_others: not found on Spotify; {} has it (the names shown are its)"


@dataclass
class Item:
    """One ISRC on the list: why, how doubtful (lower first), and its row's values."""

    priority: int
    score: float
    reason: str
    record: dict[str, Any]
    rows: int = 1


@dataclass
class Scan:
    """A run's output counted (rows by status, method, market, check) and its doubtful
    rows by ISRC."""

    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    markets: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    cross_checks: Counter[str] = field(default_factory=Counter)  # with other stores asked
    conflicts: int = 0
    items: dict[str, Item] = field(default_factory=dict)
    # Where the recordings are: each store's rows by status (Spotify's and those of the
    # stores the output has columns for), and the ISRCs some store has and another asked
    # store lacks (found on, missing on): the ones a label chases.
    stores: dict[str, Counter[str]] = field(default_factory=dict)
    chase: dict[str, tuple[str, str]] = field(default_factory=dict)

    def sorted_items(self) -> list[Item]:
        return sorted(self.items.values(), key=lambda i: (i.priority, i.score, i.record["isrc"]))


# TRUE as a spreadsheet saves it in its language (Excel writes its own word into a CSV:
# German WAHR, French VRAI, Spanish VERDADERO, Dutch WAAR, Italian VERO, ...).
_TRUE = frozenset({"true", "wahr", "vrai", "verdadero", "verdadeiro", "waar", "vero", "sant"})


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUE)


def _number(value: object) -> float | None:
    """A score as written: ``43.5``, or ``43,5`` from a spreadsheet that writes decimal
    commas (German Excel, say); None when it is not a number."""
    if isinstance(value, str):
        value = value.strip().replace(",", ".")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _score(value: object) -> float:
    """A score to sort by: one that is missing or unreadable sorts after every other."""
    number = _number(value)
    return 101.0 if number is None else number


def _why(get: Mapping[str, Any], titled: bool) -> tuple[int, str] | None:
    check = get["match_check"]
    if get["match_method"] == MatchMethod.OVERRIDE:  # a person decided it already
        return None
    if _flag(get["isrc_conflict"]):
        return 0, _CONFLICT
    if check == MatchCheck.BOTH_DIFFER:
        return 1, _BOTH
    if check == MatchCheck.TITLE_DIFFERS:
        return 2, _ONE.format(check, "title")
    if check == MatchCheck.ARTIST_DIFFERS:
        return 2, _ONE.format(check, "artist")
    cross = get.get("cross_check")
    if cross in _DISAGREEMENTS:
        who = get.get("disagree") or "another store"
        return 2, _DISAGREE.format(cross, who, _DISAGREEMENTS[cross])
    if get["match_method"] == MatchMethod.TITLE_ARTIST_FUZZY:
        return 3, _FUZZY
    if get["status"] == Status.NOT_FOUND and cross == CrossCheck.ONLY_OTHER:
        return 4, _ONLY_OTHERS.format(get.get("names_from") or "another store")
    if get["status"] == Status.NOT_FOUND and titled:
        return 4, _MISS
    return None


def scan_output(
    chunks: Iterable[Mapping[str, list[Any]]],
    ours: Mapping[str, str],
    title: str | None = None,
    artist: str | None = None,
) -> Scan:
    """Count a run's output and keep its doubtful rows (``ours``: our column -> its name in
    the file; ``title``/``artist``: the input's columns, when it has them)."""
    scan = Scan()
    for chunk in chunks:
        names = {ours_: chunk[theirs] for ours_, theirs in ours.items()}
        titles = chunk[title] if title else None
        artists = chunk[artist] if artist else None
        for n in range(len(names["isrc_normalized"])):
            get = {k: v[n] for k, v in names.items()}
            given = (titles[n] if titles else None, artists[n] if artists else None)
            _count(scan, get, given)
    return scan


_CHASED = 10_000  # ISRCs to chase kept, at most (the report shows the first ones)


@functools.cache
def _status_columns() -> tuple[tuple[str, str], ...]:
    """Each other store's status column, by store (read once: a scan reads every row)."""
    return tuple((name, spec.columns[2]) for name, spec in catalogues().items())


def _where(scan: Scan, get: Mapping[str, Any], status: str) -> None:
    """Count each store's answer for the row, and keep an ISRC some store lacks (Spotify
    among them unless the run did not ask it)."""
    stores = {name: get[column] or "" for name, column in _status_columns() if column in get}
    if not stores:
        return
    said = {} if status == Status.NOT_ASKED else {"spotify": status}
    said.update(stores)
    for name, answer in said.items():
        scan.stores.setdefault(name, Counter())[answer or "(none)"] += 1
    on = [name for name, answer in said.items() if answer == "found"]
    off = [name for name, answer in said.items() if answer == "not_found"]
    if on and off and len(scan.chase) < _CHASED:
        scan.chase[get["isrc_normalized"]] = (";".join(on), ";".join(off))


def _count(scan: Scan, get: Mapping[str, Any], given: tuple[Any, Any]) -> None:
    scan.rows += 1
    status = get["status"] or ""
    scan.statuses[status] += 1
    _where(scan, get, status)
    if get.get("cross_check"):
        scan.cross_checks[get["cross_check"]] += 1
    if status == Status.FOUND:
        scan.methods[get["match_method"] or "?"] += 1
        scan.markets[get["market"] or "US (default)"] += 1
        scan.checks[get["match_check"] or "not checked"] += 1
    elif status != Status.NOT_FOUND:
        return
    isrc = get["isrc_normalized"]
    conflict = _flag(get["isrc_conflict"])
    known = scan.items.get(isrc)
    if conflict and known is None:
        scan.conflicts += 1
    why = _why(get, bool(given[0] and given[1]))
    if why is None:
        return
    if known is not None:
        known.rows += 1
        if (known.priority, known.score) <= (why[0], _score(get["match_score"])):
            return
    scan.items[isrc] = Item(why[0], _score(get["match_score"]), why[1], _record(get, given))
    if known is not None:
        scan.items[isrc].rows = known.rows


def _record(get: Mapping[str, Any], given: tuple[Any, Any]) -> dict[str, Any]:
    return {
        "isrc": get["isrc_normalized"],
        "input_title": given[0],
        "input_artist": given[1],
        "status": get["status"],
        "chosen_track_id": get["spotify_track_id"],
        "track": get["track"],
        "artists": get["artists"],
        "album": get["album"],
        "match_method": get["match_method"],
        "match_check": get["match_check"],
        "match_score": _number(get["match_score"]),
        "isrc_conflict": None if get["isrc_conflict"] is None else _flag(get["isrc_conflict"]),
        "spotify_url": get["spotify_url"],
    }


def review_records(scan: Scan, kept: Kept | None = None) -> list[dict[str, Any]]:
    """The list as records, most doubtful first, with the candidates kept in the cache."""
    out = []
    for item in scan.sorted_items():
        record = dict(item.record)
        candidates = (kept or {}).get(record["isrc"])
        record.update(
            spotify_track_id=None,
            note=None,
            review_reason=item.reason,
            rows=item.rows,
            candidates=describe(candidates[0], record["chosen_track_id"]) if candidates else None,
        )
        out.append(record)
    return out
