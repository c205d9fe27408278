"""Authenticated, rate-limited, retrying access to the Spotify Web API.

:class:`SpotifyClient` is built from :class:`~isrc_resolver.settings.Settings` and sends
every request through one :class:`.ratelimit.RateGate`, with one shared
:class:`.auth.TokenProvider`, and retries what is worth retrying:

* 401: the token is dropped and renewed once, then the request is repeated;
* 429: every worker pauses until Retry-After has passed (the gate), then it is repeated;
  a Retry-After over ``max_wait`` or a quota 429 raises :class:`RateLimitStop`;
* 5xx, timeouts, dropped connections and non-JSON bodies: exponential backoff with jitter;
* 403 raises :class:`ForbiddenError`; other 4xx raise :class:`RequestError` at once.

The network is a :class:`.transport.Transport`, passed in or :class:`AiohttpTransport`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from .._logging import redact
from ..errors import ForbiddenError, RateLimitStop, RequestError, TokenError
from ..http.budget import Budget
from ..http.ratelimit import RateGate
from ..http.retry import RetryPolicy, Throttled, Transient, parse_retry_after
from ..http.stats import ClientStats
from ..http.transport import AiohttpTransport, HttpRequest, Transport, TransportError
from ..settings import Settings
from .auth import TokenEndpoint, TokenProvider, TokenStore

__all__ = ["SpotifyClient"]

log = logging.getLogger("isrc_resolver")

Sleep = Callable[[float], Awaitable[None]]


class _Unauthorized(Exception):
    """401 on an API call: renew the token and repeat, once."""


class SpotifyClient:
    """Authenticated, rate-limited, retrying access to the Spotify Web API.

    Use as an async context manager, inside a running event loop.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        token_store: TokenStore | None = None,
        transport: Transport | None = None,
        budget: Budget | None = None,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.api_url = settings.api_url.rstrip("/")
        self.policy = RetryPolicy(max_retries=settings.max_retries, max_wait=settings.max_wait)
        self.stats = ClientStats()
        self._transport: Transport = transport or AiohttpTransport(
            timeout=settings.timeout, connections=settings.concurrency + 2
        )
        self._sleep = sleep
        self._wall_clock = wall_clock
        endpoint = TokenEndpoint(
            settings.client_id,
            settings.client_secret,
            settings.token_url,
            self._transport,
            policy=self.policy,
            stats=self.stats,
            sleep=sleep,
            wall_clock=wall_clock,
        )
        self.tokens = TokenProvider(endpoint, store=token_store, clock=wall_clock)
        self._gate: RateGate | None = None
        self._closed = False
        # API requests allowed (token requests aside): the run's cap and the daily quota.
        # On its own the client has no ledger, so it keeps max_requests only; the daily
        # quota is kept by the budget a Resolver passes in (over the cache's ledger).
        self.budget = budget or Budget(max_requests=settings.max_requests)
        self._proven_token: str | None = None  # the last token an API call accepted
        self._rejected_fresh: set[str] = set()  # tokens rejected before any success

    def __repr__(self) -> str:
        return f"SpotifyClient(api_url={self.api_url!r}, client_id={self.settings.client_id!r})"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> SpotifyClient:
        if self._gate is not None or self._closed:
            raise RuntimeError("SpotifyClient is already open; use one `async with` per client")
        s = self.settings
        self._gate = RateGate(s.rate, adaptive=s.adaptive, sleep=self._sleep)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._gate is not None and not self._closed:
            self._closed = True
            await self._transport.aclose()

    @property
    def gate(self) -> RateGate:
        if self._gate is None or self._closed:
            raise RuntimeError("SpotifyClient is not open; use `async with SpotifyClient(...)`")
        return self._gate

    # -- API calls -------------------------------------------------------------------

    async def search_isrc(
        self, isrc: str, *, market: str | None = None, limit: int = 10
    ) -> Mapping[str, Any]:
        """The ``tracks`` paging object of ``GET /search?q=isrc:ISRC&type=track``."""
        return await self.search_tracks(f"isrc:{isrc}", market=market, limit=limit, label=isrc)

    async def search_tracks(
        self,
        query: str,
        *,
        market: str | None = None,
        limit: int = 10,
        label: str = "",
        offset: int = 0,
    ) -> Mapping[str, Any]:
        """The ``tracks`` paging object of ``GET /search?q=QUERY&type=track``."""
        params = {"q": query, "type": "track", "limit": str(min(max(limit, 1), 10))}
        if offset:
            params["offset"] = str(offset)
        if market:
            params["market"] = market
        body = await self.get_json("search", params, label=label)
        tracks = body.get("tracks") if isinstance(body, dict) else None
        if not isinstance(tracks, dict):
            raise RequestError("search answered without a 'tracks' object", status=200)
        return tracks

    async def get_json(
        self, path: str, params: Mapping[str, str] | None = None, *, label: str = ""
    ) -> Any:
        """GET ``{api_url}/{path}`` with every protection; returns the parsed JSON body."""
        url = f"{self.api_url}/{path.lstrip('/')}"
        endpoint = path.split("/")[0].split("?")[0]
        try:
            # Most requests succeed at once: the retry machinery is built only when needed.
            return await self._attempt(url, params, endpoint, label)
        except (Transient, Throttled, _Unauthorized) as exc:
            first = exc
        return await self._retry(url, params, endpoint, label, first)

    async def _retry(
        self,
        url: str,
        params: Mapping[str, str] | None,
        endpoint: str,
        label: str,
        first: Exception,
    ) -> Any:
        """Repeat a request that failed in a retryable way, until it succeeds or the
        policy gives up (401 once; 429 up to ``max_throttled``; the rest ``max_retries``)."""
        kinds: Counter[str] = Counter()
        policy = self.policy
        kind = _failure_kind

        def gives_up(exc: BaseException | None) -> bool:
            limit = {"unauthorized": 1, "throttled": policy.max_throttled - 1}
            return kinds[kind(exc)] > limit.get(kind(exc), policy.max_retries)

        def delay(exc: BaseException | None) -> float:
            if isinstance(exc, Transient):
                seconds = policy.backoff(kinds["transient"])
                log.debug("retry %s %s in %.2f s: %s", endpoint, label, seconds, exc.reason)
                return seconds
            return 0.0  # 401: renew now; 429: the gate holds everyone until Retry-After

        def count(state: RetryCallState) -> None:
            kinds[kind(state.outcome.exception() if state.outcome else None)] += 1

        def outcome(state: RetryCallState) -> BaseException | None:
            return state.outcome.exception() if state.outcome else None

        kinds[kind(first)] += 1
        try:
            if gives_up(first):
                raise first
            await self._sleep(delay(first))
            retrying = AsyncRetrying(
                retry=retry_if_exception_type((Transient, Throttled, _Unauthorized)),
                stop=lambda state: gives_up(outcome(state)),
                wait=lambda state: delay(outcome(state)),
                sleep=self._sleep,
                after=count,
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    self.stats.retries += 1
                    return await self._attempt(url, params, endpoint, label)
        except Transient as exc:
            raise RequestError(
                f"{exc.reason} (gave up after {policy.max_retries} retries)", status=exc.status
            ) from None
        except Throttled:
            raise RequestError(f"still rate limited after {policy.max_throttled} waits") from None
        except _Unauthorized:
            raise RequestError("401 again with a new token; check the app's credentials") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, url: str, params: Mapping[str, str] | None, endpoint: str, label: str
    ) -> Any:
        gate = self.gate
        # The budget first, in the order the requests were asked for (a worker reaches
        # this line straight from taking its item): when the allowance runs out mid-round,
        # the requests that come first in the plan get it, not those the rate gate happens
        # to let out first. Counted before it is sent; given back if it is not sent.
        await self.budget.take_or_wait(self.policy.max_wait, self._sleep)
        try:
            admitted = await gate.wait()
            token = await self.tokens.get()
        except BaseException:
            self.budget.give_back_one()
            raise
        self.stats.requests[endpoint] += 1
        started = time.perf_counter()
        request = HttpRequest("GET", url, params, {"Authorization": f"Bearer {token}"})
        try:
            response = await self._transport.send(request)
        except TransportError as exc:
            self.stats.transport_errors += 1
            log.debug("%s %s: %s", endpoint, label, exc)
            raise Transient(f"connection failed ({exc})") from None
        status, headers, body = response.status, response.headers, response.body
        self.stats.statuses[status] += 1
        log.debug(
            "%s %s -> %d in %.0f ms", endpoint, label, status, (time.perf_counter() - started) * 1e3
        )
        if status == 200:
            try:
                data = json.loads(body)
            except ValueError:
                raise Transient("200 with a body that is not JSON", status=status) from None
            gate.record_success(admitted)
            self._proven_token = token
            return data
        if status == 401:
            self._on_rejected_token(token)
            raise _Unauthorized()
        if status == 429:
            self.stats.throttled += 1
            retry_after = parse_retry_after(headers, now=self._wall_clock())
            quota = _error_reason(body) == "QUOTA_EXCEEDED"
            gate.pause(retry_after, admitted_at=admitted)
            throttled = Throttled(retry_after, quota=quota)
            log.debug("%s %s: %s", endpoint, label, throttled)
            if self.policy.stops_run(throttled):
                resume_at = datetime.fromtimestamp(self._wall_clock(), UTC) + timedelta(
                    seconds=retry_after
                )
                raise RateLimitStop(retry_after, quota=quota, resume_at=resume_at)
            raise throttled
        if status >= 500 or status == 408:
            raise Transient(f"HTTP {status}", status=status)
        message = _error_message(body) or f"HTTP {status}"
        if status == 403:
            raise ForbiddenError(f"403 {message}", status=403)
        raise RequestError(f"{status} {message}", status=status)

    def _on_rejected_token(self, token: str) -> None:
        """A 401: drop the token. If two tokens in a row are rejected before either ever
        worked, the API will not take this app's tokens at all (wrong API URL, a revoked
        app): retrying would only cost two requests per ISRC, so the run stops."""
        self.tokens.invalidate(token)
        if token == self._proven_token:
            return
        self._rejected_fresh.add(token)
        if len(self._rejected_fresh) >= 2:
            raise TokenError(
                f"{self.api_url} rejected two freshly issued access tokens in a row (401); "
                "check that the API URL and the token URL belong together and that the app "
                "is still active"
            )


def _failure_kind(exc: BaseException | None) -> str:
    """How a failed attempt counts against the retry limits."""
    return {_Unauthorized: "unauthorized", Throttled: "throttled"}.get(type(exc), "transient")


def _error_object(body: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _error_reason(body: bytes) -> str | None:
    reason = _error_object(body).get("reason")
    return reason if isinstance(reason, str) else None


def _error_message(body: bytes) -> str | None:
    """The API error's message, cut short and with any known secret masked: a server may
    echo the request (and its token) back, and this text reaches logs and output files."""
    message = _error_object(body).get("message")
    return redact(message[:300]) if isinstance(message, str) else None
