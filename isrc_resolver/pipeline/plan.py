"""The plan stage: normalise and de-duplicate, consult the cache, decide what to ask.

A run over more distinct ISRCs than it may hold (:data:`HELD_AT_MOST`, about 1 KB each
in memory with its answer) keeps them on disk instead: :func:`distinct` moves them to a
:class:`~isrc_resolver.store.runset.RunSet`; :func:`classify` decides what to ask
without reading any cached track and puts those ISRCs in the RunSet too (a big
catalogue's first nights ask nearly all of them); :func:`ask_streamed` asks them a batch
at a time and keeps there each outcome the cache does not hold; and
:func:`streamed_rows` gives the write pass the rows of a chunk's ISRCs from the RunSet
and the cache: memory stays flat however large the catalogue, cached or not.

Nothing here sends a request. The outcome is the list of ISRCs the fetch stage should ask,
in the order it should ask them; cached answers that are still fresh are emitted at once.
This is where a request budget and an order of priority belong.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import pickle
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..isrc import Normalized, count_isrcs, is_valid_isrc, normalize_value
from ..models import TITLE_ARTIST, FallbackSearch, MatchMethod, Result, Status
from ..overrides import Override
from ..schema import Row, row_of
from ..settings import TITLE_PAGES, Settings
from ..store.cache import AsyncCache, Cache, Location
from ..store.details import PINNED_TRACK as KIND
from ..store.listings import stores_left
from ..store.runset import RunSet

__all__ = [
    "ASK_BATCH",
    "HELD_AT_MOST",
    "Asks",
    "Forecast",
    "Held",
    "ask_streamed",
    "cached_or_missing",
    "classify",
    "distinct",
    "forecast",
    "streamed_rows",
    "write_pass_rows",
]

log = logging.getLogger("isrc_resolver")

_CACHE_SLICE = 5_000  # ISRCs looked up in the cache at a time


@dataclass
class Asks:
    """What the plan stage leaves to the fetch stage."""

    isrcs: list[str] = field(default_factory=list)  # in the order to ask them
    hits: int = 0  # fresh cached answers, emitted already
    stale: dict[str, Result] = field(default_factory=dict)  # kept if not refreshed
    partial: dict[str, Result] = field(default_factory=dict)  # misses to go on with


def unwanted(result: Result, settings: Settings) -> bool:
    """A cached answer this run's settings would not accept: one found by similarity alone
    (``fuzzy``) when the run asks for ``verified``: it is asked again, under this run's
    rules (and kept only if that gets no answer at all)."""
    return result.method is MatchMethod.TITLE_ARTIST_FUZZY and (
        settings.fallback_search is not FallbackSearch.FUZZY
    )


def incomplete(result: Result, settings: Settings, titles: bool = False) -> bool:
    """A cached miss this run would look further for: markets it was not searched in yet
    (a later run with more fallback markets asks only the new ones), or, when the input
    has titles and artists (``titles``), the title/artist search it has not had (it was
    cut off, it failed, or an earlier input had no titles)."""
    if result.status is not Status.NOT_FOUND:
        return False
    if settings.markets_left(result.isrc, result.searched):
        return True
    searchable = titles and settings.fallback_search is not FallbackSearch.OFF
    return searchable and TITLE_ARTIST not in result.searched


def triage(
    cached: dict[str, Result], stale: dict[str, Result], settings: Settings, titles: bool = False
) -> tuple[list[Result], list[Result]]:
    """Fresh cached answers, split: usable as they are, and misses to go on with (see
    :func:`incomplete`). Those this run would not accept go to ``stale``, to be asked
    again."""
    usable: list[Result] = []
    partial: list[Result] = []
    for result in cached.values():
        if unwanted(result, settings):
            stale[result.isrc] = result
        elif incomplete(result, settings, titles):
            partial.append(result)
        else:
            usable.append(result)
    return usable, partial


def _ages(settings: Settings) -> dict[str, Any]:
    """The ages a run and its plan read the cache with: ``refresh`` makes every cached
    answer past its age (asked again, kept until a new one comes)."""
    if settings.refresh:
        return {"max_age": -math.inf, "not_found_max_age": -math.inf}
    return {"max_age": settings.max_age, "not_found_max_age": settings.not_found_max_age}


def _refresh_order(result: Result) -> tuple[bool, float]:
    """Where a stale answer goes among the refreshes: misses first, then the oldest."""
    return result.status is Status.FOUND, result.resolved_at or 0.0


async def cached_or_missing(
    isrcs: Sequence[str],
    cache: AsyncCache | None,
    settings: Settings,
    emit: Callable[[Result], None],
    titles: bool = False,
) -> Asks:
    """Emit fresh cached results; return the ISRCs still to ask, in the order to ask them,
    the cache hits, and the answers past their age (kept if they cannot be refreshed).

    The order: misses a stopped run left half-searched first (the searches paid for are
    wasted otherwise), then ISRCs never answered, then misses past ``not_found_max_age``,
    then hits past ``max_age``, oldest first: a short allowance goes where it adds the
    most. ``refresh`` asks everything again, and keeps every cached answer as stale until
    its new one comes. The cache is read in slices, so a warm run over millions of ISRCs
    holds one slice of fresh results at a time. ``titles``: the input has titles and
    artists (a miss may still owe a title/artist search).
    """
    if cache is None or not isrcs:
        return Asks(list(isrcs))
    stale: dict[str, Result] = {}
    partial: dict[str, Result] = {}
    fresh: set[str] = set()
    hits = 0
    # In the cache's own order: its pages are read one after the other, not at random
    # (measured: 200,000 answers of a 120 MB cache read in a third of the time).
    ordered = sorted(isrcs)
    for start in range(0, len(ordered), _CACHE_SLICE):
        part = ordered[start : start + _CACHE_SLICE]
        cached = await cache.call(
            cache.cache.lookup,
            part,
            settings.variant,
            stale=stale,
            **_ages(settings),
        )
        usable, resumed = triage(cached, stale, settings, titles)
        for result in usable:
            emit(result)
        hits += len(usable)
        partial.update((r.isrc, r) for r in resumed)
        fresh.update(cached)
    del ordered
    new = [isrc for isrc in isrcs if isrc not in fresh and isrc not in stale]
    if partial or stale:  # back in the input's order, which breaks the ties below
        partial = {isrc: partial[isrc] for isrc in isrcs if isrc in partial}
        stale = {isrc: stale[isrc] for isrc in isrcs if isrc in stale}
    refresh = sorted(stale.values(), key=_refresh_order)
    log.info(
        "cache: %d fresh, %d stale, %d never asked, %d misses with markets left",
        hits,
        len(stale),
        len(new),
        len(partial),
    )
    order = list(partial) + new + [r.isrc for r in refresh]
    return Asks(order, hits, stale, partial)


class Stoppable(Protocol):
    """The run's control, as far as a streamed run looks at it."""

    @property
    def halted(self) -> bool: ...

    def unfinished(self, isrc: str) -> Result: ...


