"""What a run did: the summary a CLI prints and a scheduler reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .changes import Change, count
from .errors import BudgetSpent, EnvironmentFailure, RateLimitStop, format_time
from .models import Status

__all__ = ["RunReport", "package_version"]


@dataclass
class RunReport:
    """What a run did. ``statuses`` counts rows; ``unique`` counts distinct valid ISRCs."""

    rows: int = 0
    unique: int = 0
    statuses: Counter[Status] = field(default_factory=Counter)
    cache_hits: int = 0
    pinned: int = 0  # distinct ISRCs answered by the overrides file (no search)
    stale: int = 0  # rows written with a cached answer past its age (not refreshed)
    requests: int = 0  # API requests: what the ledger and a daily quota count
    token_requests: int = 0  # token requests (not counted by Spotify's quota)
    throttled: int = 0
    elapsed: float = 0.0
    stop: RateLimitStop | None = None
    spent: BudgetSpent | None = None  # --max-requests or --daily-quota ended the run
    interrupted: str | None = None  # the signal's name, when a signal ended the run
    failed: EnvironmentFailure | None = None  # the machine refused (the cache's disk, say)
    # The stores beside Spotify: per name, its distinct ISRCs by status (found, not_found,
    # error, pending), those from the cache, its requests and its rate signals.
    second: dict[str, dict[str, int]] = field(default_factory=dict)
    # What changed since the cache's answers, every store's (see ``changes``).
    changes: list[Change] = field(default_factory=list)
    # The HTML report of the run (set by a file's run): shown inline in a notebook.
    html: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    def _repr_html_(self) -> str | None:
        return self.html() if self.html is not None else None

    @property
    def exit_code(self) -> int:
        """0 all settled, 1 some errors (of any provider) or the machine refused (a full disk
        under the cache),
        3 stopped by a rate limit or the budget with work left (deferred rows, stale answers
        not refreshed), 130/143/129 interrupted (SIGINT, SIGTERM, SIGHUP)."""
        if self.interrupted:
            return {"SIGTERM": 143, "SIGHUP": 129}.get(self.interrupted, 130)
        if self.failed is not None:
            return 1
        if self.stop is not None or self.statuses[Status.RATE_LIMITED]:
            return 3
        if self.spent is not None or self.statuses[Status.DEFERRED]:
            return 3
        if self.statuses[Status.ERROR] or self.provider_failed:
            return 1
        return 0

    @property
    def provider_failed(self) -> list[str]:
        """The other providers asked that could not answer some ISRCs (a store that could
        not be asked is a failure, not a miss)."""
        return [
            name
            for name, counts in self.second.items()
            if counts.get("error") or counts.get("failed")
        ]

    def summary(self) -> str:
        s = self.statuses
        line = (
            f"rows={self.rows} unique={self.unique} found={s[Status.FOUND]} "
            f"not_found={s[Status.NOT_FOUND]} invalid={s[Status.INVALID]} "
            f"errors={s[Status.ERROR]} rate_limited={s[Status.RATE_LIMITED]} "
            f"pending={s[Status.PENDING]} deferred={s[Status.DEFERRED]} stale={self.stale} "
            f"cached={self.cache_hits} pinned={self.pinned} "
            f"requests={self.requests} token_requests={self.token_requests} "
            f"429s={self.throttled} elapsed={self.elapsed:.1f}s "
            + " ".join(f"{kind}={n}" for kind, n in count(self.changes).items())
        )
        for name, counts in self.second.items():
            line += "".join(f" {name}_{key}={value}" for key, value in counts.items())
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "unique": self.unique,
            **{status.value: self.statuses[status] for status in Status},
            "stale": self.stale,
            "cached": self.cache_hits,
            "pinned": self.pinned,
            "requests": self.requests,
            "token_requests": self.token_requests,
            "throttled": self.throttled,
            "elapsed": round(self.elapsed, 3),
            "resume_at": format_time(self.stop.resume_at) if self.stop else None,
            "budget_spent": (
                None
                if self.spent is None
                else "daily_quota"
                if self.spent.daily
                else "max_requests"
            ),
            "interrupted": self.interrupted,
            "failed": str(self.failed) if self.failed is not None else None,
            "changes": count(self.changes),
            "exit_code": self.exit_code,
            "version": package_version(),
            **({"providers": self.second} if self.second else {}),
        }


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("isrc-resolver")
    except PackageNotFoundError:
        return "unknown"
