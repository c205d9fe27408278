"""The persistent cache: what makes nightly reruns cost only what is new or stale.

One SQLite file (standard library ``sqlite3``, WAL mode) holds:

* ``results``: one row per (normalised ISRC, variant), the variant being everything that
  changes the answer (API, market, match preference, search strategy). Found and not-found
  answers are kept, with when they were fetched; errors and rate-limited rows are never
  cached.
* ``meta``: the schema version, and per account the cooldown after a quota stop (the time
  before which no request is sent).
* ``ledger``: API requests sent per account and second, for a rolling 24-hour allowance.
* ``leases``: ISRCs a process is asking right now, with an expiry, so that two processes
  sharing the file ask each ISRC once; a killed process's leases expire.
* ``details``: enrichment by kind (``album``, ``audio-features``) and Spotify id, as JSON.

All calls are synchronous and meant to run off the event loop (the resolver runs them in a
single worker thread). Two processes may share one file: WAL lets readers proceed while
one writes, and a generous busy timeout makes a writer wait instead of failing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from platformdirs import user_cache_path
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from .errors import CacheError
from .models import MatchMethod, Result, Status, Track

__all__ = [
    "Allowance",
    "AsyncCache",
    "Cache",
    "CacheInfo",
    "default_cache_path",
    "remove_cache",
]

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
    method TEXT,
    market TEXT,
    searched TEXT,
    stored_at REAL,
    PRIMARY KEY (isrc, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    account TEXT NOT NULL,
    second INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (account, second)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    isrc TEXT NOT NULL,
    variant TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (isrc, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS details (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    fetched_at REAL NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
"""
_LOOKUP_BATCH = 500  # under SQLite's default limit of host parameters
_VERSION = "2"  # 1: variants without the API and strategy, one cooldown for all;
# no record of how an answer was found and where it was looked for
# The ledger's grain. A nightly run that starts when yesterday's did waits for yesterday's
# requests to leave the window; the grain is how much later each night's requests land, so
# it is kept small (a minute would push a quota-bound job a minute later every night).
_GRAIN = 1
_WINDOW = 86_400.0  # the quota's rolling window
ANY_ACCOUNT = "*"  # a cooldown carried over from version 1: it holds every account


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def default_cache_path() -> Path:
    """``~/.cache/isrc-resolver/cache.sqlite3`` or the platform's equivalent."""
    return user_cache_path("isrc-resolver", appauthor=False) / "cache.sqlite3"


@functools.lru_cache(maxsize=1024)
def _places(searched: str) -> tuple[str, ...]:
    """A stored ``searched`` list as a tuple; the few distinct ones are shared, not made
    again for each of millions of cached answers."""
    return tuple(searched.split(","))


def lease_owner() -> str:
    """A name for a process's leases: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str) -> bool:
    """False when a lease's owner is a process of this host that has ended (killed, say):
    its leases are void at once. Other hosts' leases live until they expire."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's process
    return True


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a version-1 cache to version 2, keeping every answer paid for. Its variants
    did not say which API answered: they are taken as Spotify's (the only one a version-1
    user could point a cache at with real credentials; demo runs used no cache unless told).
    Its one cooldown holds every account until it ends."""
    from .settings import DEFAULT_API_URL, SEARCH_STRATEGY, api_scope

    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is not None and row[0] == _VERSION:
        return
    with _Transaction(db):
        have = {r[1] for r in db.execute("PRAGMA table_info(results)")}
        for column, kind in (("method", "TEXT"), ("market", "TEXT"), ("searched", "TEXT")):
            if column not in have:  # how it was found, and where it was looked for
                db.execute(f"ALTER TABLE results ADD COLUMN {column} {kind}")
        if "stored_at" not in have:  # when it was committed (fetched_at: when answered)
            db.execute("ALTER TABLE results ADD COLUMN stored_at REAL")
        prefix = f"api={api_scope(DEFAULT_API_URL)};"
        db.execute(
            "UPDATE results SET variant = ? || variant || ? WHERE variant NOT LIKE 'api=%'",
            (prefix, f";search={SEARCH_STRATEGY}"),
        )
        db.execute(
            "UPDATE OR REPLACE meta SET key = ? WHERE key = 'cooldown_until'",
            (f"cooldown:{ANY_ACCOUNT}",),
        )
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (_VERSION,))


@dataclass(frozen=True, slots=True)
class Allowance:
    """One account's use of its rolling 24 hours, from the ledger."""

    account: str
    requests: int  # sent in the last 24 hours
    oldest: float | None  # when the oldest of them leaves the window
    cooldown_until: float | None


@dataclass(frozen=True, slots=True)
class CacheInfo:
    path: Path
    entries: int
    found: int
    not_found: int
    oldest: float | None
    newest: float | None
    cooldown_until: float | None  # the latest of the accounts' cooldowns
    size_bytes: int
    accounts: tuple[Allowance, ...] = ()


