"""What a run may still send: its own cap (``max_requests``) and the account's daily quota.

Spotify counts a Development Mode app's requests over a rolling 24 hours, per developer
account; past the quota every request gets a 429 with a Retry-After of about 14 hours, and
retrying into it makes the wait longer. So a run with ``daily_quota`` stops *before* the
request that would exceed it. What the account has spent comes from the cache's ledger,
which every run of the account adds to as it sends (see :mod:`isrc_resolver.cache`).

:meth:`Budget.take` is called by the client right before each API request, with no await
in between, so requests in flight never overrun the budget. Token requests are not
counted: Spotify's quota counts API calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import BudgetSpent

if TYPE_CHECKING:
    from .cache import AsyncCache
    from .settings import Settings

__all__ = ["Budget"]

WINDOW = 86_400.0


class Budget:
    """Requests a run may send; raises :class:`BudgetSpent` on the first one too many."""

    def __init__(
        self,
        *,
        max_requests: int | None = None,
        daily_quota: int | None = None,
        used: int = 0,
        frees_at: float | None = None,
    ) -> None:
        self.max_requests = max_requests
        self.daily_quota = daily_quota
        self.spent = 0  # API requests this run
        self._others = used  # the account's requests in the window, not this run's
        self._recorded = 0  # of ``spent``, how many the ledger holds
        self._frees_at = frees_at  # when the oldest counted request leaves the window

    @classmethod
    async def for_run(cls, settings: Settings, cache: AsyncCache | None) -> Budget:
        """A run's budget: ``max_requests``, and what ``daily_quota`` leaves of the
        account's last 24 hours according to the cache's ledger."""
        if cache is None or settings.daily_quota is None:
            return cls(max_requests=settings.max_requests, daily_quota=settings.daily_quota)
        spent = await cache.call(cache.cache.allowance, settings.account_key)
        return cls(
            max_requests=settings.max_requests,
            daily_quota=settings.daily_quota,
            used=spent.requests,
            frees_at=spent.oldest,
        )

    def __repr__(self) -> str:
        return (
            f"Budget(spent={self.spent}, max_requests={self.max_requests}, "
            f"daily_quota={self.daily_quota}, used_by_others={self._others})"
        )

    @property
    def left(self) -> int | None:
        """Requests this run may still send (None: no limit)."""
        limits = []
        if self.max_requests is not None:
            limits.append(self.max_requests - self.spent)
        if self.daily_quota is not None:
            limits.append(self.daily_quota - self._others - self.spent)
        return max(min(limits), 0) if limits else None

    def take(self) -> None:
        """Count one request about to be sent, or raise if there is no room for it."""
        if self.max_requests is not None and self.spent >= self.max_requests:
            raise BudgetSpent(self.max_requests)
        if self.daily_quota is not None and self._others + self.spent >= self.daily_quota:
            resume = datetime.fromtimestamp(self._frees_at, UTC) if self._frees_at else None
            raise BudgetSpent(self.daily_quota, daily=True, resume_at=resume)
        self.spent += 1

    def drain(self) -> int:
        """Requests sent since the last call: what the ledger should add now."""
        new = self.spent - self._recorded
        self._recorded = self.spent
        return new

    def observe(self, window_total: int, frees_at: float | None = None) -> None:
        """The ledger's count for the account after our last :meth:`drain` was added:
        other runs of the account (another process, another app with the same
        ``account``) spend the same allowance, and old requests leave the window."""
        self._others = max(window_total - self._recorded, 0)
        if frees_at is not None:
            self._frees_at = frees_at
