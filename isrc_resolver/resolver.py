"""The front: :class:`Resolver` wires the stages and owns the resources of a run.

    plan (pipeline/plan)  ->  fetch (pipeline/fetch)  ->  enrich (pipeline/enrich)
    ->  write (tables/write)

It works on plain values (ISRC strings in, :class:`~isrc_resolver.models.Result` out); the
table fronts (:mod:`isrc_resolver.fronts`) read a file or a DataFrame, hand its distinct
ISRCs to the Resolver, and write every row back with its results and its match check.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, Unpack, cast

from . import fronts
from .changes import Change
from .fronts import FileOptions
from .http.budget import Budget
from .http.stats import ClientStats
from .http.transport import Transport
from .isrc import normalize_values
from .listing import Listing
from .matching import Hint, Hints
from .models import AlbumDetails, AudioFeatures, Enrichment, Result, Status
from .overrides import Override, overrides_from_mapping
from .pipeline.enrich import Enricher
from .pipeline.fetch import Fetcher
from .pipeline.ledger import budget_for, spent_by_other_caches
from .pipeline.order import in_order
from .pipeline.pinned import Pinned
from .pipeline.plan import cached_or_missing
from .pipeline.search import IsrcSearch, TitleArtistSearch
from .pipeline.second import Listings, SecondCatalogues, hints_from
from .pipeline.workers import RunControl, Workers
from .progress import Progress
from .report import RunReport
from .schema import Row, row_of
from .settings import Options, Settings
from .spotify.auth import TokenStore
from .spotify.client import SpotifyClient
from .store.cache import AsyncCache, Cache

if TYPE_CHECKING:
    from .tables.frames import DataFrame

__all__ = ["Resolver", "resolve_file"]

T = TypeVar("T")
# A file of overrides, {isrc: track id or None}, or overrides read already.
OverridesGiven = str | os.PathLike[str] | Mapping[str, str | None] | Mapping[str, Override] | None

log = logging.getLogger("isrc_resolver")


class Resolver:
    """Resolve ISRCs to Spotify tracks. Use as ``async with Resolver(...) as r``.

    Credentials default to ``SPOTIFY_CLIENT_ID`` / ``SPOTIFY_CLIENT_SECRET`` (or spotipy's
    ``SPOTIPY_*``) in the environment, endpoints to ``SPOTIFY_API_URL`` /
    ``SPOTIFY_TOKEN_URL``; ``options`` are those of :class:`~isrc_resolver.settings.Options`.
    Pass ``settings`` instead to use a ready :class:`~isrc_resolver.settings.Settings`.
    ``overrides``: answers a person pinned, a file (``isrc``, ``spotify_track_id``) or
    ``{isrc: track id or None}``, checked here, before any request.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        settings: Settings | None = None,
        overrides: OverridesGiven = None,
        transport: Transport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        **options: Unpack[Options],
    ) -> None:
        if settings is None:
            settings = Settings.build(client_id, client_secret, **options)
        elif client_id or client_secret or options:
            raise TypeError("pass either settings or credentials and options, not both")
        given = options.get("cache")
        self._given_cache = given if isinstance(given, Cache) else None
        self.settings = settings
        self.overrides, self._overrides_file = _read_overrides(overrides), _file_of(overrides)
        self._transport = transport
        self.sleep, self.clock = sleep, clock  # every wait and every timestamp of a run
        self._cache: AsyncCache | None = None
        self._client: SpotifyClient | None = None
        self._stages: tuple[Fetcher, Enricher, SpotifyClient, Pinned] | None = None
        self.changes: list[Change] = []  # what changed since the cache's answers (every store)
        self._second = SecondCatalogues(self.changes)
        self.control = RunControl(settings.account_key)
        self.cache_hits = self.pinned = 0

    def __repr__(self) -> str:
        return f"Resolver(api_url={self.settings.api_url!r}, cache={self.settings.cache!r})"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Resolver:
        if self._client is not None:
            raise RuntimeError("this Resolver is already open")
        s = self.settings
        if self._given_cache is not None:
            self._cache = AsyncCache(self._given_cache, owned=False)
        elif s.cache is not None:
            self._cache = await AsyncCache.open(s.cache, clock=self.clock)
        budget = await _budget(s, self._cache, self.clock)
        client = _spotify(self, budget)
        self._client = await client.__aenter__()
        workers = Workers(self.control, s.concurrency, self._cache)
        self._stages = _wire(self, client, workers, budget)
        stores = (s, self._transport, workers, self._cache, self.sleep, self.clock, budget.cap)
        await self._second.open(*stores)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._stages is not None:
            await self.control.shielded(self._stages[0].settle_budget())
        self._stages = None
        await self._second.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._cache is not None:
            await self._cache.aclose()
            self._cache = None

    @property
    def client(self) -> SpotifyClient:
        return self._open()[2]

    @property
    def async_cache(self) -> AsyncCache | None:  # None: no cache, or not open
        return self._cache

    @property
    def second_counts(self) -> dict[str, dict[str, int]]:  # the stores' (RunReport.second)
        return self._second.counts

    @property
    def stats(self) -> ClientStats:
        """What the client sent and heard so far (requests, statuses, 429s, retries)."""
        return self.client.stats

    def _open(self) -> tuple[Fetcher, Enricher, SpotifyClient, Pinned]:
        if self._stages is None:
            raise RuntimeError(
                "the Resolver is not open; use `async with Resolver(...) as r:` "
                "(or resolve_dataframe_sync outside async code)"
            )
        return self._stages

    def interrupt(self, reason: str = "SIGINT") -> None:
        """Stop sending; in-flight results get a few seconds, the rest are ``pending``
        (safe in a handler installed with ``loop.add_signal_handler``)."""
        self.control.interrupt(reason)

    # -- single values and streams ---------------------------------------------------

    async def resolve(self, isrc: str) -> Result:
        """Resolve one ISRC (in any common spelling)."""
        (result,) = (await self.resolve_values([isrc])).values()
        return result

    async def resolve_many(self, isrcs: Iterable[object]) -> AsyncGenerator[Result, None]:
        """Yield one :class:`Result` per input value, in input order.

        Duplicates (after normalising) are requested once; invalid values (anything that
        is not an ISRC, ``None`` and numbers included) are never sent.
        """
        self._open()
        async with contextlib.aclosing(
            in_order(normalize_values(isrcs), functools.partial(_asking_all, self))
        ) as results:
            async for result in results:
                yield result

    async def resolve_values(self, values: Iterable[object]) -> dict[str, Result]:
        """Results keyed by normalised value, for every distinct value (invalid included)."""
        return await self._collect(values, lambda result, _: result, Progress(enabled=False))

    async def _collect(
        self,
        values: Iterable[object] | list[str],
        make: Callable[[Result, Mapping[str, Listing]], T],
        progress: Progress,
        *,
        distinct: bool = False,
        hints: Hints | None = None,
    ) -> dict[str, T]:
        """``make(result, listings)`` for every distinct value, as each result arrives
        (``listings``: the other stores' answers, by store, when the run asks any).
        ``distinct``: ``values`` is already a list of distinct, valid, normalised ISRCs."""
        self._open()
        out: dict[str, T] = {}
        if distinct:
            unique = cast(list[str], values)
        else:
            normalized = normalize_values(values)
            invalid = (v for v in normalized.values if v not in normalized.unique)
            out = {v: make(Result.invalid(v), {}) for v in invalid}
            unique = list(normalized.unique)
        listings = await self._second.lookup(unique)
        progress.phase("resolving", len(unique), "isrc")

        def keep(result: Result) -> None:
            out[result.isrc] = make(result, listings.get(result.isrc, {}))
            progress.advance()

        await self._resolve_unique(unique, keep, _with_listings(hints, listings))
        return out

    async def _resolve_unique(
        self, isrcs: list[str], emit: Callable[[Result], None], hints: Hints | None = None
    ) -> None:
        """Emit exactly one Result for each of ``isrcs`` (valid, normalised, distinct)."""
        fetcher = self._open()[0]
        if "spotify" not in self.settings.providers:  # the other stores alone: no request
            return _not_asked(isrcs, emit)
        # Where the cache's commits stand before it is read: the answers other processes
        # commit after it are theirs, taken rather than asked again.
        since = await self._cache.call(self._cache.cache.mark) if self._cache else 0
        asked = len(isrcs)
        isrcs = await self._open()[3].take(isrcs, emit)  # the pinned ones: no search
        self.pinned += asked - len(isrcs)
        titles = hints is not None and hints.titles
        asks = await cached_or_missing(isrcs, self._cache, self.settings, emit, titles)
        self.cache_hits += asks.hits
        if not asks.isrcs:
            return
        ignoring = self.settings.ignore_cooldown
        if not ignoring:
            await self.control.load_cooldown(self._cache, self.clock())
        answered = self.stats.statuses[200]
        await fetcher.fetch(
            asks.isrcs, emit, asks.stale, since=since, partial=asks.partial, hints=hints
        )
        if ignoring and self.stats.statuses[200] > answered:  # Spotify answered: it is over
            await self.control.lift_cooldown(self._cache)

    # -- enrichment ------------------------------------------------------------------

    async def albums(self, ids: Iterable[str]) -> dict[str, AlbumDetails]:
        """Album details by id; missing for unknown ids, or all when the endpoint is closed."""
        return await self._open()[1].albums(ids)

    async def audio_features(self, track_ids: Iterable[str]) -> dict[str, AudioFeatures]:
        """Audio features by track id; empty when Spotify closed the endpoint to this app."""
        return await self._open()[1].audio_features(track_ids)

    # -- tables and files ------------------------------------------------------------

    async def resolve_rows(
        self,
        values: Iterable[object] | list[str],
        *,
        kinds: Sequence[str] = (),
        progress: Progress | None = None,
        distinct: bool = False,
        hints: Hints | None = None,
    ) -> dict[str, Row]:
        """A compact output row (:class:`~isrc_resolver.schema.Row`) for every distinct
        value, enriched with ``kinds``: what the table fronts write (see
        :mod:`isrc_resolver.tables`). ``distinct``: ``values`` are distinct, valid,
        normalised ISRCs already. ``hints`` gives the input's title and artist of misses."""
        progress = progress or Progress(enabled=False)
        # Each result becomes a compact row as it arrives: a run over millions of ISRCs
        # does not hold their result objects. Then the rows are enriched.
        make = functools.partial(row_of, kinds=tuple(kinds))
        rows = await self._collect(values, make, progress, distinct=distinct, hints=hints)
        await self._open()[1].enrich(rows, kinds, progress)
        return rows

    async def resolve_dataframe(
        self,
        df: DataFrame,
        column: str | None = None,
        *,
        with_: Iterable[Enrichment | str] | None = None,
        title_column: str | None = None,
        artist_column: str | None = None,
    ) -> DataFrame:
        """``df`` with the output columns added (see README, "Output columns"); the
        columns are found as the CLI finds them. ``with_`` (default: the Resolver's own)
        adds enrichment columns: ``"album"``, ``"audio-features"``."""
        return await fronts.resolve_dataframe(
            self, df, column, with_=with_, title_column=title_column, artist_column=artist_column
        )

    async def resolve_file(
        self,
        input: str | os.PathLike[str],
        output: str | os.PathLike[str],
        **options: Unpack[FileOptions],
    ) -> RunReport:
        """Read ``input`` (CSV, TSV, Parquet or ``-``), resolve, write ``output`` atomically;
        ``options`` are :class:`~isrc_resolver.fronts.FileOptions`."""
        options["reads"] = {"overrides=": self._overrides_file, **options.get("reads", {})}
        return await fronts.resolve_file(self, input, output, **options)


