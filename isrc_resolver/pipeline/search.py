"""Search strategies: how one ISRC becomes a :class:`~isrc_resolver.models.Result`.

The fetch stage runs them in rounds, so that the requests every ISRC needs go first and the
optional ones after (a short allowance goes where it adds the most):

1. :meth:`IsrcSearch.first`: ``q=isrc:ISRC`` in the first market (``market``, else
   Spotify's default, the US). One request per ISRC.
2. :meth:`IsrcSearch.fallback`: for a miss, ``q=isrc:ISRC`` in each fallback market it
   was not searched in yet (``fallback_markets``; ``isrc`` is the ISRC's own country),
   until found. One request per market tried.
3. :class:`TitleArtistSearch`: for a miss in every market, when the input gives a title and
   an artist, one ``q=track:"T" artist:"A"`` search. ``verified`` accepts only a track whose
   ``external_ids.isrc`` is the ISRC asked for; ``fuzzy`` also the best title/artist match
   scoring at least ``min_score``.

Errors become ``error`` results; a :class:`RateLimitStop` or :class:`BudgetSpent`
propagates (it ends the run).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import RequestError
from ..isrc import normalize_isrc
from ..matching import Hint, check, different_recordings, normalize_artist, normalize_title
from ..models import (
    TITLE_ARTIST,
    Candidate,
    FallbackSearch,
    InvalidAnswer,
    MatchMethod,
    MatchPreference,
    Result,
    Status,
    Track,
)
from ..settings import DEFAULT_MARKET, TITLE_PAGES, Settings
from ..spotify.client import SpotifyClient

__all__ = [
    "DURATION_TOLERANCE_MS",
    "IsrcSearch",
    "TitleArtistSearch",
    "choose_match",
    "choose_with_reason",
    "conflicting",
]

Progress = Callable[[Result], Awaitable[None]]  # a step of a search, to be kept

log = logging.getLogger("isrc_resolver")

DURATION_TOLERANCE_MS = 2_000  # a track this close to the input's duration is preferred


class IsrcSearch:
    """``GET /search?q=isrc:ISRC&type=track`` in a market, then :func:`choose_match`."""

    def __init__(self, client: SpotifyClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def search(self, isrc: str, duration_ms: int | None = None) -> Result:
        """The first round: the first market only."""
        return await self.in_market(isrc, self._settings.market, duration_ms)

    async def fallback(
        self,
        miss: Result,
        duration_ms: int | None = None,
        progress: Progress | None = None,
    ) -> Result:
        """A miss searched again in each fallback market it was not searched in yet,
        until found or a search fails; the result says every market tried. ``progress``
        hears the miss after each market that did not have it, before the next search
        is sent: each search is a step a kill cannot undo."""
        s = self._settings
        searched = miss.searched or (_label(s.market),)
        left = s.markets_left(miss.isrc, miss.searched)
        for n, market in enumerate(left):
            result = await self.in_market(miss.isrc, market, duration_ms)
            searched = (*searched, _label(market))
            result = replace(result, searched=searched)
            if result.status is not Status.NOT_FOUND:
                return result
            if progress is not None and n < len(left) - 1:
                await progress(replace(miss, searched=searched))
        return replace(miss, searched=searched)

    async def in_market(
        self, isrc: str, market: str | None, duration_ms: int | None = None
    ) -> Result:
        s = self._settings
        try:
            page = await self._client.search_isrc(isrc, market=market, limit=s.limit)
            items, count = _items(page)
            if not items:
                return Result(
                    isrc, Status.NOT_FOUND, match_count=max(count, 0), searched=(_label(market),)
                )
            chosen, reason = choose_with_reason(items, isrc, s.prefer, duration_ms)
            track = Track.from_api(chosen)
            candidates = _candidates(items)
            method = MatchMethod.ISRC if market == s.market else MatchMethod.ISRC_MARKET
            return Result(
                isrc,
                Status.FOUND,
                track=track,
                match_count=max(count, 1),
                method=method,
                market=market,
                searched=(_label(market),),
                candidates=candidates,
                reason=reason,
                conflict=conflicting(candidates, isrc),
            )
        except RequestError as exc:
            log.warning("%s: %s", isrc, exc)
            return Result(isrc, Status.ERROR, error=str(exc))
        except InvalidAnswer as exc:
            # Never cached (only found and not_found are), so a later run asks again.
            log.warning("%s: Spotify's answer was refused: %s", isrc, exc)
            return Result(isrc, Status.ERROR, error=f"invalid answer from Spotify: {exc}")

    def needs_fallback(self, result: Result) -> bool:
        """A miss with markets left to try."""
        left = self._settings.markets_left(result.isrc, result.searched)
        return result.status is Status.NOT_FOUND and bool(left)


def _label(market: str | None) -> str:
    """A market as ``searched`` records it (None, Spotify's default, is the US)."""
    return market or DEFAULT_MARKET


def _candidates(items: Sequence[Mapping[str, Any]]) -> tuple[Candidate, ...]:
    """Every item as a compact candidate, each validated as the chosen track is (one that
    does not validate is left out, and the answer kept)."""
    out = []
    for item in items:
        try:
            out.append(Candidate.of(Track.from_api(item)))
        except InvalidAnswer as exc:
            log.warning("a candidate in Spotify's answer was left out: %s", exc)
    return tuple(out)


def _items(page: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], int]:
    items = page.get("items") or []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise InvalidAnswer("items is not a list of tracks")
    total = page.get("total")
    count = total if isinstance(total, int) and not isinstance(total, bool) else len(items)
    return items, count


