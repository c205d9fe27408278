"""When to retry and how long to wait: pure functions of the failure and the attempt.

Nothing here sleeps or does I/O; :mod:`isrc_resolver.client` feeds these decisions to
tenacity (which does the waiting, with an injectable sleep) and to the
:class:`~isrc_resolver.ratelimit.RateGate` (which holds every worker during a 429 pause).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_RETRY_AFTER",
    "RetryPolicy",
    "Throttled",
    "Transient",
    "parse_retry_after",
]

# Used when a 429 comes without a usable Retry-After (missing, 0, or garbage): Spotify's
# window is 30 s, so a few seconds lets part of it roll over without idling for long.
DEFAULT_RETRY_AFTER = 5.0
# The longest Retry-After taken as given: a week. Spotify's quota waits are under a day.
MAX_RETRY_AFTER = 7 * 86_400.0


class Transient(Exception):
    """A failure worth retrying with backoff: 5xx, a dropped connection, a non-JSON body."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Throttled(Exception):
    """A 429. ``retry_after`` is in seconds; ``quota`` is set for the daily quota."""

    def __init__(self, retry_after: float, *, quota: bool) -> None:
        super().__init__(f"429 (retry after {retry_after:g} s{', quota' if quota else ''})")
        self.retry_after = retry_after
        self.quota = quota


def parse_retry_after(
    headers: Mapping[str, str], fallback: float = DEFAULT_RETRY_AFTER, *, now: float | None = None
) -> float:
    """Seconds from a ``Retry-After`` header, read case-insensitively.

    Both forms of RFC 9110 are read: a number of seconds, or an HTTP date (``now`` is the
    Unix time to count from). Missing, zero, negative, past or unparsable values give
    ``fallback``: a 429 that tells us to wait 0 s is still a 429, and retrying at once only
    lengthens the penalty. Huge values (``1e12``, ``inf``) are clamped to
    :data:`MAX_RETRY_AFTER`; any of them is far longer than a run waits anyway.
    """
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return fallback
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, time.time() if now is None else now)
    if math.isnan(seconds) or seconds <= 0:
        return fallback
    return min(seconds, MAX_RETRY_AFTER)


def _seconds_until(http_date: str, now: float) -> float:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return math.nan
    if moment.tzinfo is None:  # RFC 9110 dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Settings for retries; its methods are the one place that decides about waiting.

    ``max_retries`` counts retries of transient failures per request. 429s are not
    counted against it (the shared pause handles them) but are capped at
    ``max_throttled`` per request so a server that never lets up cannot loop us forever.
    ``max_wait`` is the longest Retry-After we sit out; a longer one stops the run.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_wait: float = 120.0
    max_throttled: int = 50

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter before retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)

    def stops_run(self, throttled: Throttled) -> bool:
        """A quota 429, or one asking for more than ``max_wait``, ends the run cleanly."""
        return throttled.quota or throttled.retry_after > self.max_wait
