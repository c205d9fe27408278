"""Errors raised by isrc-resolver.

Every error the library raises on purpose derives from :class:`ResolverError`::

    ResolverError
    ├── ConfigurationError      bad settings or missing credentials       (CLI exit 2)
    │   ├── CredentialsError    Spotify rejected the client id or secret  (CLI exit 2)
    │   └── CacheError          the cache file cannot be opened or used   (CLI exit 2)
    ├── InputError              unreadable input, missing column          (CLI exit 2)
    ├── TokenError              no access token to be had after retries   (CLI exit 1)
    ├── RequestError            one request failed for good (after retries)
    │   └── ForbiddenError      403: the endpoint is closed to this app
    ├── RateLimitStop           a wait longer than allowed, or the daily quota (CLI exit 3)
    ├── BudgetSpent             the run's own request budget is used up    (CLI exit 3)
    └── EnvironmentFailure      the machine refused: a full disk, a read-only file, no
        │                       permission, a lock held too long, a closed pipe (CLI exit 1)
        └── StoreLost           the cache's database went away during the run (CLI exit 1)

Messages name what went wrong and what to do. None of them ever holds a secret or token.
"""

from __future__ import annotations

import errno
from datetime import UTC, datetime

__all__ = [
    "BudgetSpent",
    "CacheError",
    "ConfigurationError",
    "CredentialsError",
    "EnvironmentFailure",
    "ForbiddenError",
    "InputError",
    "RateLimitStop",
    "RequestError",
    "ResolverError",
    "StoreLost",
    "TokenError",
    "is_environment",
]


class ResolverError(Exception):
    """Base class of every error isrc-resolver raises on purpose."""


class ConfigurationError(ResolverError):
    """Settings or credentials are missing or wrong."""


class CredentialsError(ConfigurationError):
    """Spotify rejected the client id or secret; retrying cannot help."""


class CacheError(ConfigurationError):
    """The cache file cannot be used: ``reason`` says why, one of ``damaged`` (a SQLite
    file that does not read back: ``cache clear`` may replace it, keeping a copy),
    ``not_a_cache`` (some other file: never touched), ``newer`` (written by a newer
    isrc-resolver: never rewritten), ``locked``, ``read_only``, ``full``, ``folder``."""

    def __init__(self, message: str, *, reason: str = "damaged") -> None:
        super().__init__(message)
        self.reason = reason


class InputError(ResolverError):
    """The input file is missing, unreadable, or lacks the ISRC column."""


class TokenError(ResolverError):
    """The token endpoint could not be reached or kept failing: nothing can be asked."""


class RequestError(ResolverError):
    """A request failed for good: a non-retryable answer, or retries used up."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ForbiddenError(RequestError):
    """403: this endpoint is not available to this Spotify app."""


class RateLimitStop(ResolverError):
    """Spotify asked us to wait longer than allowed (or the daily quota is spent).

    ``resume_at`` is the wall-clock time (UTC) after which a new run may send requests.
    """

    def __init__(self, retry_after: float, *, quota: bool, resume_at: datetime) -> None:
        self.retry_after = retry_after
        self.quota = quota
        self.resume_at = resume_at
        why = (
            "the daily quota is used up" if quota else f"Spotify asked to wait {retry_after:.0f} s"
        )
        super().__init__(f"stopped: {why}; run again after {format_time(resume_at)}")


class BudgetSpent(ResolverError):
    """The run sent as many API requests as it was allowed: its own ``max_requests``, or
    (``daily=True``) what the account's ``daily_quota`` leaves in the last 24 hours."""

    def __init__(
        self, limit: int, *, daily: bool = False, resume_at: datetime | None = None
    ) -> None:
        self.limit = limit
        self.daily = daily
        self.resume_at = resume_at
        if daily:
            when = f"; requests free up from {format_time(resume_at)}" if resume_at else ""
            message = f"not asked: the daily quota of {limit} requests is spent{when}"
        else:
            message = f"not asked: the run's budget of {limit} requests is spent"
        super().__init__(message)


class EnvironmentFailure(ResolverError):
    """The machine refused what the run needed of it (``path``): not a bug, and not the
    input's fault. Rerunning once the cause is gone (space freed, permission given, the
    other process ended) continues where this run stopped."""

    def __init__(self, message: str, *, path: str | None = None, code: int | None = None):
        super().__init__(message)
        self.path = path
        self.errno = code

    @classmethod
    def from_os(cls, exc: OSError, doing: str, path: object | None = None) -> EnvironmentFailure:
        """``exc`` told in words: what was being done, to which path, why, what to do."""
        where = path if path is not None else exc.filename
        code = exc.errno
        name = errno.errorcode.get(code, "") if code is not None else ""
        cause = (exc.strerror or str(exc)) + (f" ({name})" if name else "")
        what = doing if where is None else f"{doing} {where}"
        place = None if where is None else str(where)
        return cls(f"{what}: {cause}; {_remedy(code)}", path=place, code=code)


class StoreLost(EnvironmentFailure):
    """The cache's database could not be reached during the run (the server down, the
    network gone). The run stops sending and writes no output: the rows it would write
    are read from the cache, and the requests it sent could no longer be counted."""


_REMEDIES = {
    errno.ENOSPC: "free some space there, then run again",
    errno.EDQUOT: "free some space (the disk quota is reached), then run again",
    errno.EROFS: "the file system is read-only; choose another place",
    errno.EACCES: "give this user write permission there, or choose another place",
    errno.EPERM: "give this user write permission there, or choose another place",
    errno.EPIPE: "the reader of the output went away",
}


def _remedy(code: int | None) -> str:
    return _REMEDIES.get(code or 0, "fix that, then run again")


def is_environment(exc: BaseException) -> bool:
    """Is ``exc`` the machine's failure (a full disk, a read-only file...), not a bug?"""
    return isinstance(exc, OSError) and exc.errno in _ENVIRONMENT


_ENVIRONMENT = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EPIPE, errno.EIO}
    | {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EMFILE, errno.ENFILE, errno.ENOMEM}
)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second: what logs and messages print."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
