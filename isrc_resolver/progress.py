"""One progress bar for a whole run: resolving (cache and searches), enriching, writing.

Shown only when asked for (the CLI asks when stderr is a terminal); ``tqdm.auto`` makes it
a widget in a notebook. The bar stays on screen when the run ends, as its last line.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["Progress"]


class Progress:
    def __init__(self, *, enabled: bool) -> None:
        self._bar = tqdm(disable=not enabled, file=sys.stderr, leave=True, dynamic_ncols=True)

    def phase(self, name: str, total: int | None, unit: str) -> None:
        """Start a stage of the run: a new description, count and unit on the same bar."""
        self._bar.set_description(name)
        self._bar.unit = unit
        self._bar.reset(total=total)

    def advance(self, count: int = 1) -> None:
        self._bar.update(count)

    def close(self) -> None:
        self._bar.close()
