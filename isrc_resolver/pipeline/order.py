"""Results in the order of the input, each as soon as it is known."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from ..isrc import Normalized
from ..models import Result

__all__ = ["in_order"]


async def in_order(
    normalized: Normalized,
    resolve_unique: Callable[[list[str], Callable[[Result], None]], Coroutine[Any, Any, None]],
) -> AsyncGenerator[Result, None]:
    """One result per normalised value, in order, each as soon as it is known."""
    loop = asyncio.get_running_loop()
    futures = {u: loop.create_future() for u in normalized.unique}
    task = asyncio.create_task(
        resolve_unique(list(normalized.unique), lambda r: futures[r.isrc].set_result(r))
    )
    try:
        for isrc in normalized.values:
            future = futures.get(isrc)
            if future is None:
                yield Result.invalid(isrc)
                continue
            if not future.done():
                await asyncio.wait({future, task}, return_when=asyncio.FIRST_COMPLETED)
            if not future.done():
                task.result()  # the pipeline failed: raise its error here
            yield future.result()
        await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
