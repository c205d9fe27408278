"""What the local server's TIDAL, Apple Music and MusicBrainz sides share: which ISRCs a
store has (a share it lacks, by seed), stable ids, a token bucket and a sliding window."""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable

__all__ = ["Bucket", "Window", "has", "stable_id"]


def stable_id(store: str, *parts: object, digits: int = 10) -> str:
    """A stable numeric id, as text (TIDAL's and Apple's look numeric)."""
    digest = hashlib.sha256(":".join(map(str, (store, *parts))).encode()).digest()
    return str(int.from_bytes(digest[:6], "big") % 10**digits + 10 ** (digits - 1))


def has(store: str, seed: int, isrc: str, missing: float) -> bool:
    """Whether ``store`` carries ``isrc`` (it lacks a ``missing`` share, by seed)."""
    return random.Random(f"{seed}:{store}:{isrc}").random() >= missing


class Bucket:
    """A token bucket: ``capacity`` tokens, ``refill`` a second, ``cost`` a request."""

    def __init__(self, capacity: float, refill: float, cost: float, clock: Callable[[], float]):
        self.capacity, self.refill, self.cost = capacity, refill, cost
        self._clock = clock
        self._tokens = capacity
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.refill)
        self._at = now
        if self._tokens < self.cost:
            return False
        self._tokens -= self.cost
        return True

    @property
    def remaining(self) -> int:
        return int(self._tokens)


class Window:
    """A sliding window of the requests let through (refused ones do not count, as
    Deezer's window seems to work). The limit is given with each request: a server
    reconfigured while running applies it."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._sent: deque[float] = deque()

    def take(self, limit: int | None, seconds: float) -> bool:
        """Let one more through unless ``limit`` were sent in the last ``seconds``."""
        if limit is None:
            return True
        now = self._clock()
        while self._sent and self._sent[0] <= now - seconds:
            self._sent.popleft()
        if len(self._sent) >= limit:
            return False
        self._sent.append(now)
        return True
