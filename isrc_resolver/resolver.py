"""The front: :class:`Resolver` wires the stages and owns the resources of a run.

    plan (pipeline/plan)  ->  fetch (pipeline/fetch)  ->  enrich (pipeline/enrich)
    ->  write (tables/write)

It works on plain values (ISRC strings in, :class:`~isrc_resolver.models.Result` out); the
table fronts at the end of this module read a file or a DataFrame through
:mod:`isrc_resolver.tables` (imported only when one is asked for), hand its distinct ISRCs
to the Resolver, and write every row back with its results and its match check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, TypedDict, TypeVar, Unpack, cast

from .isrc import distinct_isrcs, normalize_value, normalize_values
from .matching import Hint, Hints
from .models import AlbumDetails, AudioFeatures, Enrichment, Result, Status
from .pipeline.enrich import Enricher
from .pipeline.fetch import Fetcher
from .pipeline.ledger import budget_for, spent_by_other_caches
from .pipeline.order import in_order
from .pipeline.plan import cached_or_missing
from .pipeline.search import IsrcSearch, TitleArtistSearch
from .pipeline.workers import RunControl, Workers
from .progress import Progress
from .report import RunReport
from .schema import Row, row_of
from .settings import Options, Settings
from .spotify.auth import TokenStore
from .spotify.client import SpotifyClient
from .spotify.stats import ClientStats
from .spotify.transport import Transport
from .store.cache import AsyncCache, Cache, not_the_cache

if TYPE_CHECKING:
    from .tables.frames import DataFrame
    from .tables.read import InputSource

__all__ = ["Resolver", "resolve_file"]

T = TypeVar("T")

log = logging.getLogger("isrc_resolver")


class Resolver:
    """Resolve ISRCs to Spotify tracks. Use as ``async with Resolver(...) as r``.

    Credentials default to ``SPOTIFY_CLIENT_ID`` / ``SPOTIFY_CLIENT_SECRET`` (or spotipy's
    ``SPOTIPY_*``) in the environment, endpoints to ``SPOTIFY_API_URL`` /
    ``SPOTIFY_TOKEN_URL``; ``options`` are those of :class:`~isrc_resolver.settings.Options`.
    Pass ``settings`` instead to use a ready :class:`~isrc_resolver.settings.Settings`.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        settings: Settings | None = None,
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
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._cache: AsyncCache | None = None
        self._client: SpotifyClient | None = None
        self._stages: tuple[Fetcher, Enricher, SpotifyClient] | None = None
        self.control = RunControl(settings.account_key)
        self.cache_hits = 0

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
            self._cache = await AsyncCache.open(s.cache, clock=self._clock)
        cache_file = self._cache.cache.path if self._cache else None
        elsewhere = 0
        if self._cache is not None:
            path, now = self._cache.cache.path, self._clock()
            elsewhere = await asyncio.to_thread(spent_by_other_caches, s, path, now)
        budget = budget_for(s, self._cache, self._clock, elsewhere)
        client = SpotifyClient(
            s,
            token_store=TokenStore.beside(cache_file, s.client_id, s.client_secret, self._clock),
            transport=self._transport,
            budget=budget,
            sleep=self._sleep,
            wall_clock=self._clock,
        )
        self._client = await client.__aenter__()
        workers = Workers(self.control, s.concurrency, self._cache)
        titles = TitleArtistSearch(client, s) if s.fallback_search != "off" else None
        search = IsrcSearch(client, s)
        fetcher = Fetcher(workers, search, self._cache, s, self._clock, budget, self._sleep, titles)
        self._stages = (fetcher, Enricher(client, workers, self._cache, s), client)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._stages is not None:
            await self.control.shielded(self._stages[0].settle_budget())
        self._stages = None
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
    def stats(self) -> ClientStats:
        """What the client sent and heard so far (requests, statuses, 429s, retries)."""
        return self.client.stats

    def _open(self) -> tuple[Fetcher, Enricher, SpotifyClient]:
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
            in_order(normalize_values(isrcs), self._resolve_unique)
        ) as results:
            async for result in results:
                yield result

    async def resolve_values(self, values: Iterable[object]) -> dict[str, Result]:
        """Results keyed by normalised value, for every distinct value (invalid included)."""
        return await self._collect(values, lambda result: result, Progress(enabled=False))

    async def _collect(
        self,
        values: Iterable[object] | list[str],
        make: Callable[[Result], T],
        progress: Progress,
        *,
        distinct: bool = False,
        hints: Hints | None = None,
    ) -> dict[str, T]:
        """``make(result)`` for every distinct value, as each result arrives. ``distinct``:
        ``values`` is already a list of distinct, valid, normalised ISRCs (a file's)."""
        self._open()
        out: dict[str, T] = {}
        if distinct:
            unique = cast(list[str], values)
        else:
            normalized = normalize_values(values)
            invalid = (v for v in normalized.values if v not in normalized.unique)
            out = {v: make(Result.invalid(v)) for v in invalid}
            unique = list(normalized.unique)
        progress.phase("resolving", len(unique), "isrc")

        def keep(result: Result) -> None:
            out[result.isrc] = make(result)
            progress.advance()

        await self._resolve_unique(unique, keep, hints)
        return out

    async def _resolve_unique(
        self, isrcs: list[str], emit: Callable[[Result], None], hints: Hints | None = None
    ) -> None:
        """Emit exactly one Result for each of ``isrcs`` (valid, normalised, distinct)."""
        fetcher, since = self._open()[0], self._clock()
        titles = hints is not None and hints.titles
        asks = await cached_or_missing(isrcs, self._cache, self.settings, emit, titles)
        self.cache_hits += asks.hits
        if not asks.isrcs:
            return
        ignoring = self.settings.ignore_cooldown
        if not ignoring:
            await self.control.load_cooldown(self._cache, self._clock())
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
        kinds: Sequence[Enrichment] = (),
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
        rows = await self._collect(values, row_of, progress, distinct=distinct, hints=hints)
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
        """``df`` with the output columns added (see README, "Output columns").

        ``column`` defaults to the one column named ``isrc`` in any case, as in the CLI;
        ``title_column`` and ``artist_column`` to ``title`` and ``artist`` (and the other
        names the CLI knows). ``with_`` (default: the Resolver's own) adds enrichment
        columns: ``"album"``, ``"audio-features"``.
        """
        return await _resolve_dataframe(
            self, df, column, with_=with_, title_column=title_column, artist_column=artist_column
        )

    async def resolve_file(
        self,
        input: str | os.PathLike[str],
        output: str | os.PathLike[str],
        **options: Unpack[FileOptions],
    ) -> RunReport:
        """Read ``input`` (CSV, TSV, Parquet or ``-``), resolve, write ``output`` atomically
        (``options``: ``column``, ``output_format``, ``input_format``, ``title_column``,
        ``artist_column``, ``chunk_rows``; see :class:`FileOptions`)."""
        return await _resolve_file(self, input, output, **options)


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


