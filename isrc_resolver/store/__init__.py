"""The store: one SQLite file per cache, behind :class:`Cache` (see :mod:`.cache`)."""

from .cache import AsyncCache, Cache, CacheInfo, set_aside
from .leases import lease_owner
from .ledger import Allowance

__all__ = ["Allowance", "AsyncCache", "Cache", "CacheInfo", "lease_owner", "set_aside"]