# The ranks of a streamed run's asks, in the order they are asked.
_PARTIAL, _NEW, _STALE = 0, 1, 2
_RANKS = (_PARTIAL, _NEW, _STALE)


async def classify(seen: RunSet, cache: AsyncCache, settings: Settings, titles: bool) -> int:
    """What :func:`cached_or_missing` decides, for a run's distinct ISRCs kept in ``seen``
    (read back a batch at a time), without reading any cached track: the ISRCs to ask go
    into ``seen`` in the same order (misses to go on with, then the new, then the stale by
    :func:`_refresh_order`), so that memory does not grow with them. Returns the count of
    fresh answers (left in the cache, read again when the rows are written)."""
    hits = 0
    for part in seen.batches(_CACHE_SLICE):
        stale: dict[str, Result] = {}
        cached = await cache.call(
            cache.cache.lookup, part, settings.variant, stale=stale, light=True,
            **_ages(settings),
        )  # fmt: skip
        usable, resumed = triage(cached, stale, settings, titles)
        hits += len(usable)
        seen.add_asks(
            [
                *((_PARTIAL, 0.0, 0.0, r.isrc) for r in resumed),
                *((_NEW, 0.0, 0.0, i) for i in part if i not in cached and i not in stale),
                *(
                    (_STALE, float(o[0]), o[1], r.isrc)
                    for r in stale.values()
                    for o in [_refresh_order(r)]
                ),
            ]
        )
    return hits