# -- the table fronts: a file or a DataFrame in, the same rows with the output columns out


class FileOptions(TypedDict, total=False):
    """What :func:`resolve_file` takes besides the paths."""

    column: str | None  # the ISRC column (default: the one named isrc, any case)
    output_format: str | None  # csv, tsv or parquet (default: the output's suffix)
    input_format: str | None  # csv, tsv or parquet (default: the input's suffix)
    title_column: str | None  # default: title, track, track_name or song, any case
    artist_column: str | None  # default: artist, artist_name or artists, any case
    chunk_rows: int  # rows read and written at a time (default 20,000)


async def _resolve_dataframe(
    resolver: Resolver,
    df: DataFrame,
    column: str | None = None,
    *,
    with_: Iterable[Enrichment | str] | None = None,
    title_column: str | None = None,
    artist_column: str | None = None,
) -> DataFrame:
    """``df`` with the output columns added (see ``Resolver.resolve_dataframe``), and the
    run's summary in ``attrs["isrc_resolver"]`` (the keys of ``--summary-json``); a run
    that stopped early (the quota, a budget, a signal, the machine) warns as well."""
    from . import tables

    started, before = time.perf_counter(), _count(RunReport(), resolver, (0, 0, 0, 0))
    s = resolver.settings
    kinds = s.with_ if with_ is None else s.evolve(with_=with_).with_
    values = tables.column_values(df, column)
    names = list(map(str, df.columns))
    hint_columns = tables.find_hint_columns(names, "the DataFrame", title_column, artist_column)
    for note in tables.column_notes(names, hint_columns, kinds, "the DataFrame"):
        log.info("%s", note)
    read = tables.frame_hints(df, values, hint_columns)
    durations = tables.frame_durations(df, values, hint_columns)
    hints = Hints(_in_thread(read), durations, titles=hint_columns.usable)
    with contextlib.closing(Progress(enabled=s.progress)) as progress:
        rows = await resolver.resolve_rows(values, kinds=kinds, progress=progress, hints=hints)
    report = RunReport(rows=len(values), elapsed=time.perf_counter() - started)
    _count(report, resolver, before)
    report.unique = sum(row.status is not Status.INVALID for row in rows.values())
    answers = [rows[normalize_value(v)] for v in values]
    report.statuses.update(row.status for row in answers)
    report.stale = sum(row.stale for row in answers)
    out = tables.with_results(df, values, rows, kinds, hint_columns, s.min_score)
    out.attrs["isrc_resolver"] = report.as_dict()
    if report.exit_code not in (0, 1):
        warnings.warn(f"the run stopped early: {report.summary()}", RuntimeWarning, stacklevel=3)
    return out


