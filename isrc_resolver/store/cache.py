"""The persistent cache: what makes nightly reruns cost only what is new or stale.

One SQLite file (standard library ``sqlite3``, WAL mode); its tables are described in
:mod:`.schema`. :class:`Cache` is the front over the parts that share its one connection:
:class:`.results.Results`, :class:`.ledger.Ledger` (with the cooldowns),
:class:`.leases.Leases` and :class:`.details.Details`. A call that touches several of them
(an answer stored, its lease ended and its request counted) is one transaction here.

All calls are synchronous and meant to run off the event loop (:class:`AsyncCache` runs
them on one worker thread). Two processes may share one file: WAL lets readers proceed
while one writes, and a generous busy timeout makes a writer wait instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ..errors import EnvironmentFailure
from ..models import Candidate, Result, Status
from .details import Details
from .history import History
from .leases import Leases
from .ledger import Allowance, Ledger
from .results import Results
from .schema import connect, explain
from .sql import Transaction

__all__ = ["AsyncCache", "Cache", "CacheInfo", "set_aside"]

P = ParamSpec("P")
T = TypeVar("T")


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
    """Results by ISRC and variant, with ages; the ledger, cooldowns, leases and details."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock  # the wall clock ages and the ledger are measured by
        self._db = connect(self.path)  # raises CacheError, with advice that fits the cause
        self.results = Results(self._db, clock)
        self.ledger = Ledger(self._db, clock)
        self.leases = Leases(self._db)
        self.details = Details(self._db, clock)
        self.history = History(self._db)

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction. The machine's refusal half-way through a run (a full
        disk, a file made read-only, a lock held past the busy timeout) is an
        :class:`EnvironmentFailure` naming this file: the run stops sending, since what
        it sends could no longer be counted, and writes its output."""
        try:
            with Transaction(self._db):
                yield
        except OSError as exc:
            raise EnvironmentFailure.from_os(exc, "cannot write the cache", self.path) from None
        except sqlite3.OperationalError as exc:
            failure = explain(exc, self.path)
            if failure.reason == "damaged":  # not the machine's: a bug or a broken file
                raise
            raise EnvironmentFailure(str(failure), path=str(self.path)) from None

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
        light: bool = False,
    ) -> dict[str, Result]:
        """Fresh cached answers; the stale ones into ``stale`` (:meth:`Results.lookup`)."""
        return self.results.lookup(
            isrcs,
            variant,
            max_age=max_age,
            not_found_max_age=not_found_max_age,
            stale=stale,
            stored_since=stored_since,
            light=light,
        )

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
        now = self.clock()
        with self._transaction():
            self.history.keep_results(results, variant, now)
            self.results.put(results, variant, now)
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

    def claim(
        self, isrcs: Sequence[str], variant: str, owner: str, *, ttl: float, answered_since: float
    ) -> tuple[list[str], list[str]]:
        """Lease those of ``isrcs`` no other process holds a live lease on and none has
        stored an answer for after ``answered_since`` (when the caller read the cache: an
        answer committed before that was in what it read); returns (claimed, others')."""
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

    def report(self) -> dict[str, Any]:
        """What monitoring wants to know, as plain values: per account its requests per
        day over the last 30 days, its last 24 hours and its cooldown; the answers by
        status and age (``cache info --format json``)."""
        info = self.info()
        return {
            "path": str(self.path),
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
        """A consistent copy of this cache at ``target`` (SQLite's online backup: other
        processes may go on writing meanwhile), mode 0600, moved into place whole."""
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            with contextlib.closing(sqlite3.connect(tmp)) as copy:
                self._db.backup(copy)
            os.replace(tmp, target)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            code = exc.errno if isinstance(exc, OSError) else None
            raise EnvironmentFailure(
                f"cannot write the backup {target}: {exc}", path=str(target), code=code
            ) from None

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
        # Giving the space back is housekeeping: on a full disk it cannot be done, and the
        # answers are gone all the same.
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("VACUUM")
        return count


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
