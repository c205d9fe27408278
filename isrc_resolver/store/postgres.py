"""The PostgreSQL backend of :class:`~.cache.Cache`: one database that several hosts share.

The driver is psycopg 3 with its pool (``psycopg_pool``). The store's calls are
synchronous and run on the cache's own thread (:class:`~.cache.AsyncCache`), so the
driver's plain interface serves; one pool per database and process lends each open cache
a connection, so a process holds two or three connections however many workers it runs.

* The tables are those of SQLite (:mod:`.sqlite`), with PostgreSQL's types; the schema is
  versioned in ``meta`` and created or migrated under a lock, and a newer schema than this
  release knows is refused, never migrated down.
* Writers take turns on one transaction-level advisory lock, as SQLite's writers take
  turns on its write lock: the ledger's count-then-grant and the leases' look-then-take
  are each one turn, so the ceiling holds across hosts.
* Leases are tied to a database session: each open cache holds a session-level advisory
  lock of its own, and stamps its leases with its key. A lease whose key no live session
  holds is void, whichever host took it, the moment that host's process dies (the server
  drops the session with its connection); the lease's expiry covers a session that hangs.
* The database down or unreachable, before or during a run, is the environment's failure
  (exit 1), named by host and port; the password never shows (:mod:`..database`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..database import DatabaseURL, scrub
from ..errors import CacheError, ConfigurationError, EnvironmentFailure, StoreLost
from .sql import Rows, set_meta

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["VERSION", "PostgresBackend"]

VERSION = "1"  # the PostgreSQL schema's own version (SQLite's counts separately)
_LOCKS = 0x15C0  # advisory locks' first key: isrc-resolver's
_WRITE = 0  # second key of the writers' turn; sessions use 1 .. 2**31 - 1
_POOL_SIZE = 3  # connections one process may hold on one database
_CONNECT_SECONDS = 10.0

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    isrc TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    track TEXT,
    match_count INTEGER,
    fetched_at DOUBLE PRECISION NOT NULL,
    method TEXT,
    market TEXT,
    searched TEXT,
    stored_at DOUBLE PRECISION,
    conflict INTEGER,
    candidates TEXT,
    stored_seq BIGINT,
    PRIMARY KEY (isrc, variant)
);
CREATE TABLE IF NOT EXISTS ledger (
    account TEXT NOT NULL,
    second BIGINT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (account, second)
);
CREATE TABLE IF NOT EXISTS leases (
    isrc TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    owner TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (isrc, variant)
);
CREATE TABLE IF NOT EXISTS details (
    kind TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    data TEXT NOT NULL,
    fetched_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS history (
    isrc TEXT COLLATE "C" NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    id TEXT,
    title TEXT,
    fetched_at DOUBLE PRECISION,
    replaced_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_isrc ON history (isrc, replaced_at);
"""
# Migrations from each older version to the next: none yet (version 1 is the first).
_MIGRATIONS: dict[str, tuple[str, ...]] = {}


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ConfigurationError(
            "a PostgreSQL cache needs the driver: pip install 'isrc-resolver[postgresql]' "
            "(psycopg 3 and its pool), or name a cache file"
        ) from None
    return psycopg, psycopg_pool


def _failure(exc: BaseException, url: DatabaseURL, doing: str) -> EnvironmentFailure:
    """The database's refusal as the environment's failure, named by host and port (a
    connection lost once open: :class:`StoreLost`)."""
    cause = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
    if doing == "lost":
        return StoreLost(
            f"lost the cache database at {url.where} ({url.masked}): {cause}; check that "
            "the server is up and reachable from here, then run again (the answers "
            "committed so far are kept, and the run goes on from them)",
            path=url.masked,
        )
    return EnvironmentFailure(
        f"{doing} the cache database at {url.where} ({url.masked}): {cause}; check that "
        "the server is up and reachable from here, then run again",
        path=url.masked,
    )


# What the server says when it is up but will not take this URL: the URL is to be fixed
# (exit 2), where a server down or unreachable is to be waited for (exit 1).
_REFUSALS = ("authentication failed", "does not exist", "pg_hba.conf", "permission denied")


def _refused(exc: BaseException, url: DatabaseURL) -> CacheError | None:
    text = str(exc)
    if not any(refusal in text for refusal in _REFUSALS):
        return None
    cause = scrub(text.strip().splitlines()[0], url)
    return CacheError(
        f"the cache database at {url.where} ({url.masked}) refused this URL: {cause}; fix "
        "the user, password or database in --cache or ISRC_RESOLVER_CACHE (the server is "
        "up and answering)",
        reason="refused",
    )


