"""The budget's ledger: the cache's, reached on its thread (the spotify folder knows a
ledger only as :class:`~isrc_resolver.http.budget.Ledger`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..http.budget import Budget, Grant
from ..settings import Settings
from ..store.cache import AsyncCache, Location
from ..store.registry import register, spent_elsewhere

__all__ = ["CacheLedger", "budget_for", "spent_by_other_caches"]

log = logging.getLogger("isrc_resolver")


class CacheLedger:
    """One account's requests in the cache's ledger; ``elsewhere``: what the account spent
    in the last 24 hours by the ledgers of this user's other caches (counted too)."""

    def __init__(self, cache: AsyncCache, account: str, elsewhere: int = 0) -> None:
        self._cache = cache
        self._account = account
        self._elsewhere = elsewhere

    async def reserve(self, wanted: int, quota: int | None) -> Grant:
        cache = self._cache
        if quota is not None:
            quota = max(quota - self._elsewhere, 0)
        return Grant(*await cache.call(cache.cache.reserve, self._account, wanted, quota))

    async def give_back(self, count: int, second: int) -> None:
        await self._cache.call(self._cache.cache.give_back, self._account, count, second)


def spent_by_other_caches(settings: Settings, cache: Location, now: float) -> int:
    """List ``cache`` among this user's caches, and, with a daily quota, what the account
    spent in the last 24 hours by the ledgers of the others (each said in the log): one
    developer account has one allowance, whichever cache a run uses. A database's ledger
    is the team's own: the file caches of this user are not added to it (``cache copy``
    carries a file's ledger into it)."""
    if not isinstance(cache, Path):
        return 0
    register(cache)
    if settings.daily_quota is None:
        return 0
    total = 0
    for other, spent in spent_elsewhere(cache, settings.account_key, now):
        log.warning(
            "the cache %s counts %d requests of this account in the last 24 hours: they "
            "spend the same Spotify quota, so this run counts them too (runs that share "
            "one cache keep one ledger)",
            other,
            spent,
        )
        total += spent
    return total


def budget_for(
    settings: Settings,
    cache: AsyncCache | None,
    clock: Callable[[], float] = time.time,
    elsewhere: int = 0,
) -> Budget:
    """A run's budget over the cache's ledger (without a cache, only ``max_requests``:
    Settings refuses a daily quota without one); ``elsewhere``: the account's requests
    in the other caches' ledgers."""
    ledger = None if cache is None else CacheLedger(cache, settings.account_key, elsewhere)
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
