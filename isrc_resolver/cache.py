"""The persistent cache: what makes nightly reruns cost only what is new or stale.

One SQLite file (standard library ``sqlite3``, WAL mode) holds:

* ``results``: one row per (normalised ISRC, variant), the variant being everything that
  changes the answer (market, match preference). Found and not-found answers are kept,
  with when they were fetched; errors and rate-limited rows are never cached.
* ``meta``: the cooldown after a quota stop (the time before which no search is sent).
* ``details``: enrichment by kind (``album``, ``audio-features``) and Spotify id, as JSON.

All calls are synchronous and meant to run off the event loop (the resolver runs them in a
single worker thread). Two processes may share one file: WAL lets readers proceed while
one writes, and a generous busy timeout makes a writer wait instead of failing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from platformdirs import user_cache_path
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from .errors import CacheError
from .models import Result, Status, Track

__all__ = ["AsyncCache", "Cache", "CacheInfo", "default_cache_path", "remove_cache"]

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    isrc TEXT NOT NULL,
    variant TEXT NOT NULL,
    status TEXT NOT NULL,
    track TEXT,
    match_count INTEGER,
    fetched_at REAL NOT NULL,
    PRIMARY KEY (isrc, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS details (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    fetched_at REAL NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
"""
_LOOKUP_BATCH = 500  # under SQLite's default limit of host parameters


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def default_cache_path() -> Path:
    """``~/.cache/isrc-resolver/cache.sqlite3`` or the platform's equivalent."""
    return user_cache_path("isrc-resolver", appauthor=False) / "cache.sqlite3"


@dataclass(frozen=True, slots=True)
class CacheInfo:
    path: Path
    entries: int
    found: int
    not_found: int
    oldest: float | None
    newest: float | None
    cooldown_until: float | None
    size_bytes: int