@functools.lru_cache(maxsize=256)
def _marks(sql: str) -> str:
    """The store's SQL (``?`` marks) in psycopg's dialect (``%s``; a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection:
    """A psycopg connection (autocommit) that takes the store's SQL, as ``sqlite3`` does;
    the driver's failures come out as :class:`EnvironmentFailure`."""

    def __init__(self, conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
        self.conn = conn
        self._url = url
        psycopg, psycopg_pool = _driver()  # once, not at every statement
        self._lost = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        with self._translated():
            return self.conn.execute(_marks(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Rows:
        rows = list(parameters)
        with self._translated():
            cursor = self.conn.cursor()
            if rows:
                cursor.executemany(_marks(sql), rows)
            return cursor

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except self._lost as exc:
            raise _failure(exc, self._url, "lost") from None


class _Sessions:
    """Lease owners as database sessions: a lease is stamped with its cache's session key,
    and lives while some session (on any host) holds that key's advisory lock."""

    def __init__(self, db: _Connection, key: int) -> None:
        self._db = db
        self._key = key

    def mark(self, owner: str) -> str:
        return f"{owner}|pg:{self._key}"

    def alive(self, holders: Iterable[str]) -> set[str]:
        live = {
            int(objid)
            for (objid,) in self._db.execute(
                "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = ? "
                "AND objsubid = 2 AND granted",
                (_LOCKS,),
            )
        }
        out = set()
        for holder in holders:
            key = holder.rpartition("|pg:")[2]
            if not key.isdigit() or int(key) in live:
                out.add(holder)
        return out


_pools: dict[str, psycopg_pool.ConnectionPool[Any]] = {}
# The pool's own reports (a connection discarded, a reconnection refused) would repeat, less
# clearly, the one message the run gives when the database goes away.
logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
_pools_lock = threading.Lock()


def _pool(url: DatabaseURL) -> psycopg_pool.ConnectionPool[Any]:
    """This process's pool for ``url``: opened at first use, closed at exit."""
    psycopg, psycopg_pool = _driver()
    with _pools_lock:
        pool = _pools.get(url.secret())
        if pool is None:
            # Connecting once by hand first: a refusal (down, wrong password, no such
            # database) is told as the server said it, not as a pool's timeout.
            try:
                psycopg.connect(url.secret(), connect_timeout=_CONNECT_SECONDS).close()
            except psycopg.Error as exc:
                raise _refused(exc, url) or _failure(exc, url, "cannot reach") from None
            pool = psycopg_pool.ConnectionPool(
                url.secret(),
                min_size=1,
                max_size=_POOL_SIZE,
                kwargs={"autocommit": True, "connect_timeout": _CONNECT_SECONDS},
                timeout=60.0,
                name="isrc-resolver",
                open=True,
            )
            _pools[url.secret()] = pool
        return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            with contextlib.suppress(Exception):
                pool.close(timeout=1.0)
        _pools.clear()


class PostgresBackend:
    """A cache in a PostgreSQL database: a connection lent by the process's pool for as
    long as the cache is open, its session key, its write turns."""

    def __init__(self, url: DatabaseURL) -> None:
        psycopg, psycopg_pool = _driver()
        self.location = url
        self._url = url
        self._pool = _pool(url)
        try:
            conn = self._pool.getconn()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise _failure(exc, url, "cannot reach") from None
        self._conn = _Connection(conn, url)
        self.db = self._conn
        try:
            _prepare(self._conn, url)
            self._key = secrets.randbelow(2**31 - 2) + 1
            self._conn.execute("SELECT pg_advisory_lock(?, ?)", (_LOCKS, self._key))
        except BaseException:
            self._pool.putconn(conn)
            raise
        self.sessions = _Sessions(self._conn, self._key)

    def close(self) -> None:
        conn = self._conn.conn
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_advisory_unlock_all()")
        with contextlib.suppress(Exception):
            self._pool.putconn(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write turn: BEGIN, the writers' lock, the work, COMMIT (or ROLLBACK)."""
        self._conn.execute("BEGIN")
        try:
            self._conn.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCKS, _WRITE))
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self._conn.conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def size_bytes(self) -> int:
        (size,) = self._conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
            "AND n.nspname = current_schema() "
            "AND c.relname IN ('results', 'meta', 'ledger', 'leases', 'details', 'history')"
        ).fetchone()
        return int(size)

    def compact(self) -> None:
        """Nothing to do: PostgreSQL's autovacuum gives the space back."""


def _prepare(db: _Connection, url: DatabaseURL) -> None:
    """Create the tables, or check and migrate them, in one locked turn: several hosts
    opening a new database at once create it once."""
    db.execute("BEGIN")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?, ?)", (_LOCKS, _WRITE))
        ours = db.execute("SELECT to_regclass('results'), to_regclass('meta')").fetchone()
        version = None
        if ours[1] is not None:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            version = row[0] if row else None
        if ours[0] is not None and version is None:
            raise CacheError(
                f"the database {url.masked} has a table 'results' that is not an "
                "isrc-resolver cache's; nothing in it was changed. Name another database "
                "(or another schema, with ?options=-csearch_path%3DNAME)",
                reason="not_a_cache",
            )
        if version is not None and not (version.isdigit() and int(version) <= int(VERSION)):
            raise CacheError(
                f"the cache database {url.masked} was written by a newer isrc-resolver "
                f"(schema {version}; this release reads up to {VERSION}); nothing in it "
                "was changed. Upgrade isrc-resolver, or name another database",
                reason="newer",
            )
        for statement in filter(str.strip, _TABLES.split(";")):
            db.execute(statement)
        while version is not None and version != VERSION:
            for statement in _MIGRATIONS[version]:
                db.execute(statement)
            version = str(int(version) + 1)
        set_meta(db, "schema", VERSION)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            db.conn.execute("ROLLBACK")
        raise
