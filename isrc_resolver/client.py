"""The HTTP seam: the only module that talks to the network (and imports aiohttp).

:class:`SpotifyClient` sends every request through one :class:`RateGate`, with one shared
:class:`TokenProvider`, and retries what is worth retrying:

* 401: the token is dropped and renewed once, then the request is repeated;
* 429: every worker pauses until Retry-After has passed (the gate), then it is repeated;
  a Retry-After over ``max_wait`` or a quota 429 raises :class:`RateLimitStop`;
* 5xx, timeouts, dropped connections and non-JSON bodies: exponential backoff with jitter;
* 403 raises :class:`ForbiddenError`; other 4xx raise :class:`RequestError` at once.

The network itself is a :class:`Transport`: :class:`AiohttpTransport` by default, or any
object with the same two methods (:class:`MockTransport` answers from a function, for tests
and experiments). aiohttp's exceptions never leave this module: they become the library's
own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from .auth import AccessToken, Secret, TokenProvider, TokenStore
from .errors import (
    ConfigurationError,
    CredentialsError,
    ForbiddenError,
    RateLimitStop,
    RequestError,
    TokenError,
)
from .ratelimit import RateGate
from .retry import RetryPolicy, Throttled, Transient, parse_retry_after
from .settings import DEFAULT_API_URL, DEFAULT_TOKEN_URL, default

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "AiohttpTransport",
    "ClientStats",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "SpotifyClient",
    "Transport",
    "TransportError",
]

log = logging.getLogger("isrc_resolver")

Sleep = Callable[[float], Awaitable[None]]


# -- the transport seam ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] | None = None  # a form body


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class TransportError(Exception):
    """The request got no HTTP answer (refused, reset, timed out). Worth retrying."""


class Transport(Protocol):
    """What the client needs from the network: send one request, get one whole answer."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """The real network, through one aiohttp session (opened on first use, in the loop)."""

    def __init__(self, *, timeout: float = default("timeout"), connections: int = 10) -> None:
        self._timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: HttpRequest) -> HttpResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=self._connections),
                raise_for_status=False,
            )
        try:
            async with self._session.request(
                request.method,
                request.url,
                params=request.params,
                headers=dict(request.headers),
                data=request.data,
            ) as resp:
                return HttpResponse(resp.status, dict(resp.headers), await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(type(exc).__name__) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class MockTransport:
    """Answers every request with ``handler(request)``: no network at all.

    The handler may raise :class:`TransportError` to act as a dropped connection.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return await self._handler(request)

    async def aclose(self) -> None:
        return None


class _Unauthorized(Exception):
    """401 on an API call: renew the token and repeat, once."""


@dataclass
class ClientStats:
    """What the client did, for the run summary and the benchmarks."""

    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    statuses: Counter[int] = field(default_factory=Counter)
    throttled: int = 0
    retries: int = 0
    transport_errors: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class SpotifyClient:
    """Authenticated, rate-limited, retrying access to the Spotify Web API.

    Use as an async context manager, inside a running event loop.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str | Secret,
        *,
        api_url: str = DEFAULT_API_URL,
        token_url: str = DEFAULT_TOKEN_URL,
        rate: float = default("rate"),
        adaptive: bool = default("adaptive"),
        concurrency: int = default("concurrency"),
        policy: RetryPolicy | None = None,
        timeout: float = default("timeout"),
        token_store: TokenStore | None = None,
        transport: Transport | None = None,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigurationError("a Spotify client id and client secret are required")
        self._client_id = client_id
        self._secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.policy = policy or RetryPolicy()
        self.stats = ClientStats()
        self._rate = rate
        self._adaptive = adaptive
        self._transport: Transport = transport or AiohttpTransport(
            timeout=timeout, connections=max(concurrency, 1) + 2
        )
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.tokens = TokenProvider(self._fetch_token, store=token_store, clock=wall_clock)
        self._gate: RateGate | None = None
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        token_store: TokenStore | None = None,
        transport: Transport | None = None,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> SpotifyClient:
        return cls(
            settings.client_id,
            settings.client_secret,
            api_url=settings.api_url,
            token_url=settings.token_url,
            rate=settings.rate,
            adaptive=settings.adaptive,
            concurrency=settings.concurrency,
            policy=RetryPolicy(max_retries=settings.max_retries, max_wait=settings.max_wait),
            timeout=settings.timeout,
            token_store=token_store,
            transport=transport,
            sleep=sleep,
            wall_clock=wall_clock,
        )

    def __repr__(self) -> str:
        return f"SpotifyClient(api_url={self.api_url!r}, client_id={self._client_id!r})"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> SpotifyClient:
        if self._gate is not None or self._closed:
            raise RuntimeError("SpotifyClient is already open; use one `async with` per client")
        self._gate = RateGate(self._rate, adaptive=self._adaptive, sleep=self._sleep)
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
        params = {"q": f"isrc:{isrc}", "type": "track", "limit": str(min(max(limit, 1), 10))}
        if market:
            params["market"] = market
        body = await self.get_json("search", params, label=isrc)
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
        admitted = await gate.wait()
        token = await self.tokens.get()
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
            return data
        if status == 401:
            self.tokens.invalidate(token)
            raise _Unauthorized()
        if status == 429:
            self.stats.throttled += 1
            retry_after = parse_retry_after(headers)
            quota = _error_reason(body) == "QUOTA_EXCEEDED"
            gate.pause(retry_after)
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

    # -- token -----------------------------------------------------------------------

    async def _fetch_token(self) -> AccessToken:
        """POST the client credentials; retry transient failures, never a rejection."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Transient),
            stop=lambda s: s.attempt_number > self.policy.max_retries,
            wait=lambda s: self.policy.backoff(s.attempt_number),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._token_attempt()
        except Transient as exc:
            # Not a per-request error: without a token no request can be made, so the run
            # stops here instead of every ISRC retrying the token in turn.
            raise TokenError(
                f"could not get an access token from {self.token_url}: {exc.reason} "
                f"(after {self.policy.max_retries} retries); check --token-url or try again later"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _token_attempt(self) -> AccessToken:
        credentials = f"{self._client_id}:{self._secret.reveal()}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}
        self.stats.requests["token"] += 1
        request = HttpRequest(
            "POST", self.token_url, headers=headers, data={"grant_type": "client_credentials"}
        )
        try:
            response = await self._transport.send(request)
        except TransportError as exc:
            self.stats.transport_errors += 1
            raise Transient(f"connection failed ({exc})") from None
        status, body = response.status, response.body
        log.debug("token -> %d", status)
        if status >= 500 or status == 429:
            raise Transient(f"HTTP {status}", status=status)
        try:
            data = json.loads(body)
        except ValueError:
            if status == 200:
                raise Transient("token answer is not JSON", status=status) from None
            data = {}
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else None
            if error == "invalid_client":
                raise CredentialsError(
                    "Spotify rejected the client id or secret (invalid_client); check "
                    "SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"
                )
            raise ConfigurationError(
                f"token request refused: HTTP {status} {error or ''}".rstrip()
                + f"; check --token-url ({self.token_url})"
            )
        token = data.get("access_token") if isinstance(data, dict) else None
        token_type = str(data.get("token_type", "")) if isinstance(data, dict) else ""
        if not isinstance(token, str) or token_type.lower() != "bearer":
            raise ConfigurationError(
                f"the token endpoint {self.token_url} did not answer with a bearer token"
            )
        expires_in = float(data.get("expires_in") or 3600)
        return AccessToken(token, self._wall_clock() + expires_in)


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
    message = _error_object(body).get("message")
    return message if isinstance(message, str) else None
