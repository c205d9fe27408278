"""The SQLite backend of :class:`~.cache.Cache`: one file (standard library ``sqlite3``,
WAL mode), safe for several processes of one host. Its tables (PostgreSQL keeps the same,
see :mod:`.postgres`):

* ``results``: one row per (normalised ISRC, variant), the variant being everything that
  changes the answer (API, market, match preference, search strategy). Found and not-found
  answers are kept, with when they were fetched; errors and rate-limited rows never are.
* ``meta``: the schema version, and per account the cooldown after a quota stop.
* ``ledger``: API requests sent per account and second, for a rolling 24-hour allowance.
* ``leases``: ISRCs a process is asking right now, with an expiry.
* ``details``: enrichment by kind (``album``, ``audio-features``) and Spotify id, and the
  second catalogues' answers by ISRC, as JSON.
* ``history``: answers that a different one replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from ..errors import CacheError, EnvironmentFailure
from .sql import ANY_ACCOUNT, Database, Transaction, locked

__all__ = ["VERSION", "SqliteBackend", "connect", "explain", "migrate"]

_TABLES = """
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
    conflict INTEGER,
    candidates TEXT,
    stored_seq INTEGER,
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
CREATE TABLE IF NOT EXISTS history (
    isrc TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    id TEXT,
    title TEXT,
    fetched_at REAL,
    replaced_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_isrc ON history (isrc, replaced_at);
"""
VERSION = "4"  # 1: variants without the API and strategy, one cooldown for all;
# no record of how an answer was found and where it was looked for. 2: no candidates and
# no ISRC conflict flag (answers of version 2 and before read back without them). 3: no
# commit mark (stored_seq): its answers count as committed before any run's read

# What every version-1 answer was, written out as version 1 knew it: the API it could
# only have come from with real credentials, and its one search strategy. Literal on
# purpose: today's defaults may change, a version-1 file's past does not.
_V1_API = "api=https://api.spotify.com/v1;"
_V1_STRATEGY = ";search=isrc"


_SQLITE = b"SQLite format 3\x00"
BUSY_SECONDS = 60.0  # how long a writer waits for another process's transaction


def connect(path: Path) -> sqlite3.Connection:
    """Connect, set up, and prove the file is a readable, writable cache: every problem
    shows here, before any request is sent, not half-way through a run. A file that is
    not an isrc-resolver cache, or one a newer release wrote, is refused untouched."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise explain(exc, path) from None
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "a device or another special file"
        raise CacheError(
            f"the cache {path} is {what}, not a file; name a file with cache=",
            reason="not_a_cache",
        )
    fresh = not path.exists() or path.stat().st_size == 0
    if not fresh:
        _check_header(path)
    _check_writable(path, fresh)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
    db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        if not fresh:
            _check_ours(db, path)
        if fresh:
            os.chmod(path, 0o600)
        # Switching a new file to WAL takes an exclusive lock that SQLite may refuse at
        # once ("database is locked") instead of waiting on the busy timeout, when another
        # run opens the same new cache at the same moment. Retrying briefly settles it.
        for attempt in Retrying(
            retry=retry_if_exception(locked),
            stop=stop_after_delay(30),
            wait=wait_random(0.01, 0.2),
            reraise=True,
        ):
            with attempt:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_TABLES)
        for table in ("results", "details", "meta", "ledger", "leases"):
            db.execute(f"SELECT count(*) FROM {table}").fetchone()
        migrate(db)
        db.execute("BEGIN IMMEDIATE")  # can we write? (a read-only file says so here)
        db.execute("ROLLBACK")
    except (sqlite3.Error, OSError) as exc:
        db.close()
        raise explain(exc, path) from None
    except BaseException:
        db.close()
        raise
    return db


def _check_header(path: Path) -> None:
    """A file that is not SQLite at all (a CSV given as --cache, say) is never opened as a
    database, so nothing can write into it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE))
    except OSError as exc:
        raise explain(exc, path) from None
    if head != _SQLITE:
        raise CacheError(
            f"{path} is not an isrc-resolver cache (not a SQLite file); nothing in it was "
            "changed. Name another file with cache=",
            reason="not_a_cache",
        )


def _check_writable(path: Path, fresh: bool) -> None:
    """SQLite opens a read-only file without a word and fails at the first write; the
    folder must take the ``-wal`` and ``-shm`` files beside it."""
    if not fresh and not os.access(path, os.W_OK):
        raise explain(PermissionError(errno.EACCES, "the file is read-only", str(path)), path)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        folder = PermissionError(errno.EACCES, "its folder is not writable", str(path.parent))
        raise explain(folder, path)


def _check_ours(db: sqlite3.Connection, path: Path) -> None:
    """A SQLite file of ours, of this schema or an older one."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    # No table yet: a cache another run is creating this moment (its first table is results).
    if tables and "results" not in tables:
        db.close()
        raise CacheError(
            f"{path} is a SQLite database but not an isrc-resolver cache; nothing in it was "
            "changed. Name another file with cache=",
            reason="not_a_cache",
        )
    row = (
        db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if ("meta" in tables)
        else None
    )
    if row is not None and not (str(row[0]).isdigit() and int(row[0]) <= int(VERSION)):
        db.close()
        raise CacheError(
            f"the cache {path} was written by a newer isrc-resolver (schema {row[0]}; this "
            f"release reads up to {VERSION}); nothing in it was changed. Upgrade "
            "isrc-resolver, or name another file with cache=",
            reason="newer",
        )


