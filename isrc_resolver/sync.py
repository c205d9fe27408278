"""A synchronous entry point, for scripts and notebooks.

Jupyter runs its own event loop, where ``asyncio.run`` is refused; so when a loop is already
running in this thread, the work runs in a worker thread with a loop of its own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Unpack

from .resolver import Resolver
from .settings import Options

if TYPE_CHECKING:
    from .tables.frames import DataFrame

__all__ = ["resolve_dataframe_sync"]


def resolve_dataframe_sync(
    df: DataFrame,
    column: str | None = None,
    **options: Unpack[Options],
) -> DataFrame:
    """``df`` with the output columns added; blocks until done. ``options`` are the
    :class:`Resolver`'s (credentials and endpoints default to the environment)."""

    async def run() -> DataFrame:
        async with Resolver(**options) as resolver:
            return await resolver.resolve_dataframe(df, column)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="isrc-resolver") as pool:
        return pool.submit(asyncio.run, run()).result()