async def resolve_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    column: str | None = None,
    output_format: str | None = None,
    **options: Unpack[Options],
) -> RunReport:
    """Open a :class:`Resolver` with ``options``, resolve one file, close it."""
    async with Resolver(**options) as resolver:
        return await resolver.resolve_file(
            input, output, column=column, output_format=output_format
        )


def _spotify(r: Resolver, budget: Budget) -> SpotifyClient:
    """The Spotify client of an opening Resolver ``r``; its token kept beside a cache file
    (a database cache keeps none: each process asks for its own)."""
    s, cache = r.settings, r.async_cache
    where = cache.cache.location if cache is not None else None
    cache_file = where if isinstance(where, Path) else None
    return SpotifyClient(
        s,
        token_store=TokenStore.beside(cache_file, s.client_id, s.client_secret, r.clock),
        transport=r._transport,
        budget=budget,
        sleep=r.sleep,
        wall_clock=r.clock,
    )


def _wire(
    r: Resolver, client: SpotifyClient, workers: Workers, budget: Budget
) -> tuple[Fetcher, Enricher, SpotifyClient, Pinned]:
    """The stages of an opening Resolver ``r``, around its client and workers."""
    s, cache, clock = r.settings, r.async_cache, r.clock
    titles = TitleArtistSearch(client, s) if s.fallback_search != "off" else None
    search = IsrcSearch(client, s)
    fetcher = Fetcher(workers, search, cache, s, clock, budget, r.sleep, titles)
    fetcher.changes = r.changes
    pinned = Pinned(client, workers, cache, s, r.overrides, clock)
    return fetcher, Enricher(client, workers, cache, s), client, pinned


