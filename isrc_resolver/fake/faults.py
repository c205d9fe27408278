"""How the local Spotify misbehaves when asked: latency, faults, tokens, rate and quota."""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable

from aiohttp import web

from .config import FakeConfig, Stats, error

__all__ = ["Misbehaviour"]


class Misbehaviour:
    """The checks every API request passes before its handler, in the order a real stack
    applies them. A mixin of :class:`~.server.FakeSpotify`, whose state it reads."""

    config: FakeConfig
    _rng: random.Random
    _stats: Stats
    _tokens: dict[str, float]
    _window: deque[float]
    _penalty_until: float
    _quota_used: int
    _clock: Callable[[], float]

    def _check_token(self, request: web.Request) -> web.Response | None:
        raise NotImplementedError  # :class:`~.tokens.Tokens` answers this

    async def _misbehave(self, request: web.Request, endpoint: str) -> web.StreamResponse | None:
        """Latency, faults, rate limit and quota, in the order a real stack applies them."""
        cfg = self.config
        if endpoint == "token":
            return None
        delay = cfg.latency
        if cfg.jitter:
            delay = max(0.0, delay + self._rng.uniform(-cfg.jitter, cfg.jitter))
        if cfg.fault_slow and self._rng.random() < cfg.fault_slow:
            delay += cfg.slow_seconds
        if delay:
            await asyncio.sleep(delay)
        roll = self._rng.random()
        if roll < cfg.fault_drop:
            self._stats.dropped += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)  # counted as 599; the client never sees it
        roll -= cfg.fault_drop
        if roll < cfg.fault_5xx:
            status = self._rng.choice([500, 502, 503])
            return error(
                status,
                {500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}[status],
            )
        roll -= cfg.fault_5xx
        if roll < cfg.fault_html:
            return web.Response(
                status=502,
                content_type="text/html",
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
        # Authentication comes before the rate limit, as on Spotify.
        unauthorized = self._check_token(request)
        if unauthorized is not None:
            return unauthorized
        return self._throttle()

    def _throttle(self) -> web.Response | None:
        cfg = self.config
        now = self._clock()
        if now < self._penalty_until:
            self._stats.during_penalty += 1
        if cfg.daily_quota is not None and self._quota_used >= cfg.daily_quota:
            self._stats.throttled += 1
            self._stats.quota_exceeded += 1
            response = error(429, "Too many requests", reason="QUOTA_EXCEEDED")
            response.headers["Retry-After"] = str(cfg.quota_retry_after)
            self._penalty_until = max(self._penalty_until, now + cfg.quota_retry_after)
            return response
        if cfg.window_limit is not None:
            window = self._window
            while window and window[0] <= now - cfg.window_seconds:
                window.popleft()
            if len(window) >= cfg.window_limit:
                retry_after = max(1, math.ceil(window[0] + cfg.window_seconds - now))
                self._penalty_until = max(self._penalty_until, now + retry_after)
                self._stats.throttled += 1
                response = error(429, "API rate limit exceeded")
                response.headers["Retry-After"] = str(retry_after)
                return response
            window.append(now)
        self._quota_used += 1
        return None
