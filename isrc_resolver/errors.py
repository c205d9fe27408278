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
    └── BudgetSpent             the run's own request budget is used up    (CLI exit 3)

Messages name what went wrong and what to do. None of them ever holds a secret or token.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "BudgetSpent",
    "CacheError",
    "ConfigurationError",
    "CredentialsError",
    "ForbiddenError",
    "InputError",
    "RateLimitStop",
    "RequestError",
    "ResolverError",
    "TokenError",
]


class ResolverError(Exception):
    """Base class of every error isrc-resolver raises on purpose."""


class ConfigurationError(ResolverError):
    """Settings or credentials are missing or wrong."""


class CredentialsError(ConfigurationError):
    """Spotify rejected the client id or secret; retrying cannot help."""


class CacheError(ConfigurationError):
    """The cache file is corrupt, not a file, or cannot be written."""


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


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second: what logs and messages print."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