_ADVICE = {
    "damaged": "it does not read back as a cache; `isrc-resolve cache clear --cache {path}` "
    "replaces it with an empty one (keeping a copy), or run with cache=None",
    "locked": "another process holds it (this one waited {busy:.0f} s); let that run "
    "finish, or name another file with cache=",
    "read_only": "make it writable for this user, or name another file with cache=",
    "full": "free some space there, or name a cache on another disk with cache=",
    "io": "the machine could not read or write it (a network share without working "
    "locks, a failing disk, its folder removed); nothing in it was changed: fix that, or "
    "name a cache on a local disk with cache=",
    "folder": "make the folder writable, name a cache elsewhere with cache=, or set "
    "XDG_CACHE_HOME (the default cache lives under it, or under HOME)",
}


def explain(exc: BaseException, path: Path) -> CacheError:
    """A failure of the cache file as a :class:`CacheError` whose advice fits its cause."""
    text = str(exc)
    code = exc.errno if isinstance(exc, OSError) else None
    if code in (errno.ENOSPC, errno.EDQUOT) or "full" in text:
        reason = "full"
    elif "locked" in text:
        reason = "locked"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text:
        reason = (
            "folder"
            if "folder" in text or (isinstance(exc, OSError) and exc.filename == str(path.parent))
            else "read_only"
        )
    elif "disk I/O error" in text or "unable to open database file" in text:
        reason = "io"
    else:
        reason = "damaged"
    cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else text
    advice = _ADVICE[reason].format(path=path, busy=BUSY_SECONDS)
    return CacheError(f"the cache {path} cannot be used ({cause}): {advice}", reason=reason)


def migrate(db: sqlite3.Connection) -> None:
    """Bring an older cache to this version, keeping every answer paid for. Version 2
    gains two empty columns (candidates and conflicts are not known for its answers). A
    version-1 cache's variants
    did not say which API answered: they are taken as Spotify's (the only one a version-1
    user could point a cache at with real credentials; demo runs used no cache unless told).
    Its one cooldown holds every account until it ends."""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is not None and row[0] == VERSION:
        return
    with Transaction(db):
        have = {r[1] for r in db.execute("PRAGMA table_info(results)")}
        for column, kind in (("method", "TEXT"), ("market", "TEXT"), ("searched", "TEXT")):
            if column not in have:  # how it was found, and where it was looked for
                db.execute(f"ALTER TABLE results ADD COLUMN {column} {kind}")
        if "stored_at" not in have:  # when it was committed (fetched_at: when answered)
            db.execute("ALTER TABLE results ADD COLUMN stored_at REAL")
        for column, kind in (
            ("conflict", "INTEGER"),
            ("candidates", "TEXT"),
            ("stored_seq", "INTEGER"),
        ):
            if column not in have:  # the tracks a search returned, and do they conflict
                db.execute(f"ALTER TABLE results ADD COLUMN {column} {kind}")
        db.execute(
            "UPDATE results SET variant = ? || variant || ? WHERE variant NOT LIKE 'api=%'",
            (_V1_API, _V1_STRATEGY),
        )
        db.execute(
            "UPDATE OR REPLACE meta SET key = ? WHERE key = 'cooldown_until'",
            (f"cooldown:{ANY_ACCOUNT}",),
        )
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (VERSION,))


class SqliteBackend:
    """A cache file: its connection, its write transactions, its copy and its size."""

    def __init__(self, path: Path) -> None:
        self.location = path
        self.path = path
        self._db = connect(path)  # raises CacheError, with advice that fits the cause
        self.db: Database = self._db
        self.sessions = None  # leases are this host's processes' (see .leases)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
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

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def backup(self, target: Path) -> None:
        """A consistent copy at ``target`` (SQLite's online backup: other processes may go
        on writing meanwhile), mode 0600, moved into place whole."""
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

    def compact(self) -> None:
        """Give the space of deleted rows back. Housekeeping: on a full disk it cannot be
        done, and the rows are gone all the same."""
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("VACUUM")