@dataclass
class Forecast:
    """What a run over one input would do, worked out without sending anything
    (``isrc-resolve plan``). Every distinct valid ISRC is in exactly one of ``fresh``,
    ``stale``, ``new`` and ``partial`` (misses a run goes on with: markets, or the
    title/artist search, left). ``needed`` is what a full run sends when every first
    search answers (one request for each but ``fresh``); ``needed_max`` adds every
    fallback search it may send. ``requests`` and ``requests_max`` are the same for the
    run now, with the allowance it has: nothing during a cooldown, at most what
    ``daily_quota`` and ``max_requests`` leave."""

    rows: int = 0
    unique: int = 0
    invalid: int = 0
    duplicates: int = 0
    fresh: int = 0
    stale: int = 0
    new: int = 0
    partial: int = 0
    needed: int = 0
    needed_max: int = 0
    requests: int = 0
    requests_max: int = 0
    nights: int | None = 0  # None: never, with these caps (max_requests=0)
    daily_quota: int | None = None
    used_24h: int | None = None  # the account's requests in the last 24 hours (ledger)
    room_tonight: int | None = None  # what a run now may send (quota, --max-requests)
    cooldown_until: float | None = None  # a quota stop's: nothing is sent before it
    overrides: int = 0  # ISRCs pinned by the overrides file: no search
    override_lookups: int = 0  # pinned tracks not in the cache: one GET /tracks/{id} each
    # Each store beside Spotify: its fresh answers in the cache, the ISRCs and requests left.
    stores: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def forecast(
    chunks: Iterable[Sequence[object]],
    cache: Cache | None,
    settings: Settings,
    *,
    ledger: bool = True,
    titles: bool = False,
    overrides: Mapping[str, Override] | None = None,
) -> Forecast:
    """Count an input's rows and ISRCs, look them up in ``cache`` as a run would, and
    work out the requests and nights it needs. Reads only; sends nothing. ``ledger``:
    read the account's last 24 hours and cooldown (False when the account is not known).
    ``titles``: the input has title and artist columns (a miss may cost a title search).
    ``overrides``: pinned ISRCs cost no search, only a look-up of a pinned track once."""
    out = Forecast(daily_quota=settings.daily_quota)
    out.rows, out.invalid, unique = count_isrcs(chunks)
    out.unique = len(unique)
    out.duplicates = out.rows - out.invalid - out.unique
    if settings.second:  # every ISRC, pinned or not; their titles serve Spotify's misses
        out.stores = stores_left(unique, None if settings.refresh else cache, settings)
        titles = True
    if "spotify" not in settings.providers:  # the other stores alone: nothing for Spotify
        return out
    if overrides:
        pinned = [isrc for isrc in unique if isrc in overrides]
        unique = [isrc for isrc in unique if isrc not in overrides]
        out.overrides = len(pinned)
        ids = list({t for isrc in pinned if (t := overrides[isrc].track_id) is not None})
        known = (
            cache.lookup_details(KIND, ids, max_age=settings.max_age)
            if cache is not None and ids and not settings.refresh
            else {}
        )
        out.override_lookups = len(ids) - len(known)
    title_search = TITLE_PAGES if titles and settings.fallback_search != "off" else 0
    extra = 0  # fallback searches a run may add, at most
    for start in range(0, len(unique), _CACHE_SLICE):
        part = unique[start : start + _CACHE_SLICE]
        stale: dict[str, Result] = {}
        cached = {}
        if cache is not None:
            cached = cache.lookup(part, settings.variant, stale=stale, **_ages(settings))
        usable, resumed = triage(cached, stale, settings, titles)
        out.fresh += len(usable)
        out.partial += len(resumed)
        for result in resumed:  # one search to go on with, then what is left at most
            left = settings.markets_left(result.isrc, result.searched)
            owed = title_search if TITLE_ARTIST not in result.searched else 0
            extra += len(left) + owed - 1
        out.stale += len(stale)
        asked = [isrc for isrc in part if isrc not in cached or isrc in stale]
        out.new += sum(isrc not in stale for isrc in asked)
        extra += sum(len(settings.markets_for(isrc)) - 1 + title_search for isrc in asked)
    out.needed = out.stale + out.new + out.partial + out.override_lookups
    out.needed_max = out.needed + extra
    _allowance(out, cache if ledger else None, settings)
    return out


