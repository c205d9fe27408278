"""The front: :class:`Resolver` wires the stages and owns the resources of a run.

    plan (plan.py)  ->  fetch (fetch.py)  ->  enrich (enrich.py)  ->  write (io.py)

It works on plain values (ISRC strings in, :class:`~isrc_resolver.models.Result` out);
tables and files go through :mod:`isrc_resolver.io`, imported only when one is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast

from .auth import TokenStore
from .budget import Budget
from .cache import AsyncCache, Cache
from .client import SpotifyClient, Transport
from .enrich import Enricher
from .fetch import Fetcher, Hints, RunControl, Workers
from .models import AlbumDetails, AudioFeatures, Enrichment, Result, RunReport
from .plan import Normalized, cached_or_missing, normalize_values
from .progress import Progress
from .schema import Row, row_of
from .search import IsrcSearch, TitleArtistSearch
from .settings import Options, Settings

if TYPE_CHECKING:
    from .tables import FileOptions

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Resolver", "resolve_file"]

T = TypeVar("T")


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
        budget = await Budget.for_run(s, self._cache)
        client = SpotifyClient.from_settings(
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
            await self._stages[0].record_spent()
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
            _in_order(normalize_values(isrcs), self._resolve_unique)
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
        asks = await cached_or_missing(isrcs, self._cache, self.settings, emit)
        self.cache_hits += asks.hits
        if not asks.isrcs:
            return
        if not self.settings.ignore_cooldown:
            await self.control.load_cooldown(self._cache, self._clock())
        await fetcher.fetch(
            asks.isrcs, emit, asks.stale, since=since, partial=asks.partial, hints=hints
        )

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
        df: pd.DataFrame,
        column: str | None = None,
        *,
        with_: Iterable[Enrichment | str] | None = None,
        title_column: str | None = None,
        artist_column: str | None = None,
    ) -> pd.DataFrame:
        """``df`` with the output columns added (see README, "Output columns").

        ``column`` defaults to the one column named ``isrc`` in any case, as in the CLI;
        ``title_column`` and ``artist_column`` to ``title`` and ``artist`` (and the other
        names the CLI knows). ``with_`` (default: the Resolver's own) adds enrichment
        columns: ``"album"``, ``"audio-features"``.
        """
        from . import tables

        return await tables.resolve_dataframe(
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
        ``artist_column``, ``chunk_rows``; see :func:`isrc_resolver.tables.resolve_file`)."""
        from . import tables

        return await tables.resolve_file(self, input, output, **options)


async def _in_order(
    normalized: Normalized,
    resolve_unique: Callable[[list[str], Callable[[Result], None]], Coroutine[Any, Any, None]],
) -> AsyncGenerator[Result, None]:
    """One result per normalised value, in order, each as soon as it is known."""
    loop = asyncio.get_running_loop()
    futures = {u: loop.create_future() for u in normalized.unique}
    task = asyncio.create_task(
        resolve_unique(list(normalized.unique), lambda r: futures[r.isrc].set_result(r))
    )
    try:
        for isrc in normalized.values:
            future = futures.get(isrc)
            if future is None:
                yield Result.invalid(isrc)
                continue
            if not future.done():
                await asyncio.wait({future, task}, return_when=asyncio.FIRST_COMPLETED)
            if not future.done():
                task.result()  # the pipeline failed: raise its error here
            yield future.result()
        await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


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
