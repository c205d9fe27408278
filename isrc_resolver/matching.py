"""How alike a catalogue's title and artist are to a Spotify track's.

Both sides are normalised first, so that what differs only in writing does not count:
case, accents, "feat." parts, bracketed and dashed version suffixes ("- Remastered 2011",
"(Live)", "[Radio Edit]"), punctuation and spacing. Then rapidfuzz scores each field
0 to 100 (``token_sort_ratio``: word order does not matter, every word does). A field
"differs" below ``threshold`` (the ``min_score`` setting, 90 by default).

Used twice: to check every found row against the input's own title and artist (so a
label finds its wrong ISRCs), and to pick a candidate in the title/artist fallback search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import Any, Protocol

__all__ = [
    "CONFLICT_DURATION_MS",
    "CROSS_CHECK_DURATION_MS",
    "Check",
    "CrossCheck",
    "Hint",
    "Hints",
    "MatchCheck",
    "check",
    "cross_check",
    "different_recordings",
    "normalize_artist",
    "normalize_title",
]


class MatchCheck(StrEnum):
    OK = "ok"
    TITLE_DIFFERS = "title_differs"
    ARTIST_DIFFERS = "artist_differs"
    BOTH_DIFFER = "both_differ"


_FEAT = re.compile(r"[\(\[]?\b(feat|ft|featuring|with)\b\.?\s.*?([\)\]]|$)", re.IGNORECASE)
_BRACKETS = re.compile(r"[\(\[][^\)\]]*[\)\]]")
_DASH_SUFFIX = re.compile(
    r"\s[-\u2013\u2014]\s.*\b(remaster(ed)?|live|version|edit|mix|remix|mono|stereo|acoustic|"
    r"demo|instrumental|deluxe|bonus|single|radio|session|take|from|re-?recorded)\b.*$",
    re.IGNORECASE,
)
_NOT_WORD = re.compile(r"[^\w]+")
_ARTIST_JOIN = re.compile(r"\s*(,|&|\band\b|\bx\b|\+|/|;)\s*", re.IGNORECASE)


def _plain(text: str) -> str:
    """Lower case, no accents, words separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", bare).split())


def normalize_title(title: str) -> str:
    """A title without its version suffixes and featured artists, in plain form."""
    text = _FEAT.sub(" ", title)
    text = _DASH_SUFFIX.sub("", text)
    text = _BRACKETS.sub(" ", text)
    # A title that is all brackets keeps them; one of symbols only ("¥$") stays as it is.
    return _plain(text) or _plain(title) or " ".join(title.casefold().split())


def normalize_artist(artist: str) -> str:
    """An artist name without a "feat." part or a leading "the", in plain form."""
    plain = _plain(_FEAT.sub(" ", artist)) or _plain(artist) or " ".join(artist.casefold().split())
    return plain.removeprefix("the ") if plain.startswith("the ") and len(plain) > 4 else plain


@dataclass(frozen=True, slots=True)
class Check:
    """The input's title and artist against a track's: a verdict and a score (0-100)."""

    verdict: MatchCheck
    score: float
    title_score: float
    artist_score: float


def _fuzz() -> ModuleType:
    # Loaded on the first comparison: a run without title and artist columns never needs
    # it (a few MB of a run's peak memory).
    from rapidfuzz import fuzz

    return fuzz


def _artist_score(artist: str, names: Sequence[str]) -> float:
    """The input's artist against the track's artists: its best single name, or all of
    them together (an input "A & B" against the artists [A, B])."""
    fuzz = _fuzz()
    wanted = normalize_artist(artist)
    if not wanted or not names:
        return 0.0
    parts = [p for p in _ARTIST_JOIN.split(wanted) if p and not _ARTIST_JOIN.fullmatch(p)]
    candidates = [normalize_artist(n) for n in names]
    scores = [fuzz.token_sort_ratio(wanted, c) for c in candidates]
    scores.append(fuzz.token_sort_ratio(wanted, " ".join(candidates)))
    if len(parts) > 1:  # each name of the input among the track's artists
        scores.append(min(max(fuzz.ratio(p.strip(), c) for c in candidates) for p in parts))
    return float(max(scores))


def check(
    title: str, artist: str, track_name: str, artists: Iterable[str], threshold: float
) -> Check:
    """Compare the input's ``title``/``artist`` with a track's name and artists."""
    fuzz = _fuzz()
    names = list(artists)
    title_score = float(fuzz.token_sort_ratio(normalize_title(title), normalize_title(track_name)))
    artist_score = _artist_score(artist, names)
    title_ok, artist_ok = title_score >= threshold, artist_score >= threshold
    verdict = (
        MatchCheck.OK
        if title_ok and artist_ok
        else MatchCheck.ARTIST_DIFFERS
        if title_ok
        else MatchCheck.TITLE_DIFFERS
        if artist_ok
        else MatchCheck.BOTH_DIFFER
    )
    return Check(verdict, round(min(title_score, artist_score), 1), title_score, artist_score)


CONFLICT_DURATION_MS = 10_000  # releases of one recording are never this far apart
_SAME_TITLE = 90.0  # normalised titles scoring this alike are one title ("&" and "and")


