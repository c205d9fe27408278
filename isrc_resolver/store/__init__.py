"""The store: one SQLite file per cache, behind :class:`Cache` (see :mod:`.cache`)."""

from .cache import AsyncCache, Cache, CacheInfo, remove_cache
from .leases import lease_owner
from .ledger import Allowance

__all__ = ["Allowance", "AsyncCache", "Cache", "CacheInfo", "lease_owner", "remove_cache"]
