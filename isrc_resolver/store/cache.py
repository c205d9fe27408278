"""The persistent cache: what makes nightly reruns cost only what is new or stale.

Two backends keep the same tables (described in :mod:`.sqlite`): a SQLite file
(:mod:`.sqlite`, for one host) and a PostgreSQL database (:mod:`.postgres`, for a team's
hosts). :class:`Cache` is the front over the parts that share the backend's connection:
:class:`.results.Results`, :class:`.ledger.Ledger` (with the cooldowns),
:class:`.leases.Leases` and :class:`.details.Details`. A call that touches several of them
(an answer stored, its lease ended and its request counted) is one transaction here. The
pipeline does not know which backend it has.

All calls are synchronous and meant to run off the event loop (:class:`AsyncCache` runs
them on one worker thread). Several processes may share one cache: on SQLite, WAL lets
readers proceed while one writes, and a generous busy timeout makes a writer wait instead
of failing; on PostgreSQL, writers take turns on a transaction lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from ..database import DatabaseURL
from ..errors import EnvironmentFailure
from ..models import Candidate, Result, Status
from ..settings import cache_location
from .copy import Copied, copy_rows
from .details import Details
from .history import History
from .leases import Leases, Sessions
from .ledger import Allowance, Ledger
from .results import Results
from .sql import Database, mark, next_mark
from .sqlite import SqliteBackend

__all__ = ["AsyncCache", "Cache", "CacheInfo", "Location", "set_aside"]

P = ParamSpec("P")
T = TypeVar("T")

Location = Path | DatabaseURL  # where a cache lives: a SQLite file or a PostgreSQL database


@dataclass(frozen=True, slots=True)
class CacheInfo:
    path: Location
    entries: int
    found: int
    not_found: int
    oldest: float | None
    newest: float | None
    cooldown_until: float | None  # the latest of the accounts' cooldowns
    size_bytes: int
    accounts: tuple[Allowance, ...] = ()


class Backend(Protocol):
    """What a cache keeps its tables in (:mod:`.sqlite`, :mod:`.postgres`)."""

    @property
    def location(self) -> Location: ...

    @property
    def db(self) -> Database: ...

    @property
    def sessions(self) -> Sessions | None:
        """How leases are tied to their owners; None: to this host's processes."""

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def size_bytes(self) -> int: ...

    def compact(self) -> None: ...