def different_recordings(tracks: Iterable[tuple[str, int | None]]) -> bool:
    """Are the tracks that carry one ISRC, given as (name, duration_ms), more than one
    recording? Yes when two titles differ after :func:`normalize_title` (a remaster or a
    "feat." part does not count) or two known durations are more than 10 s apart."""
    seen = list(tracks)
    if len(seen) < 2:
        return False
    titles = {normalize_title(name) for name, _ in seen}
    durations = [d for _, d in seen if d is not None]
    if durations and max(durations) - min(durations) > CONFLICT_DURATION_MS:
        return True
    if len(titles) < 2:
        return False
    fuzz = _fuzz()
    first, *rest = titles
    return any(fuzz.token_sort_ratio(first, other) < _SAME_TITLE for other in rest)


class CrossCheck(StrEnum):
    """The names a row shows against the other stores' tracks, for one ISRC."""

    AGREE = "agree"
    TITLE_DIFFERS = "title_differs"
    ARTIST_DIFFERS = "artist_differs"
    DURATION_DIFFERS = "duration_differs"
    ONLY_SPOTIFY = "only_spotify"
    ONLY_OTHER = "only_others"  # not on Spotify; another store has it
    NEITHER = "neither"


CROSS_CHECK_DURATION_MS = 3_000  # one recording's lengths differ by rounding, not by 3 s

# (title, artists, duration in ms) of one track, as a catalogue names it
Named = tuple[str, Sequence[str], int | None]


def cross_check(spotify: Named | None, other: Named | None, threshold: float) -> CrossCheck:
    """Does the second catalogue name the track Spotify found? ``None``: that side has no
    track for the ISRC. Titles and artists are compared as :func:`check` compares the
    input's (normalised, so "- Remastered" or a featured artist does not count); the
    artist agrees when any of the other's names matches Spotify's artists. The album is
    not compared: a catalogue may answer with another release of the same recording."""
    if spotify is None or other is None:
        if spotify is not None:
            return CrossCheck.ONLY_SPOTIFY
        return CrossCheck.ONLY_OTHER if other is not None else CrossCheck.NEITHER
    fuzz = _fuzz()
    (title, artists, duration), (other_title, other_artists, other_duration) = spotify, other
    score = fuzz.token_sort_ratio(normalize_title(title), normalize_title(other_title))
    if score < threshold:
        return CrossCheck.TITLE_DIFFERS
    if not any(_artist_score(name, list(artists)) >= threshold for name in other_artists):
        return CrossCheck.ARTIST_DIFFERS
    if (
        duration is not None
        and other_duration is not None
        and (abs(duration - other_duration) > CROSS_CHECK_DURATION_MS)
    ):
        return CrossCheck.DURATION_DIFFERS
    return CrossCheck.AGREE


class Told(Protocol):
    """A store's answer as the checks read it (a :class:`~isrc_resolver.listing.Listing`)."""

    @property
    def found(self) -> bool: ...
    @property
    def title(self) -> str | None: ...
    @property
    def artists(self) -> tuple[str, ...]: ...
    @property
    def duration_ms(self) -> int | None: ...
    @property
    def others(self) -> tuple[Any, ...]: ...


@dataclass(frozen=True, slots=True)
class Answered:
    """A track's names as :class:`Told` (Spotify's, for the checks beside the stores')."""

    found: bool
    title: str | None = None
    artists: tuple[str, ...] = ()
    duration_ms: int | None = None
    others: tuple[Any, ...] = ()


def named(x: Told) -> Named:
    return (x.title or "", x.artists, x.duration_ms)


def first_found(told: Mapping[str, Told]) -> str | None:
    """The first store (in the order of ``told``: the preference) that has the track."""
    return next((name for name, x in told.items() if x.found), None)


def disagreeing(told: Mapping[str, Told], threshold: float) -> list[tuple[str, CrossCheck]]:
    """The stores whose track differs from the one whose names the row shows (the first
    that has it), and how, in the order of ``told``."""
    shown = first_found(told)
    if shown is None:
        return []
    base = named(told[shown])
    checks = ((name, cross_check(base, named(x), threshold)) for name, x in told.items()
              if x.found and name != shown)  # fmt: skip
    return [(name, check) for name, check in checks if check is not CrossCheck.AGREE]


def conflicting(told: Mapping[str, Told]) -> tuple[str, ...]:
    """The stores whose tracks under one ISRC are different recordings."""
    return tuple(
        name
        for name, x in told.items()
        if x.others and different_recordings((y.title or "", y.duration_ms) for y in (x, *x.others))
    )


@dataclass(frozen=True, slots=True)
class Hint:
    """What the input says of an ISRC besides the code: its title, artist and duration."""

    title: str = ""
    artist: str = ""
    duration_ms: int | None = None

    @property
    def searchable(self) -> bool:
        return bool(normalize_title(self.title) and normalize_artist(self.artist))


@dataclass(frozen=True, slots=True)
class Hints:
    """What the input says besides the ISRCs. ``read`` gives the title, artist and
    duration of some ISRCs, when the title/artist round needs them (only misses: a run over
    millions of rows keeps no titles); ``durations`` are read up front, and only when the
    input has a ``duration_ms`` column, to prefer the track of the right length."""

    read: Callable[[list[str]], Awaitable[Mapping[str, Hint]]] | None = None
    durations: Mapping[str, int] = field(default_factory=dict)
    titles: bool = False  # the input has title and artist columns