class Cache:
    """Results by ISRC and variant, with ages; plus the quota cooldown."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._clock = clock
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(
                f"the cache {self.path} cannot be used ({exc}); delete it (`isrc-resolve cache "
                f"clear --cache {self.path}` makes a new one) or run with --no-cache "
                "(library: cache=None)"
            ) from None

    def _open(self) -> sqlite3.Connection:
        """Connect, set up, and prove the file is a readable, writable cache: every problem
        shows here, before any request is sent, not half-way through a run."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise OSError("it is not a file")
        fresh = not self.path.exists()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            # Switching a new file to WAL takes an exclusive lock that SQLite may refuse at
            # once ("database is locked") instead of waiting on the busy timeout, when another
            # run opens the same new cache at the same moment. Retrying briefly settles it.
            for attempt in Retrying(
                retry=retry_if_exception(_locked),
                stop=stop_after_delay(30),
                wait=wait_random(0.01, 0.2),
                reraise=True,
            ):
                with attempt:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")
                    db.executescript(_SCHEMA)
            for table in ("results", "details", "meta"):
                db.execute(f"SELECT count(*) FROM {table}").fetchone()
            db.execute("BEGIN IMMEDIATE")  # can we write? (a read-only file says so here)
            db.execute("ROLLBACK")
        except BaseException:
            db.close()
            raise
        return db

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    # -- results ---------------------------------------------------------------------

    def lookup(
        self,
        isrcs: Sequence[str],
        variant: str,
        *,
        max_age: float,
        not_found_max_age: float,
        stale: dict[str, Result] | None = None,
    ) -> dict[str, Result]:
        """Fresh cached results for those of ``isrcs`` that have one; the ones past their
        age go into ``stale`` when it is given (to be kept if they cannot be refreshed)."""
        now = self._clock()
        found_cutoff, miss_cutoff = now - max_age, now - not_found_max_age
        out: dict[str, Result] = {}
        rows = self._select_in(
            "SELECT isrc, status, track, match_count, fetched_at FROM results "
            "WHERE variant = ? AND isrc IN ({})",
            (variant,),
            isrcs,
        )
        for isrc, status, track, match_count, fetched_at in rows:
            cutoff = found_cutoff if status == Status.FOUND else miss_cutoff
            if fetched_at < cutoff and stale is None:
                continue
            try:
                result = Result(
                    isrc=isrc,
                    status=Status(status),
                    track=Track.from_json(json.loads(track)) if track else None,
                    match_count=match_count,
                    resolved_at=fetched_at,
                )
            except (ValueError, KeyError, TypeError):
                continue  # an entry that does not read back is as good as none: ask again
            if fetched_at >= cutoff:
                out[isrc] = result
            elif stale is not None:
                stale[isrc] = result
        return out

    def _select_in(
        self, sql: str, params: tuple[object, ...], keys: Sequence[str]
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` (whose ``{}`` is an ``IN`` list) for ``keys``, in batches that
        stay under SQLite's limit on parameters. Only ``?`` marks go into the SQL."""
        for start in range(0, len(keys), _LOOKUP_BATCH):
            batch = keys[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(batch))
            yield from self._db.execute(sql.format(marks), (*params, *batch))

    def store(self, results: Iterable[Result], variant: str) -> int:
        """Save settled results (found / not found) in one transaction; returns how many."""
        now = self._clock()
        rows = [
            (
                r.isrc,
                variant,
                r.status.value,
                json.dumps(r.track.to_json(), ensure_ascii=False) if r.track else None,
                r.match_count,
                r.resolved_at or now,
            )
            for r in results
            if r.status in (Status.FOUND, Status.NOT_FOUND)
        ]
        if rows:
            with self._transaction():
                self._db.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", rows
                )
        return len(rows)

    # -- enrichment details -----------------------------------------------------------

    def lookup_details(
        self, kind: str, ids: Sequence[str], *, max_age: float
    ) -> dict[str, dict[str, Any]]:
        """Fresh cached details of ``kind`` for those of ``ids`` that have them."""
        rows = self._select_in(
            "SELECT id, data FROM details WHERE kind = ? AND fetched_at >= ? AND id IN ({})",
            (kind, self._clock() - max_age),
            ids,
        )
        return {row_id: json.loads(data) for row_id, data in rows}

    def store_details(self, kind: str, items: Mapping[str, Mapping[str, Any]]) -> None:
        now = self._clock()
        rows = [(kind, i, json.dumps(d, ensure_ascii=False), now) for i, d in items.items()]
        if rows:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO details VALUES (?, ?, ?, ?)", rows)

    # -- cooldown --------------------------------------------------------------------

    def cooldown_until(self) -> float | None:
        """Unix time before which no search should be sent, if a quota stop set one."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'cooldown_until'").fetchone()
        if row is None:
            return None
        until = float(row[0])
        return until if until > self._clock() else None

    def set_cooldown(self, until: float) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('cooldown_until', ?)", (repr(until),)
            )

    def clear_cooldown(self) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM meta WHERE key = 'cooldown_until'")

    # -- housekeeping ----------------------------------------------------------------

    def info(self) -> CacheInfo:
        counts: dict[str, Any] = dict(
            self._db.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall()
        )
        oldest, newest = self._db.execute(
            "SELECT MIN(fetched_at), MAX(fetched_at) FROM results"
        ).fetchone()
        return CacheInfo(
            path=self.path,
            entries=sum(counts.values()),
            found=counts.get(Status.FOUND.value, 0),
            not_found=counts.get(Status.NOT_FOUND.value, 0),
            oldest=oldest,
            newest=newest,
            cooldown_until=self.cooldown_until(),
            size_bytes=self.path.stat().st_size if self.path.exists() else 0,
        )

    def clear(self) -> int:
        """Delete every cached result and the cooldown; returns how many results went."""
        with self._transaction():
            count: int = self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            self._db.execute("DELETE FROM results")
            self._db.execute("DELETE FROM details")
            self._db.execute("DELETE FROM meta")
        self._db.execute("VACUUM")
        return count

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front, so two processes queue
    on the busy timeout rather than deadlocking on a lock upgrade."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class AsyncCache:
    """A :class:`Cache` used from the event loop: every call runs on one worker thread of
    its own, so SQLite never blocks the loop and calls keep their order."""

    def __init__(self, cache: Cache, *, owned: bool) -> None:
        self.cache = cache
        self._owned = owned  # close the Cache with this wrapper
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isrc-cache")

    @classmethod
    async def open(cls, path: Path, *, clock: Callable[[], float]) -> AsyncCache:
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isrc-cache-open")
        try:
            loop = asyncio.get_running_loop()
            cache = await loop.run_in_executor(thread, lambda: Cache(path, clock=clock))
        finally:
            thread.shutdown(wait=False)
        return cls(cache, owned=True)

    def __repr__(self) -> str:
        return f"AsyncCache({self.cache!r})"

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` (a method of :attr:`cache`) on the cache thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    async def aclose(self) -> None:
        if self._owned:
            await self.call(self.cache.close)
        self._thread.shutdown(wait=True)


def remove_cache(path: Path) -> None:
    """Delete a cache file and SQLite's companions (``-wal``, ``-shm``), whatever state
    they are in (for ``cache clear`` on a corrupt file)."""
    for victim in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if victim.is_dir() and not victim.is_symlink():
            raise CacheError(f"{victim} is a folder, not a cache file; remove it yourself")
        victim.unlink(missing_ok=True)