class TitleArtistSearch:
    """A ``q=track:"T" artist:"A"`` search for an ISRC missed in every market (up to
    :data:`TITLE_PAGES` pages while none of the tracks carries the ISRC)."""

    def __init__(self, client: SpotifyClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def search(self, miss: Result, hint: Hint) -> Result:
        s = self._settings
        searched = (*miss.searched, TITLE_ARTIST)
        query = (
            f'track:"{_quoted(_short(normalize_title(hint.title)))}" '
            f'artist:"{_quoted(_short(normalize_artist(hint.artist)))}"'
        )
        market = s.market or _home(miss)
        try:
            items = await self._pages(query, market, miss.isrc)
            chosen, method, reason = self._choose(items, miss.isrc, hint)
            if chosen is None:
                return replace(miss, searched=searched)
            candidates = _candidates(items)
            return Result(
                miss.isrc,
                Status.FOUND,
                track=Track.from_api(chosen),
                match_count=1
                if method is MatchMethod.TITLE_ARTIST_FUZZY
                else _proven(items, miss.isrc),
                method=method,
                market=market,
                searched=searched,
                candidates=candidates,
                reason=reason,
                conflict=conflicting(candidates, miss.isrc),
            )
        except RequestError as exc:
            # A failure is not a miss: the row says error, and the next run asks again.
            log.warning("%s: title/artist search: %s", miss.isrc, exc)
            return replace(miss, status=Status.ERROR, error=f"title/artist search: {exc}")
        except InvalidAnswer as exc:
            log.warning("%s: Spotify's title/artist answer was refused: %s", miss.isrc, exc)
            error = f"invalid title/artist answer from Spotify: {exc}"
            return replace(miss, status=Status.ERROR, error=error)

    async def _pages(self, query: str, market: str | None, isrc: str) -> list[Mapping[str, Any]]:
        """The answer's tracks, page after page (at most :data:`TITLE_PAGES`) while none
        carries the ISRC and Spotify has more: a title and artist shared by many releases
        (remasters, live versions, compilations) can put the right one past the first."""
        items: list[Mapping[str, Any]] = []
        for _ in range(TITLE_PAGES):
            page = await self._client.search_tracks(
                query, market=market, limit=self._settings.limit, label=isrc, offset=len(items)
            )
            more, total = _items(page)
            items += more
            if not more or len(items) >= total or any(_item_isrc(i) == isrc for i in items):
                break
        return items

    def _choose(
        self, items: Sequence[Mapping[str, Any]], isrc: str, hint: Hint
    ) -> tuple[Mapping[str, Any] | None, MatchMethod, str]:
        proven = [it for it in items if _item_isrc(it) == isrc]
        if proven:
            chosen, why = choose_with_reason(proven, isrc, self._settings.prefer, hint.duration_ms)
            return (
                chosen,
                MatchMethod.TITLE_ARTIST,
                f"title/artist search, proven by the ISRC; {why}",
            )
        if self._settings.fallback_search is not FallbackSearch.FUZZY:
            return None, MatchMethod.TITLE_ARTIST, ""
        scored = [(self._score(it, hint), -n, it) for n, it in enumerate(items)]
        best = max(scored, default=None, key=lambda x: (x[0], x[1]))
        if best is None or best[0] < self._settings.min_score:
            return None, MatchMethod.TITLE_ARTIST_FUZZY, ""
        why = f"title/artist similarity {best[0]:.0f} (no track carries the ISRC)"
        return best[2], MatchMethod.TITLE_ARTIST_FUZZY, why

    def _score(self, item: Mapping[str, Any], hint: Hint) -> float:
        artists = [a.get("name", "") for a in item.get("artists") or [] if isinstance(a, Mapping)]
        name = item.get("name")
        if not isinstance(name, str):
            return 0.0
        verdict = check(hint.title, hint.artist, name, map(str, artists), self._settings.min_score)
        return verdict.score


_QUERY_WORDS = 100  # characters of a title or an artist put in a query, at most


def _short(text: str) -> str:
    """``text`` cut to its first words within :data:`_QUERY_WORDS` characters: a title of
    kilobytes (a notes column taken for a title) would make the query itself a 400."""
    if len(text) <= _QUERY_WORDS:
        return text
    cut = text[: _QUERY_WORDS + 1].rsplit(" ", 1)[0]
    return cut if cut else text[:_QUERY_WORDS]


def _home(miss: Result) -> str | None:
    """The market a title/artist search looks in: the last one the ISRC was searched in
    (its own country's, with the default fallback), so a region-locked track shows."""
    markets = [m for m in miss.searched if m != TITLE_ARTIST]
    return markets[-1] if markets else None


def _quoted(text: str) -> str:
    return text.replace('"', " ")


def _proven(items: Sequence[Mapping[str, Any]], isrc: str) -> int:
    return sum(1 for it in items if _item_isrc(it) == isrc)


def choose_match(
    items: Sequence[Mapping[str, Any]],
    isrc: str,
    prefer: MatchPreference | str = MatchPreference.EXACT,
    duration_ms: int | None = None,
) -> Mapping[str, Any]:
    """Pick one of Spotify's tracks for ``isrc``, deterministically.

    ``exact``: the first item whose ``external_ids.isrc`` is the ISRC asked for, else the
    first item (Spotify's own order). ``original``: among the exact matches (or all items
    when none is exact), albums and singles before compilations, releases by "Various
    Artists" after the rest, then the earliest release date, then Spotify's order. With
    ``duration_ms`` (the input's), a track within 2 s of it goes before those that are not,
    under either preference.
    """
    return choose_with_reason(items, isrc, prefer, duration_ms)[0]


# What each ranking key says when it is the one that put the chosen track first.
_EXACT_KEYS = ("duration within 2 s of the input's", "Spotify's order")
_ORIGINAL_KEYS = (
    "duration within 2 s of the input's",
    "original over compilation",
    "artist's own release over Various Artists",
    "earliest release",
    "Spotify's order",
)


def choose_with_reason(
    items: Sequence[Mapping[str, Any]],
    isrc: str,
    prefer: MatchPreference | str = MatchPreference.EXACT,
    duration_ms: int | None = None,
) -> tuple[Mapping[str, Any], str]:
    """:func:`choose_match`'s choice, and why it won: the rule that set it before the
    runner-up ("exact ISRC" when some items carry another code)."""
    if not items:
        raise ValueError("no items to choose from")
    exact = [it for it in items if _item_isrc(it) == isrc]
    candidates = exact or list(items)
    names: tuple[str, ...]
    keyed: list[tuple[tuple[Any, ...], Mapping[str, Any]]]
    if MatchPreference(prefer) is MatchPreference.EXACT:
        names = _EXACT_KEYS
        keyed = [((_far(it, duration_ms), n), it) for n, it in enumerate(candidates)]
    else:
        names = _ORIGINAL_KEYS
        keyed = [
            (
                (
                    _far(it, duration_ms),
                    (it.get("album") or {}).get("album_type") == "compilation",
                    _various(it),
                    _date_key((it.get("album") or {}).get("release_date")),
                    n,
                ),
                it,
            )
            for n, it in enumerate(candidates)
        ]
    keyed.sort(key=lambda pair: pair[0])
    reasons = ["exact ISRC"] if exact and len(exact) < len(items) else []
    if len(keyed) > 1:
        first, second = keyed[0][0], keyed[1][0]
        deciding = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)
        reasons.append(names[deciding])
    elif not reasons:
        reasons.append("only track" if exact else "only track (its ISRC differs)")
    return keyed[0][1], "; ".join(reasons)