async def _budget(s: Settings, cache: AsyncCache | None, clock: Callable[[], float]) -> Budget:
    """The run's budget: ``max_requests`` and the daily quota, less what the account's
    other caches spent (their ledgers)."""
    elsewhere = 0
    if cache is not None:
        path, now = cache.cache.location, clock()
        elsewhere = await asyncio.to_thread(spent_by_other_caches, s, path, now)
    return budget_for(s, cache, clock, elsewhere)


async def _asking_all(r: Resolver, isrcs: list[str], emit: Callable[[Result], None]) -> None:
    """``r._resolve_unique``, the second catalogues asked first (their names serve
    Spotify's title/artist search), as every other way in does."""
    listings = await r._second.lookup(isrcs)
    await r._resolve_unique(isrcs, emit, _with_listings(None, listings))


def _not_asked(isrcs: list[str], emit: Callable[[Result], None]) -> None:
    for isrc in isrcs:
        emit(Result(isrc, Status.NOT_ASKED, error="Spotify is not in providers"))


def _with_listings(hints: Hints | None, listings: Listings) -> Hints | None:
    """``hints`` with a second catalogue's title and artist where the input has none: the
    title/artist search of Spotify's misses needs them (and proves its track by the ISRC)."""
    if not listings:
        return hints
    second = hints_from(listings)
    given = hints.read if hints is not None and hints.titles else None

    async def read(wanted: list[str]) -> Mapping[str, Hint]:
        out = dict(await given(wanted)) if given is not None else {}
        out.update(second([i for i in wanted if i not in out or not out[i].searchable]))
        return out

    durations = hints.durations if hints is not None else {}
    return Hints(read, durations, titles=True)


def _file_of(given: OverridesGiven) -> str | os.PathLike[str] | None:
    """The overrides' file, if they came in one: no file a run writes may be it."""
    return given if isinstance(given, str | os.PathLike) else None


def _read_overrides(given: OverridesGiven) -> dict[str, Override]:
    if given is None:
        return {}
    if isinstance(given, Mapping):
        if all(isinstance(v, Override) for v in given.values()):
            return cast(dict[str, Override], dict(given))  # read already (the CLI)
        return overrides_from_mapping(cast(Mapping[str, str | None], given))
    from . import tables

    return tables.read_overrides(given)