def _allowance(out: Forecast, cache: Cache | None, settings: Settings) -> None:
    """What the run now may send, from the ledger and the cooldown, and the nights."""
    if cache is not None and settings.daily_quota is not None:
        out.used_24h = cache.allowance(settings.account_key).requests
    if cache is not None and not settings.ignore_cooldown:
        out.cooldown_until = cache.cooldown_until(settings.account_key)
    out.room_tonight, out.nights = _nights(out.needed, settings, out.used_24h or 0)
    room = out.room_tonight
    if out.cooldown_until is not None:
        room = out.room_tonight = 0
    out.requests = out.needed if room is None else min(out.needed, room)
    out.requests_max = out.needed_max if room is None else min(out.needed_max, room)


def _nights(requests: int, settings: Settings, used: int) -> tuple[int | None, int | None]:
    """What a run now may send, and how many nightly runs ``requests`` take (a run a
    night, each allowed ``daily_quota`` and ``max_requests``)."""
    caps = [c for c in (settings.daily_quota, settings.max_requests) if c is not None]
    if not caps:
        return None, 1 if requests else 0
    per_night = min(caps)
    tonight = per_night
    if settings.daily_quota is not None:
        tonight = min(tonight, max(settings.daily_quota - used, 0))
    if requests == 0:
        return tonight, 0
    if per_night == 0:
        return tonight, None
    first = 1 if tonight > 0 else 0
    rest = max(requests - tonight, 0)
    return tonight, first + -(-rest // per_night)


# -- a run over more distinct ISRCs than it may hold ------------------------------------

# Distinct ISRCs a run holds in memory with their answers (about 1 KB each); past this, it
# keeps them on disk and reads each cached answer again when its rows are written.
HELD_AT_MOST = 250_000


def distinct(
    chunks: Iterable[tuple[int, Sequence[str], bool]], may_stream: bool
) -> tuple[int, list[str], RunSet | None]:
    """The rows ``chunks`` hold, and their distinct valid ISRCs in order: a list, or,
    when they are more than :data:`HELD_AT_MOST` and the run may stream, a RunSet (the
    caller closes it). Each chunk is its row count, its distinct cells in the order they
    first appear, and whether they are all canonical ISRCs already (as
    :meth:`~isrc_resolver.tables.source.InputSource.isrc_spellings` gives them)."""
    rows, held, seen = 0, Normalized(), None
    for count, values, canonical in chunks:
        rows += count
        if seen is None:
            if canonical:  # an ISRC already in the table keeps its place
                held.unique.update(dict.fromkeys(values))
            else:
                held.add(values, keep_values=False)
            if may_stream and len(held.unique) > HELD_AT_MOST:
                seen = RunSet()
                seen.add(held.unique)
                held = Normalized()
            continue
        spelt = set(values) if canonical else set(map(normalize_value, values))
        fresh = {i for i in spelt if i not in held.unique}
        seen.add(i for i in fresh if is_valid_isrc(i))
        # The ISRCs seen lately, so that most are not sent to the database again.
        if len(held.unique) > HELD_AT_MOST:
            held = Normalized()
        held.unique.update(dict.fromkeys(fresh))
    return rows, list(held.unique) if seen is None else [], seen


# -- a streamed run: its ISRCs, asks and outcomes on disk ---------------------------------

# ISRCs a streamed run asks at a time: each batch goes through every round (first
# searches, fallback markets, titles) before the next begins; its rows are let go after.
ASK_BATCH = 50_000


async def ask_streamed(
    seen: RunSet,
    cache: AsyncCache,
    settings: Settings,
    titles: bool,
    resolve: Callable[[list[str]], Awaitable[dict[str, Row]]],
    control: Stoppable,
) -> tuple[int, Callable[[str], Row] | None]:
    """Ask what the plan leaves to ask of the ISRCs in ``seen``, ``ASK_BATCH`` at a time
    (``resolve``: a batch's rows), misses to go on with first, then the new ISRCs, then
    the stale. A fresh found answer is in the cache; every other outcome (a miss, an
    error, a deferral, a stale answer served) is kept in ``seen`` for the write pass.

    Once the run has stopped (``control`` says how an unasked ISRC ends then: deferred
    by the budget, held by a quota stop...), the new ISRCs left are not put through the
    stages one by one, which would only say that of each: their rows are made as they are
    written. (The stale ones still are: their known answers are served.) Returns the fresh
    answers left in the cache, and the row of a new ISRC the run did not reach, if any."""
    hits = await classify(seen, cache, settings, titles)
    unreached: Callable[[str], Row] | None = None
    for rank in _RANKS:
        for batch in seen.asks(ASK_BATCH, rank):
            if rank == _NEW and control.halted:
                unreached = functools.partial(_unreached_row, control.unfinished)
                break
            rows = await resolve(batch)
            seen.keep(
                (isrc, pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL))
                for isrc, row in rows.items()
                if row.stale or row.status is not Status.FOUND
            )
    return hits, unreached