def conflicting(candidates: Sequence[Candidate], isrc: str) -> bool:
    """Are the candidates that carry ``isrc`` different recordings?"""
    carrying = (c for c in candidates if c.isrc and normalize_isrc(c.isrc) == isrc)
    return different_recordings((c.name, c.duration_ms) for c in carrying)


def _far(item: Mapping[str, Any], duration_ms: int | None) -> bool:
    """Is the track's length more than 2 s from the input's (False when either is unknown)?"""
    length = item.get("duration_ms")
    if duration_ms is None or not isinstance(length, int):
        return False
    return abs(length - duration_ms) > DURATION_TOLERANCE_MS


def _various(item: Mapping[str, Any]) -> bool:
    artists = (item.get("album") or {}).get("artists") or []
    names = [a.get("name", "") for a in artists if isinstance(a, Mapping)]
    return any(isinstance(n, str) and n.casefold() == "various artists" for n in names)


def _item_isrc(item: Mapping[str, Any]) -> str | None:
    value = (item.get("external_ids") or {}).get("isrc")
    return normalize_isrc(value) if isinstance(value, str) else None


def _date_key(value: object) -> str:
    # "2024", "2024-03" and "2024-03-19" compare correctly once padded; unknown sorts last.
    return str(value)[:10].ljust(10, "~") if value else "~"
