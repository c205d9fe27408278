"""The budget's ledger: the cache's, reached on its thread (the spotify folder knows a
ledger only as :class:`~isrc_resolver.spotify.budget.Ledger`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..settings import Settings
from ..spotify.budget import Budget, Grant
from ..store.cache import AsyncCache

__all__ = ["CacheLedger", "budget_for"]


class CacheLedger:
    """One account's requests in the cache's ledger."""

    def __init__(self, cache: AsyncCache, account: str) -> None:
        self._cache = cache
        self._account = account

    async def reserve(self, wanted: int, quota: int | None) -> Grant:
        cache = self._cache
        return Grant(*await cache.call(cache.cache.reserve, self._account, wanted, quota))

    async def give_back(self, count: int, second: int) -> None:
        await self._cache.call(self._cache.cache.give_back, self._account, count, second)


def budget_for(
    settings: Settings, cache: AsyncCache | None, clock: Callable[[], float] = time.time
) -> Budget:
    """A run's budget over the cache's ledger (without a cache, only ``max_requests``:
    Settings refuses a daily quota without one)."""
    ledger = None if cache is None else CacheLedger(cache, settings.account_key)
    # Reserved a few at a time: a kill over-counts at most that many; without a quota
    # the ledger only keeps count, and larger blocks cost fewer commits.
    block = min(settings.concurrency, 8) if settings.daily_quota is not None else 64
    return Budget(
        max_requests=settings.max_requests,
        daily_quota=settings.daily_quota,
        ledger=ledger,
        block=block,
        clock=clock,
    )