class Cache:
    """Results by ISRC and variant, with ages; the ledger, cooldowns, leases and details."""

    def __init__(
        self,
        path: str | os.PathLike[str] | DatabaseURL,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.location = cache_location(path)  # a URL that does not parse: ConfigurationError
        self.clock = clock  # the wall clock ages and the ledger are measured by
        # Either raises CacheError, with advice that fits the cause, or EnvironmentFailure
        # for a database that cannot be reached.
        self._backend = _backend(self.location)
        self._db = self._backend.db
        self.results = Results(self._db, clock)
        self.ledger = Ledger(self._db, clock)
        self.leases = Leases(self._db, self._backend.sessions)
        self.details = Details(self._db, clock)
        self.history = History(self._db)

    def __repr__(self) -> str:
        return f"Cache({str(self.location)!r})"

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[None]:
        """One write transaction; the machine's refusal half-way through a run (a full
        disk, a read-only file, a database gone) is an EnvironmentFailure naming it."""
        return self._backend.transaction()

    # -- results ---------------------------------------------------------------------

    def lookup(
        self,
        isrcs: Sequence[str],
        variant: str,
        *,
        max_age: float,
        not_found_max_age: float,
        stale: dict[str, Result] | None = None,
        stored_since: int | None = None,
        light: bool = False,
    ) -> dict[str, Result]:
        """Fresh cached answers; the stale ones into ``stale`` (:meth:`Results.lookup`)."""
        return self.results.lookup(
            isrcs, variant, max_age=max_age, not_found_max_age=not_found_max_age, stale=stale,
            stored_since=stored_since, light=light,
        )  # fmt: skip

    def candidates(
        self, isrcs: Sequence[str], variant: str | None
    ) -> dict[str, tuple[tuple[Candidate, ...], str | None]]:
        """The candidates kept with these answers, and the reason for each choice."""
        return self.results.candidates(isrcs, variant)

    def store(
        self,
        results: Iterable[Result],
        variant: str,
        *,
        owner: str | None = None,
        release: Sequence[str] | None = None,
    ) -> None:
        """Save settled results (found / not found) in one transaction, and end the leases
        of ``owner`` on these ISRCs (or on ``release``) in it."""
        results = list(results)
        with self._transaction():
            # The time is read once the transaction holds the write lock: a writer that
            # waited its turn does not store answers as older than they are.
            now = self.clock()
            self.history.keep_results(results, variant, now)
            self.results.put(results, variant, now, next_mark(self._db))
            ended = [r.isrc for r in results] if release is None else release
            if owner is not None and ended:
                self.leases.end(ended, variant, owner)

    # -- the ledger and cooldowns ----------------------------------------------------

    def reserve(
        self, account: str, wanted: int, quota: int | None
    ) -> tuple[int, int, int, float | None]:
        """Count up to ``wanted`` requests of ``account`` now, as many as ``quota`` leaves
        room for in its last 24 hours (all of them without a quota), in one transaction
        (another process reserving at the same moment waits for it). Returns how many
        were granted, the ledger second they were counted in, the account's total in the
        window after them, and when the oldest counted request leaves the window."""
        now = self.clock()
        with self._transaction():
            total, frees_at = self.ledger.window(account, now)
            granted = wanted if quota is None else max(0, min(wanted, quota - total))
            second = self.ledger.count(account, granted, now)
            if granted:
                self.ledger.forget_old(now)
                total, frees_at = self.ledger.window(account, now)
            return granted, second, total, frees_at

    def give_back(self, account: str, count: int, second: int) -> None:
        """Uncount ``count`` requests reserved at ``second`` and never sent."""
        with self._transaction():
            self.ledger.uncount(account, count, second)

    def allowance(self, account: str) -> Allowance:
        return self.ledger.allowance(account)

    def cooldown_until(self, account: str) -> float | None:
        return self.ledger.cooldown_until(account)

    def set_cooldown(self, account: str, until: float) -> None:
        with self._transaction():
            self.ledger.set_cooldown(account, until)

    def clear_cooldown(self, account: str) -> None:
        with self._transaction():
            self.ledger.clear_cooldown(account)

    def clear_cooldowns(self) -> int:
        """End every account's cooldown; returns how many there were."""
        with self._transaction():
            return self.ledger.clear_cooldowns()

    # -- leases: who is asking what ---------------------------------------------------

    def mark(self) -> int:
        """Where the cache's commits of answers stand (:func:`.sql.mark`)."""
        return mark(self._db)

    def claim(
        self, isrcs: Sequence[str], variant: str, owner: str, *, ttl: float, answered_since: int
    ) -> tuple[list[str], list[str]]:
        """Lease those of ``isrcs`` no other process holds a live lease on and none has
        stored an answer for after the mark ``answered_since`` (taken when the caller read
        the cache: an answer committed before it was in what it read); returns (claimed,
        others')."""
        now = self.clock()
        with self._transaction():
            theirs = self.leases.held_by_others(isrcs, variant, owner, now)
            theirs |= self.results.answered_since(isrcs, variant, answered_since)
            mine = [isrc for isrc in isrcs if isrc not in theirs]
            self.leases.take(mine, variant, owner, now + ttl)
        return mine, [isrc for isrc in isrcs if isrc in theirs]

    def release(self, owner: str, isrcs: Sequence[str] | None = None) -> None:
        """End ``owner``'s leases (on ``isrcs``, or all), and any that have expired."""
        with self._transaction():
            self.leases.release(owner, isrcs, self.clock())

    # -- enrichment details -----------------------------------------------------------

    def lookup_details(
        self, kind: str, ids: Sequence[str], *, max_age: float
    ) -> dict[str, dict[str, Any]]:
        return self.details.lookup(kind, ids, max_age=max_age)

    def store_details(
        self, kind: str, items: Mapping[str, Mapping[str, Any]], *, keep_history: bool = False
    ) -> None:
        """``keep_history``: a store's answers by ISRC, each one they change kept."""
        if items:
            with self._transaction():
                if keep_history:
                    self.history.keep_details(kind, items, self.clock())
                self.details.put(kind, items, self.clock())

    # -- housekeeping ----------------------------------------------------------------

    def info(self) -> CacheInfo:
        counts, oldest, newest = self.results.counts()
        accounts = tuple(self.ledger.allowance(name) for name in self.ledger.accounts())
        cooldowns = [a.cooldown_until for a in accounts if a.cooldown_until is not None]
        return CacheInfo(
            path=self.location,
            entries=sum(counts.values()),
            found=counts.get(Status.FOUND.value, 0),
            not_found=counts.get(Status.NOT_FOUND.value, 0),
            oldest=oldest,
            newest=newest,
            cooldown_until=max(cooldowns, default=None),
            size_bytes=self._backend.size_bytes(),
            accounts=tuple(a for a in accounts if a.requests or a.cooldown_until),
        )

    def report(self) -> dict[str, Any]:
        """What monitoring wants to know, as plain values: per account its requests per
        day over the last 30 days, its last 24 hours and its cooldown; the answers by
        status and age (``cache info --format json``)."""
        info = self.info()
        return {
            "path": str(self.location),
            "size_bytes": info.size_bytes,
            "entries": info.entries,
            "answers": self.results.by_age(self.clock()),
            "accounts": [
                {
                    "account": a.account,
                    "requests_24h": a.requests,
                    "oldest_leaves_at": a.oldest,
                    "cooldown_until": a.cooldown_until,
                    "per_day": self.ledger.per_day(a.account),
                }
                for a in map(self.ledger.allowance, self.ledger.accounts(days=30))
            ],
        }

    def backup(self, target: Path) -> None:
        """A consistent copy of this cache at ``target``, a SQLite cache file of mode
        0600, moved into place whole (a database's is copied into a new file)."""
        if isinstance(self._backend, SqliteBackend):
            self._backend.backup(target)
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            with Cache(tmp, clock=self.clock) as copy:
                copy.copy_from(self)
            os.replace(tmp, target)
        except OSError as exc:
            raise EnvironmentFailure.from_os(exc, "cannot write the backup", target) from None
        finally:
            for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm"))):
                with contextlib.suppress(OSError):
                    os.unlink(leftover)

    def copy_from(self, source: Cache) -> Copied:
        """Merge ``source``'s answers, ledger, history and cooldowns into this cache
        (:mod:`.copy`): ``cache copy``."""
        return copy_rows(source._db, self._db, self._transaction)

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
        self._backend.compact()
        return count


class AsyncCache:
    """A :class:`Cache` used from the event loop: every call runs on one worker thread of
    its own, so SQLite never blocks the loop and calls keep their order."""

    def __init__(self, cache: Cache, *, owned: bool) -> None:
        self.cache = cache
        self._owned = owned  # close the Cache with this wrapper
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isrc-cache")

    @classmethod
    async def open(cls, path: Location, *, clock: Callable[[], float]) -> AsyncCache:
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

    async def cooldown_until(self, account: str) -> float | None:
        return await self.call(self.cache.cooldown_until, account)

    async def set_cooldown(self, account: str, until: float) -> None:
        await self.call(self.cache.set_cooldown, account, until)

    async def clear_cooldown(self, account: str) -> None:
        await self.call(self.cache.clear_cooldown, account)

    async def aclose(self) -> None:
        if self._owned:
            await self.call(self.cache.close)
        self._thread.shutdown(wait=True)


def _backend(location: Location) -> Backend:
    if isinstance(location, DatabaseURL):
        from .postgres import PostgresBackend  # the driver only when a database is named

        return PostgresBackend(location)
    from .sqlite import SqliteBackend

    return SqliteBackend(location)


def set_aside(path: Path, when: float) -> Path:
    """Move a cache that does not read back (and its ``-wal`` and ``-shm``) aside, to
    ``NAME.damaged-STAMP`` beside it: nothing is deleted, so what it held can still be
    looked into. Returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            os.replace(source, kept.with_name(kept.name + suffix))
    return kept