async def _resolve_file(
    resolver: Resolver,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    column: str | None = None,
    output_format: str | None = None,
    input_format: str | None = None,
    title_column: str | None = None,
    artist_column: str | None = None,
    chunk_rows: int = 20_000,
) -> RunReport:
    """Read ``input`` (CSV, TSV, Parquet or ``-``), resolve, write ``output`` atomically.

    Rows are streamed in chunks twice (to collect the ISRCs, then to write), so memory
    grows with the number of distinct ISRCs, not with the rows; the titles and artists are
    read a third time only for the ISRCs missed in every market.
    """
    from . import tables

    s = resolver.settings
    started = time.perf_counter()
    report = RunReport()
    before = _count(RunReport(), resolver, (0, 0, 0, 0))
    with (
        tables.open_input(
            input,
            column=column,
            input_format=input_format,
            chunk_rows=chunk_rows,
            title_column=title_column,
            artist_column=artist_column,
        ) as source,
        contextlib.closing(Progress(enabled=s.progress)) as progress,
    ):
        _preflight(output, output_format, source, s)
        report.rows, unique = distinct_isrcs(source.isrc_chunks())
        report.unique = len(unique)
        try:
            rows = await resolver.resolve_rows(
                unique,
                kinds=s.with_,
                progress=progress,
                distinct=True,
                hints=_file_hints(source),
            )
        finally:
            unique.clear()
            _count(report, resolver, before)
        progress.phase("writing", report.rows, "row")
        report.statuses, report.stale = tables.write_output(
            output, source, rows, s.with_, output_format, progress.advance, s.escape_formulas,
            s.min_score,
        )  # fmt: skip
    report.elapsed = time.perf_counter() - started
    return report


def _preflight(
    output: str | os.PathLike[str], output_format: str | None, source: InputSource, s: Settings
) -> None:
    """Before any request: the output can be written and is not the cache; and what a
    person should know of the columns."""
    from . import tables

    tables.check_output(output, output_format)
    not_the_cache(output, s.cache)
    for note in tables.column_notes(source.columns, source.hint_columns, s.with_, source.display):
        log.info("%s", note)


def _file_hints(source: InputSource) -> Hints:
    """What a file says of its ISRCs besides the codes (read again only for misses)."""
    titles = source.hint_columns.usable
    return Hints(_in_thread(source.hints), source.durations(), titles=titles)


def _in_thread(
    read: Callable[[list[str]], Mapping[str, Hint]],
) -> Callable[[list[str]], Awaitable[Mapping[str, Hint]]]:
    """``read`` (blocking: it may read the input file again) off the event loop."""

    async def hints(wanted: list[str]) -> Mapping[str, Hint]:
        return await asyncio.to_thread(read, wanted)

    return hints


Counts = tuple[int, int, int, int]  # API requests, token requests, 429s, cache hits


def _count(report: RunReport, resolver: Resolver, before: Counts) -> Counts:
    """Fill ``report`` with what the resolver did since ``before``; returns the totals."""
    stats, control = resolver.stats, resolver.control
    tokens = stats.requests["token"]
    now = (stats.api_requests, tokens, stats.throttled, resolver.cache_hits)
    report.requests = now[0] - before[0]
    report.token_requests = now[1] - before[1]
    report.throttled = now[2] - before[2]
    report.cache_hits = now[3] - before[3]
    report.stop, report.interrupted, report.spent, report.failed = (
        control.stopped,
        control.interrupted,
        control.spent,
        control.failed,
    )
    return now