class Cache:
    """Results by ISRC and variant, with ages; plus the quota cooldown."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock  # the wall clock ages and the ledger are measured by
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
            for table in ("results", "details", "meta", "ledger", "leases"):
                db.execute(f"SELECT count(*) FROM {table}").fetchone()
            _migrate(db)
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
        stored_since: float | None = None,
    ) -> dict[str, Result]:
        """Fresh cached results for those of ``isrcs`` that have one; the ones past their
        age go into ``stale`` when it is given (to be kept if they cannot be refreshed).
        ``stored_since``: only answers committed after that time (another process's)."""
        now = self.clock()
        found_cutoff, miss_cutoff = now - max_age, now - not_found_max_age
        out: dict[str, Result] = {}
        rows = self._select_in(
            "SELECT isrc, status, track, match_count, fetched_at, method, market, searched "
            "FROM results WHERE variant = ? AND coalesce(stored_at, fetched_at) > ? "
            "AND isrc IN ({})",
            (variant, -math.inf if stored_since is None else stored_since),
            isrcs,
        )
        for isrc, status, track, match_count, fetched_at, method, market, searched in rows:
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
                    method=MatchMethod(method) if method else None,
                    market=market,
                    searched=_places(searched) if searched else (),
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

    def store(
        self,
        results: Iterable[Result],
        variant: str,
        *,
        owner: str | None = None,
        release: Sequence[str] | None = None,
        spent: tuple[str, int] | None = None,
    ) -> tuple[int, float | None] | None:
        """Save settled results (found / not found) in one transaction, with what goes
        with them: the leases of ``owner`` on these ISRCs (or on ``release``) end, and
        ``spent`` (account, requests) goes into the ledger. Returns, when ``spent`` is
        given, the account's requests in the last 24 hours (other processes' included)
        and when the oldest of them leaves the window."""
        results = list(results)
        now = self.clock()
        rows = [
            (
                r.isrc,
                variant,
                r.status.value,
                json.dumps(r.track.to_json(), ensure_ascii=False) if r.track else None,
                r.match_count,
                r.resolved_at or now,
                r.method.value if r.method else None,
                r.market,
                ",".join(r.searched) or None,
                now,
            )
            for r in results
            if r.status in (Status.FOUND, Status.NOT_FOUND)
        ]
        with self._transaction():
            if rows:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
            ended = [r.isrc for r in results] if release is None else release
            if owner is not None and ended:
                self._db.executemany(
                    "DELETE FROM leases WHERE isrc = ? AND variant = ? AND owner = ?",
                    [(isrc, variant, owner) for isrc in ended],
                )
            if spent is None:
                return None
            self._count(spent[0], spent[1], now)
            return self._window(spent[0], now)

    # -- the ledger: requests per account over a rolling 24 hours ---------------------

    def _count(self, account: str, requests: int, now: float) -> None:
        if requests > 0:
            self._db.execute(
                "INSERT INTO ledger VALUES (?, ?, ?) ON CONFLICT (account, second) "
                "DO UPDATE SET requests = requests + excluded.requests",
                (account, int(now // _GRAIN), requests),
            )

    def _window(self, account: str, now: float) -> tuple[int, float | None]:
        """Requests of ``account`` in the 24 hours to ``now``, and when the oldest of them
        leaves the window. A second counts until it has left entirely: the count errs
        on the side of sending less."""
        first = int((now - _WINDOW) // _GRAIN)
        total, oldest = self._db.execute(
            "SELECT SUM(requests), MIN(second) FROM ledger WHERE account = ? AND second >= ?",
            (account, first),
        ).fetchone()
        leaves = (oldest + 1) * _GRAIN + _WINDOW if oldest is not None else None
        return int(total or 0), leaves

    def count_requests(self, account: str, requests: int) -> tuple[int, float | None]:
        """Add ``requests`` sent now to ``account``'s ledger; returns its last 24 hours
        and when the oldest of them leaves the window."""
        now = self.clock()
        with self._transaction():
            self._count(account, requests, now)
            self._db.execute(
                "DELETE FROM ledger WHERE second < ?", (int((now - 2 * _WINDOW) // _GRAIN),)
            )
            return self._window(account, now)

    def allowance(self, account: str) -> Allowance:
        """What ``account`` has spent of its rolling 24 hours, and its cooldown."""
        requests, oldest = self._window(account, self.clock())
        return Allowance(account, requests, oldest, self.cooldown_until(account))

    # -- leases: who is asking what ---------------------------------------------------

    def claim(
        self,
        isrcs: Sequence[str],
        variant: str,
        owner: str,
        *,
        ttl: float,
        answered_since: float,
    ) -> tuple[list[str], list[str]]:
        """Lease those of ``isrcs`` no other process holds a live lease on and none has
        stored an answer for after ``answered_since`` (when the caller read the cache: an
        answer committed before that was in what it read); returns (claimed, others')."""
        now = self.clock()
        with self._transaction():
            theirs = {
                isrc
                for isrc, holder in self._select_in(
                    "SELECT isrc, owner FROM leases WHERE variant = ? AND owner != ? "
                    "AND expires > ? AND isrc IN ({})",
                    (variant, owner, now),
                    isrcs,
                )
                if owner_alive(holder)
            }
            theirs.update(
                isrc
                for (isrc,) in self._select_in(
                    "SELECT isrc FROM results WHERE variant = ? AND stored_at > ? AND isrc IN ({})",
                    (variant, answered_since),
                    isrcs,
                )
            )
            mine = [isrc for isrc in isrcs if isrc not in theirs]
            self._db.executemany(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                [(isrc, variant, owner, now + ttl) for isrc in mine],
            )
        return mine, [isrc for isrc in isrcs if isrc in theirs]

    def release(self, owner: str, isrcs: Sequence[str] | None = None) -> None:
        """End ``owner``'s leases (on ``isrcs``, or all), and any that have expired."""
        with self._transaction():
            if isrcs is None:
                self._db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            else:
                self._db.executemany(
                    "DELETE FROM leases WHERE owner = ? AND isrc = ?",
                    [(owner, isrc) for isrc in isrcs],
                )
            self._db.execute("DELETE FROM leases WHERE expires <= ?", (self.clock(),))

    # -- enrichment details -----------------------------------------------------------

    def lookup_details(
        self, kind: str, ids: Sequence[str], *, max_age: float
    ) -> dict[str, dict[str, Any]]:
        """Fresh cached details of ``kind`` for those of ``ids`` that have them."""
        rows = self._select_in(
            "SELECT id, data FROM details WHERE kind = ? AND fetched_at >= ? AND id IN ({})",
            (kind, self.clock() - max_age),
            ids,
        )
        return {row_id: json.loads(data) for row_id, data in rows}

    def store_details(self, kind: str, items: Mapping[str, Mapping[str, Any]]) -> None:
        now = self.clock()
        rows = [(kind, i, json.dumps(d, ensure_ascii=False), now) for i, d in items.items()]
        if rows:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO details VALUES (?, ?, ?, ?)", rows)

    # -- cooldown --------------------------------------------------------------------

    def cooldown_until(self, account: str) -> float | None:
        """Unix time before which ``account`` should send nothing, if a quota stop set one
        (its own, or one carried over from a version-1 cache, which holds every account)."""
        keys = (f"cooldown:{account}", f"cooldown:{ANY_ACCOUNT}")
        rows = self._db.execute("SELECT value FROM meta WHERE key IN (?, ?)", keys).fetchall()
        until = max((float(value) for (value,) in rows), default=None)
        return until if until is not None and until > self.clock() else None

    def set_cooldown(self, account: str, until: float) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"cooldown:{account}", repr(until))
            )

    def clear_cooldown(self, account: str) -> None:
        with self._transaction():
            self._db.execute(
                "DELETE FROM meta WHERE key IN (?, ?)",
                (f"cooldown:{account}", f"cooldown:{ANY_ACCOUNT}"),
            )

    # -- housekeeping ----------------------------------------------------------------

    def info(self) -> CacheInfo:
        counts: dict[str, Any] = dict(
            self._db.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall()
        )
        oldest, newest = self._db.execute(
            "SELECT MIN(fetched_at), MAX(fetched_at) FROM results"
        ).fetchone()
        now = self.clock()
        names = {
            key.removeprefix("cooldown:")
            for (key,) in self._db.execute("SELECT key FROM meta WHERE key LIKE 'cooldown:%'")
        }
        names.update(
            account
            for (account,) in self._db.execute(
                "SELECT DISTINCT account FROM ledger WHERE second >= ?",
                (int((now - _WINDOW) // _GRAIN),),
            )
        )
        accounts = tuple(self.allowance(name) for name in sorted(names))
        cooldowns = [a.cooldown_until for a in accounts if a.cooldown_until is not None]
        return CacheInfo(
            path=self.path,
            entries=sum(counts.values()),
            found=counts.get(Status.FOUND.value, 0),
            not_found=counts.get(Status.NOT_FOUND.value, 0),
            oldest=oldest,
            newest=newest,
            cooldown_until=max(cooldowns, default=None),
            size_bytes=self.path.stat().st_size if self.path.exists() else 0,
            accounts=tuple(a for a in accounts if a.requests or a.cooldown_until),
        )

    def clear(self) -> int:
        """Delete every cached result and the cooldowns; returns how many results went.
        The ledger stays: the requests it counts were sent, and still count against the
        quota until they leave the window."""
        with self._transaction():
            count: int = self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            self._db.execute("DELETE FROM results")
            self._db.execute("DELETE FROM details")
            self._db.execute("DELETE FROM leases")
            self._db.execute("DELETE FROM meta WHERE key != 'schema'")
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
