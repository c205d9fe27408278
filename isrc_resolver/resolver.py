"""The pipeline: normalise, de-duplicate, consult the cache, search, choose, record.

:class:`Resolver` is the library's entry point and the engine behind the CLI. It works on
plain values (ISRC strings in, :class:`~isrc_resolver.models.Result` out); tables and files
go through :mod:`isrc_resolver.io`, imported only when a table or file is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from tqdm import tqdm

from .auth import Secret, TokenStore
from .cache import Cache, default_cache_path
from .client import DEFAULT_API_URL, DEFAULT_TOKEN_URL, SpotifyClient
from .enrich import (
    ALBUMS_PER_REQUEST,
    FEATURES_PER_REQUEST,
    AlbumDetails,
    AudioFeatures,
    Enrichment,
    batches,
)
from .errors import ConfigurationError, ForbiddenError, RateLimitStop, RequestError, format_time
from .isrc import is_valid_isrc, normalize_isrc
from .models import OUTPUT_COLUMNS, MatchPreference, Result, Status, Track
from .retry import RetryPolicy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DAY", "Resolver", "RunReport", "choose_match", "resolve_file"]

log = logging.getLogger("isrc_resolver")

P = ParamSpec("P")
T = TypeVar("T")

DAY = 86_400.0
DEFAULT_RATE = 10.0
DEFAULT_CONCURRENCY = 8
_FLUSH_EVERY = 200  # results per cache commit ...
_FLUSH_SECONDS = 1.0  # ... or this often, whichever comes first
_INTERRUPT_GRACE = 3.0  # seconds in-flight requests get to finish after Ctrl-C
_CACHE_SLICE = 5_000  # ISRCs looked up in the cache at a time


def choose_match(
    items: Sequence[Mapping[str, Any]], isrc: str, prefer: MatchPreference = MatchPreference.EXACT
) -> Mapping[str, Any]:
    """Pick one of Spotify's tracks for ``isrc``, deterministically.

    ``exact``: the first item whose ``external_ids.isrc`` is the ISRC asked for, else the
    first item (Spotify's own order). ``original``: among the exact matches (or all items
    when none is exact), albums and singles before compilations, then the earliest release
    date, then Spotify's order.
    """
    if not items:
        raise ValueError("no items to choose from")
    exact = [it for it in items if _item_isrc(it) == isrc]
    if prefer is MatchPreference.EXACT:
        return exact[0] if exact else items[0]
    candidates = exact or list(items)
    ranked = sorted(
        enumerate(candidates),
        key=lambda pair: (
            (pair[1].get("album") or {}).get("album_type") == "compilation",
            _date_key((pair[1].get("album") or {}).get("release_date")),
            pair[0],
        ),
    )
    return ranked[0][1]


def _item_isrc(item: Mapping[str, Any]) -> str | None:
    value = (item.get("external_ids") or {}).get("isrc")
    return normalize_isrc(value) if isinstance(value, str) else None


def _date_key(value: object) -> str:
    # "2024", "2024-03" and "2024-03-19" compare correctly once padded; unknown sorts last.
    return str(value)[:10].ljust(10, "~") if value else "~"


@dataclass
class RunReport:
    """What a run did. ``statuses`` counts rows; ``unique`` counts distinct valid ISRCs."""

    rows: int = 0
    unique: int = 0
    statuses: Counter[Status] = field(default_factory=Counter)
    cache_hits: int = 0
    requests: int = 0
    throttled: int = 0
    elapsed: float = 0.0
    stop: RateLimitStop | None = None
    interrupted: str | None = None  # the signal's name, when a signal ended the run

    @property
    def exit_code(self) -> int:
        """0 all settled, 1 some errors, 3 stopped by rate limit, 130/143 interrupted."""
        if self.interrupted:
            return 143 if self.interrupted == "SIGTERM" else 130
        if self.stop is not None or self.statuses[Status.RATE_LIMITED]:
            return 3
        if self.statuses[Status.ERROR]:
            return 1
        return 0

    def summary(self) -> str:
        s = self.statuses
        line = (
            f"rows={self.rows} unique={self.unique} found={s[Status.FOUND]} "
            f"not_found={s[Status.NOT_FOUND]} invalid={s[Status.INVALID]} "
            f"errors={s[Status.ERROR]} rate_limited={s[Status.RATE_LIMITED]} "
            f"pending={s[Status.PENDING]} cached={self.cache_hits} requests={self.requests} "
            f"429s={self.throttled} elapsed={self.elapsed:.1f}s"
        )
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "unique": self.unique,
            **{status.value: self.statuses[status] for status in Status},
            "cached": self.cache_hits,
            "requests": self.requests,
            "throttled": self.throttled,
            "elapsed": round(self.elapsed, 3),
            "resume_at": format_time(self.stop.resume_at) if self.stop else None,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
        }


class Resolver:
    """Resolve ISRCs to Spotify tracks. Use as ``async with Resolver(...) as r``.

    Credentials default to ``SPOTIFY_CLIENT_ID`` / ``SPOTIFY_CLIENT_SECRET`` in the
    environment. ``cache`` is a :class:`Cache`, a path, ``True`` for the default location,
    or ``None`` (the default for the library) for no cache and nothing on disk.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        api_url: str = DEFAULT_API_URL,
        token_url: str = DEFAULT_TOKEN_URL,
        market: str | None = None,
        prefer: MatchPreference | str = MatchPreference.EXACT,
        limit: int = 10,
        rate: float = DEFAULT_RATE,
        adaptive: bool = True,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_retries: int = 5,
        max_wait: float = 120.0,
        timeout: float = 30.0,
        cache: Cache | str | os.PathLike[str] | bool | None = None,
        max_age: float = 30 * DAY,
        not_found_max_age: float = 7 * DAY,
        refresh: bool = False,
        ignore_cooldown: bool = False,
        progress: bool = False,
        with_: Iterable[Enrichment | str] = (),
        allow_per_album: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        client_id = client_id or os.environ.get("SPOTIFY_CLIENT_ID")
        client_secret = client_secret or os.environ.get("SPOTIFY_CLIENT_SECRET")
        if not client_id or not client_secret:
            missing = "SPOTIFY_CLIENT_ID" if not client_id else "SPOTIFY_CLIENT_SECRET"
            raise ConfigurationError(
                f"{missing} is not set: pass client_id/client_secret or set it in the environment"
            )
        if not 1 <= limit <= 10:
            raise ConfigurationError(
                f"limit must be between 1 and 10 (Spotify's maximum), not {limit}"
            )
        if rate <= 0 or concurrency < 1:
            raise ConfigurationError("rate must be positive and concurrency at least 1")
        self.market = market.upper() if market else None
        self.prefer = MatchPreference(prefer)
        self.limit = limit
        self.concurrency = concurrency
        self.max_age = max_age
        self.not_found_max_age = not_found_max_age
        self.refresh = refresh
        self.ignore_cooldown = ignore_cooldown
        self.progress = progress
        try:
            self.enrichments = tuple(dict.fromkeys(Enrichment(kind) for kind in with_))
        except ValueError:
            choices = ", ".join(e.value for e in Enrichment)
            raise ConfigurationError(f"with_ takes {choices}; got {tuple(with_)!r}") from None
        self.allow_per_album = allow_per_album
        self._details_memo: dict[Enrichment, dict[str, dict[str, Any] | None]] = {}
        self._closed: set[Enrichment] = set()
        self._clock = clock
        self._cache_arg = cache
        self.cache: Cache | None = None
        self._db_thread: ThreadPoolExecutor | None = None
        self._client_args: dict[str, Any] = dict(
            client_id=client_id,
            client_secret=Secret(client_secret),
            api_url=api_url,
            token_url=token_url,
            rate=rate,
            adaptive=adaptive,
            concurrency=concurrency,
            policy=RetryPolicy(max_retries=max_retries, max_wait=max_wait),
            timeout=timeout,
            sleep=sleep,
            wall_clock=clock,
        )
        self._client: SpotifyClient | None = None
        self._halt: asyncio.Event | None = None
        self.stopped: RateLimitStop | None = None
        self._cooldown_saved = False
        self.interrupted: str | None = None
        self.cache_hits = 0

    def __repr__(self) -> str:
        return f"Resolver(api_url={self._client_args['api_url']!r}, cache={self.cache!r})"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Resolver:
        if self._client is not None:
            raise RuntimeError("this Resolver is already open")
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isrc-cache")
        token_store = None
        if self._cache_arg is not None and self._cache_arg is not False:
            if isinstance(self._cache_arg, Cache):
                self.cache = self._cache_arg
            else:
                path = default_cache_path() if self._cache_arg is True else Path(self._cache_arg)
                self.cache = await self._db(Cache, path, clock=self._clock)
            token_store = TokenStore(
                self.cache.path.with_name("tokens.json"),
                self._client_args["client_id"],
                clock=self._clock,
            )
        self._client = SpotifyClient(**self._client_args, token_store=token_store)
        await self._client.__aenter__()
        self._halt = asyncio.Event()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.cache is not None and not isinstance(self._cache_arg, Cache):
            await self._db(self.cache.close)
            self.cache = None
        if self._db_thread is not None:
            self._db_thread.shutdown(wait=True)
            self._db_thread = None

    @property
    def client(self) -> SpotifyClient:
        if self._client is None:
            raise RuntimeError("the Resolver is not open; use `async with Resolver(...) as r`")
        return self._client

    def interrupt(self, reason: str = "SIGINT") -> None:
        """Stop sending; results in flight get a few seconds, the rest end up ``pending``.

        Safe to call from a signal handler installed with ``loop.add_signal_handler``.
        """
        self.interrupted = reason
        if self._halt is not None:
            self._halt.set()

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a cache call on the single cache thread (never on the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, lambda: fn(*args, **kwargs))

    @property
    def variant(self) -> str:
        """The part of the cache key that changes Spotify's answer or our choice."""
        return f"market={self.market or '-'};prefer={self.prefer.value}"

    # -- single values and streams ---------------------------------------------------

    async def resolve(self, isrc: str) -> Result:
        """Resolve one ISRC (in any common spelling)."""
        async with contextlib.aclosing(self.resolve_many([isrc])) as results:
            async for result in results:
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def resolve_many(self, isrcs: Iterable[str]) -> AsyncGenerator[Result, None]:
        """Yield one :class:`Result` per input value, in input order.

        Duplicates (after normalising) are requested once; invalid values are never sent.
        """
        normalized = [normalize_isrc(value) for value in isrcs]
        unique = list(dict.fromkeys(n for n in normalized if is_valid_isrc(n)))
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Result]] = {u: loop.create_future() for u in unique}
        task = asyncio.create_task(
            self._resolve_unique(unique, lambda r: futures[r.isrc].set_result(r))
        )
        try:
            for isrc in normalized:
                future = futures.get(isrc)
                if future is None:
                    yield Result.invalid(isrc)
                    continue
                if not future.done():
                    waiters: set[asyncio.Future[Any]] = {future, task}
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if not future.done():
                    task.result()  # the pipeline failed: raise its error here
                yield future.result()
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # -- tables and files ------------------------------------------------------------

    async def resolve_dataframe(
        self,
        df: pd.DataFrame,
        column: str = "isrc",
        *,
        with_: Iterable[Enrichment | str] | None = None,
    ) -> pd.DataFrame:
        """``df`` with the output columns added (see README, "Output columns").

        ``with_`` (default: the Resolver's own) adds enrichment columns: ``"album"``,
        ``"audio-features"``.
        """
        from . import io

        kinds = self.enrichments if with_ is None else tuple(Enrichment(k) for k in with_)
        values = io.column_values(df, column)
        results = await self.resolve_values(values)
        rows = {isrc: tuple(r.as_row().values()) for isrc, r in results.items()}
        await self._enrich_rows(rows, kinds)
        columns = [*OUTPUT_COLUMNS, *(c for kind in kinds for c in kind.columns)]
        return io.with_results(df, [rows[normalize_isrc(v)] for v in values], columns)

    async def resolve_values(self, values: Iterable[str]) -> dict[str, Result]:
        """Results keyed by normalised value, for every distinct value (invalid included)."""
        results: dict[str, Result] = {}
        unique: dict[str, None] = {}  # an ordered set
        for value in values:
            isrc = normalize_isrc(value)
            if isrc in results or isrc in unique:
                continue
            if is_valid_isrc(isrc):
                unique[isrc] = None
            else:
                results[isrc] = Result.invalid(isrc)
        await self._resolve_unique(list(unique), lambda r: results.__setitem__(r.isrc, r))
        return results

    async def resolve_file(
        self,
        input: str | os.PathLike[str],
        output: str | os.PathLike[str],
        *,
        column: str | None = None,
        output_format: str | None = None,
        chunk_rows: int = 20_000,
    ) -> RunReport:
        """Read ``input`` (CSV, TSV, Parquet or ``-``), resolve, write ``output`` atomically.

        Rows are streamed in chunks twice (to collect the ISRCs, then to write), so memory
        grows with the number of distinct ISRCs, not with the rows.
        """
        from . import io

        started = time.perf_counter()
        report = RunReport()
        client = self.client
        requests_before, throttled_before = client.stats.total_requests, client.stats.throttled
        hits_before = self.cache_hits
        with io.open_input(input, column=column, chunk_rows=chunk_rows) as source:
            unique: dict[str, None] = {}
            for values in source.isrc_chunks():
                report.rows += len(values)
                for value in values:
                    isrc = normalize_isrc(value)
                    if is_valid_isrc(isrc):
                        unique[isrc] = None
            report.unique = len(unique)
            rows: dict[str, tuple[Any, ...]] = {}

            def keep(result: Result) -> None:
                rows[result.isrc] = tuple(result.as_row().values())

            try:
                await self._resolve_unique(list(unique), keep)
                await self._enrich_rows(rows, self.enrichments)
            finally:
                unique.clear()
                report.requests = client.stats.total_requests - requests_before
                report.throttled = client.stats.throttled - throttled_before
                report.cache_hits = self.cache_hits - hits_before
                report.stop = self.stopped
                report.interrupted = self.interrupted
            extra = [c for kind in self.enrichments for c in kind.columns]
            with io.open_output(
                output, source, output_format=output_format, extra_columns=extra
            ) as sink:
                for chunk in source.chunks():
                    statuses = sink.write(chunk, rows)
                    report.statuses.update(statuses)
        report.elapsed = time.perf_counter() - started
        return report

    # -- enrichment ------------------------------------------------------------------

    async def albums(self, ids: Iterable[str]) -> dict[str, AlbumDetails]:
        """Album details by album id (label, UPC, total tracks, genres).

        Ids Spotify does not know, and all of them when the endpoint is closed to this app
        (403, reported once), are missing from the answer.
        """
        found = await self._details(Enrichment.ALBUM, ids)
        return {i: AlbumDetails.from_json(d) for i, d in found.items()}

    async def audio_features(self, track_ids: Iterable[str]) -> dict[str, AudioFeatures]:
        """Audio features by track id; empty when Spotify closed the endpoint to this app."""
        found = await self._details(Enrichment.AUDIO_FEATURES, track_ids)
        return {i: AudioFeatures.from_json(d) for i, d in found.items()}

    async def _enrich_rows(
        self, rows: dict[str, tuple[Any, ...]], kinds: Sequence[Enrichment]
    ) -> None:
        """Append each kind's columns to every row (empty where there is nothing, and
        for every row when the run was interrupted or stopped first)."""
        if not kinds:
            return
        key_column = {
            Enrichment.ALBUM: OUTPUT_COLUMNS.index("album_id"),
            Enrichment.AUDIO_FEATURES: OUTPUT_COLUMNS.index("spotify_track_id"),
        }
        found: dict[Enrichment, Mapping[str, AlbumDetails | AudioFeatures]] = {}
        for kind in kinds:
            ids = [row[key_column[kind]] for row in rows.values() if row[key_column[kind]]]
            if self.interrupted:
                found[kind] = {}
            elif kind is Enrichment.ALBUM:
                found[kind] = await self.albums(ids)
            else:
                found[kind] = await self.audio_features(ids)
        for isrc, row in rows.items():
            extra: tuple[Any, ...] = ()
            for kind in kinds:
                details = found[kind].get(row[key_column[kind]] or "")
                extra += details.values() if details else (None,) * len(kind.columns)
            rows[isrc] = row + extra

    async def _details(self, kind: Enrichment, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Details of ``kind`` by id: from this run's memory, the cache, then Spotify.

        Each id is asked at most once per run (unknown ids included) and cached across runs.
        """
        wanted = list(dict.fromkeys(i for i in ids if i))
        memo = self._details_memo.setdefault(kind, {})
        missing = [i for i in wanted if i not in memo]
        if missing and self.cache is not None and not self.refresh:
            cached = await self._db(
                self.cache.lookup_details, kind.value, missing, max_age=self.max_age
            )
            memo.update(cached)
            missing = [i for i in missing if i not in cached]
        if missing and kind not in self._closed:
            fetched = await self._fetch_details(kind, missing)
            memo.update(fetched)
            if self.cache is not None:
                known = {i: d for i, d in fetched.items() if d is not None}
                await _finish(self._db(self.cache.store_details, kind.value, known))
        return {i: d for i in wanted if (d := memo.get(i)) is not None}

    async def _fetch_details(
        self, kind: Enrichment, ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        album = kind is Enrichment.ALBUM
        path, key = ("albums", "albums") if album else ("audio-features", "audio_features")
        parse = AlbumDetails.from_api if album else AudioFeatures.from_api
        fetched: dict[str, dict[str, Any] | None] = {}

        async def fetch_batch(batch: list[str]) -> None:
            if kind in self._closed:
                return
            try:
                body = await self.client.get_json(path, {"ids": ",".join(batch)}, label=path)
            except ForbiddenError:
                self._close(kind)
                return
            except RequestError as exc:
                log.warning(
                    "GET /%s failed (%s); those rows keep empty %s columns", path, exc, kind
                )
                return
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list) or len(items) != len(batch):
                log.warning("GET /%s gave an answer of unexpected shape; skipped", path)
                return
            for asked, item in zip(batch, items, strict=True):
                fetched[asked] = parse(item).to_json() if isinstance(item, dict) else None

        groups = batches(ids, ALBUMS_PER_REQUEST if album else FEATURES_PER_REQUEST)
        await self._pool_after_probe(groups, fetch_batch)
        if album and kind in self._closed and self.allow_per_album:
            await self._fetch_albums_one_by_one([i for i in ids if i not in fetched], fetched)
        return fetched

    async def _fetch_albums_one_by_one(
        self, ids: Sequence[str], fetched: dict[str, dict[str, Any] | None]
    ) -> None:
        closed = False

        async def fetch_one(album_id: str) -> None:
            nonlocal closed
            if closed:
                return
            try:
                body = await self.client.get_json(f"albums/{album_id}", label=album_id)
            except ForbiddenError:
                closed = True
                log.warning("GET /albums/{id} answered 403 too; the album columns stay empty")
                return
            except RequestError as exc:
                if exc.status == 404:
                    fetched[album_id] = None
                else:
                    log.warning("GET /albums/%s failed (%s)", album_id, exc)
                return
            fetched[album_id] = AlbumDetails.from_api(body).to_json()

        await self._pool_after_probe(ids, fetch_one)

    def _close(self, kind: Enrichment) -> None:
        """Report a 403 once; send no more requests to that endpoint in this run."""
        if kind in self._closed:
            return
        self._closed.add(kind)
        if kind is Enrichment.AUDIO_FEATURES:
            log.warning(
                "GET /audio-features answered 403: Spotify closed it to apps created after "
                "27 November 2024. The audio-feature columns stay empty; the rest of the run "
                "is unaffected."
            )
        elif self.allow_per_album:
            log.warning(
                "GET /albums?ids= answered 403 (Spotify serves it only to apps in Extended "
                "Quota Mode); fetching albums one at a time (--allow-per-album), one request "
                "of the daily allowance each."
            )
        else:
            log.warning(
                "GET /albums?ids= answered 403 (Spotify serves it only to apps in Extended "
                "Quota Mode). The album columns stay empty; --allow-per-album fetches them "
                "one album at a time, one request of the daily allowance each."
            )

    # -- the engine ------------------------------------------------------------------

    async def _resolve_unique(self, isrcs: Sequence[str], emit: Callable[[Result], None]) -> None:
        """Emit exactly one Result for each of ``isrcs`` (valid, normalised, distinct)."""
        pending: Sequence[str] = isrcs
        if self.cache is not None and not self.refresh and pending:
            # In slices, so that a warm run over millions of ISRCs holds a slice of cached
            # results at a time, not all of them.
            missing: list[str] = []
            hits = 0
            for start in range(0, len(pending), _CACHE_SLICE):
                part = pending[start : start + _CACHE_SLICE]
                cached = await self._db(
                    self.cache.lookup,
                    part,
                    self.variant,
                    max_age=self.max_age,
                    not_found_max_age=self.not_found_max_age,
                )
                for result in cached.values():
                    emit(result)
                hits += len(cached)
                missing += (isrc for isrc in part if isrc not in cached)
            self.cache_hits += hits
            pending = missing
            log.info("cache: %d fresh, %d to look up", hits, len(pending))
        if not pending:
            return
        if self.stopped is None and self.cache is not None and not self.ignore_cooldown:
            until = await self._db(self.cache.cooldown_until)
            if until is not None:
                resume_at = datetime.fromtimestamp(until, UTC)
                self.stopped = RateLimitStop(until - self._clock(), quota=True, resume_at=resume_at)
                self._cooldown_saved = True
                log.warning(
                    "cooling down after a quota stop: no requests until %s "
                    "(--ignore-cooldown to override)",
                    format_time(resume_at),
                )
        if self.stopped is not None or self.interrupted:
            for isrc in pending:
                emit(self._unfinished(isrc))
            return
        await self._run_workers(pending, emit)

    async def _run_workers(self, isrcs: Sequence[str], emit: Callable[[Result], None]) -> None:
        done: set[str] = set()
        buffer: list[Result] = []
        last_flush = time.monotonic()
        bar = tqdm(
            total=len(isrcs),
            disable=not self.progress,
            file=sys.stderr,
            unit="isrc",
            desc="resolving",
            leave=False,
        )

        async def flush() -> None:
            nonlocal last_flush
            if self.cache is not None and buffer:
                batch = buffer[:]
                buffer.clear()
                await self._db(self.cache.store, batch, self.variant)
            last_flush = time.monotonic()

        async def search(isrc: str) -> None:
            result = await self._search(isrc)
            done.add(isrc)
            emit(result)
            bar.update()
            if self.cache is not None and result.status.settled:
                buffer.append(result)
                if len(buffer) >= _FLUSH_EVERY or time.monotonic() - last_flush > _FLUSH_SECONDS:
                    await flush()

        try:
            await self._pool(isrcs, search)
        finally:
            bar.close()
            await _finish(flush())
        for isrc in isrcs:
            if isrc not in done:
                emit(self._unfinished(isrc))

    async def _pool_after_probe(
        self, items: Sequence[T], work: Callable[[T], Awaitable[None]]
    ) -> None:
        """:meth:`_pool`, but the first item goes alone: if the endpoint is closed to this
        app (403), that costs one request, not one per worker in flight."""
        await self._pool(items[:1], work)
        await self._pool(items[1:], work)

    async def _pool(self, items: Sequence[T], work: Callable[[T], Awaitable[None]]) -> None:
        """Run ``work`` over ``items`` with ``concurrency`` workers, until all are done,
        a rate-limit stop, or an interrupt. Items not reached are simply not worked on."""
        assert self._halt is not None
        if self.stopped is not None or self.interrupted:
            return
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                if self._halt is not None and self._halt.is_set():
                    return
                try:
                    await work(item)
                except RateLimitStop as stop:
                    self._on_stop(stop)
                    return

        tasks = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(items)))]
        halted = asyncio.create_task(self._halt.wait())
        try:
            running: set[asyncio.Task[Any]] = set(tasks)
            while running and not halted.done():
                finished, running = await asyncio.wait(
                    running | {halted}, return_when=asyncio.FIRST_COMPLETED
                )
                running.discard(halted)
                for task in finished:
                    if task is not halted and (error := task.exception()) is not None:
                        raise error
            # A rate-limit stop leaves nothing worth waiting for (the gate is paused); an
            # interrupt lets requests already sent finish, briefly.
            if running and self.stopped is None:
                await asyncio.wait(running, timeout=_INTERRUPT_GRACE)
        finally:
            for task in (*tasks, halted):
                task.cancel()
            await asyncio.gather(*tasks, halted, return_exceptions=True)
            if self.stopped is not None and self.cache is not None and not self._cooldown_saved:
                self._cooldown_saved = True
                until = self.stopped.resume_at.timestamp()
                await _finish(self._db(self.cache.set_cooldown, until))

    async def _search(self, isrc: str) -> Result:
        try:
            page = await self.client.search_isrc(isrc, market=self.market, limit=self.limit)
            items = page.get("items") or []
            total = page.get("total")
            count = total if isinstance(total, int) else len(items)
            if not items:
                return Result(isrc, Status.NOT_FOUND, match_count=count)
            track = Track.from_api(choose_match(items, isrc, self.prefer))
            return Result(isrc, Status.FOUND, track=track, match_count=count)
        except RequestError as exc:
            log.warning("%s: %s", isrc, exc)
            return Result(isrc, Status.ERROR, error=str(exc))
        except (KeyError, TypeError, AttributeError) as exc:
            return Result(isrc, Status.ERROR, error=f"unexpected answer shape ({exc!r})")

    def _on_stop(self, stop: RateLimitStop) -> None:
        if self.stopped is None:
            self.stopped = stop
            log.warning("%s", stop)
        if self._halt is not None:
            self._halt.set()

    def _unfinished(self, isrc: str) -> Result:
        if self.stopped is not None:
            return Result(isrc, Status.RATE_LIMITED, error=str(self.stopped))
        return Result(isrc, Status.PENDING, error="not attempted: the run was interrupted")


async def _finish(work: Awaitable[None]) -> None:
    """Run ``work`` to the end even if we are cancelled meanwhile (then re-raise).

    Results already paid for in requests must reach the cache however the run ends.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


async def resolve_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    column: str | None = None,
    output_format: str | None = None,
    **options: Any,
) -> RunReport:
    """Open a :class:`Resolver` with ``options``, resolve one file, close it."""
    async with Resolver(**options) as resolver:
        return await resolver.resolve_file(
            input, output, column=column, output_format=output_format
        )