def _unreached_row(unfinished: Callable[[str], Result], isrc: str) -> Row:
    return row_of(unfinished(isrc))


@contextlib.contextmanager
def streamed_rows(
    seen: RunSet,
    location: Location,
    settings: Settings,
    unreached: Callable[[str], Row] | None = None,
) -> Iterator[Callable[[list[str]], dict[str, Row]]]:
    """For the write pass: the rows of some ISRCs, those this run kept in ``seen`` first,
    the rest from the cache at ``location`` (on a connection of the calling thread's
    own). An answer that turned stale since the run began is still the answer this run
    has."""
    with Cache(location) as cache:

        def fill(isrcs: list[str]) -> dict[str, Row]:
            # Our own pickles, in a private temporary database of this process.
            out: dict[str, Row] = {
                isrc: pickle.loads(data) for isrc, data in seen.kept(isrcs).items()
            }
            rest = [isrc for isrc in isrcs if isrc not in out]
            stale: dict[str, Result] = {}
            fresh = cache.lookup(
                rest, settings.variant, stale=stale, max_age=settings.max_age,
                not_found_max_age=settings.not_found_max_age,
            )  # fmt: skip
            out.update((isrc, row_of(r)) for isrc, r in (*fresh.items(), *stale.items()))
            if unreached is not None:  # neither kept nor cached: new, and not reached
                out.update((isrc, unreached(isrc)) for isrc in rest if isrc not in out)
            return out

        yield fill


class Held:
    """A streamed run's :class:`RunSet`, open from the plan to the end of the write pass
    (``runset`` None: the run holds its rows in memory)."""

    runset: RunSet | None = None
    unreached: Callable[[str], Row] | None = None  # a new ISRC's row, the run stopped first

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runset is not None:
            self.runset.close()


def write_pass_rows(
    held: Held, cache: AsyncCache | None, settings: Settings
) -> contextlib.AbstractContextManager[Callable[[list[str]], dict[str, Row]] | None]:
    """The write pass's ``fill`` for a streamed run (:func:`streamed_rows`); None for a
    run that holds its rows."""
    if held.runset is None or cache is None:
        return contextlib.nullcontext()
    return streamed_rows(held.runset, cache.cache.location, settings, held.unreached)
