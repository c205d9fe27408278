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
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ._logging import redact, register_secret
from .auth import AccessToken, Secret, TokenProvider, TokenStore
from .budget import Budget
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

# The largest answer read: a search page is a few kB, a batch of 20 albums a few hundred.
MAX_BODY = 16 * 1024 * 1024


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

    def __init__(
        self,
        *,
        timeout: float = default("timeout"),
        connections: int = 10,
        max_body: int = MAX_BODY,
    ) -> None:
        self._timeout = timeout
        self._connections = connections
        self._max_body = max_body
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
                return HttpResponse(resp.status, dict(resp.headers), await self._read(resp))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(type(exc).__name__) from None

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The body, or :class:`TransportError` (retried) once it passes ``max_body``:
        an answer many times larger than any Spotify sends is not read into memory."""
        too_large = TransportError(f"answer larger than {self._max_body} bytes")
        if (resp.content_length or 0) > self._max_body:
            raise too_large
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > self._max_body:
                raise too_large
        return bytes(body)

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

    @property
    def api_requests(self) -> int:
        """Requests to the API, the ones a daily quota counts (token requests aside)."""
        return self.total_requests - self.requests["token"]


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
        max_requests: int | None = None,
        budget: Budget | None = None,
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
        # API requests allowed (token requests aside): the run's cap and the daily quota.
        self.budget = budget or Budget(max_requests=max_requests)
        self._proven_token: str | None = None  # the last token an API call accepted
        self._rejected_fresh: set[str] = set()  # tokens rejected before any success

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        token_store: TokenStore | None = None,
        transport: Transport | None = None,
        budget: Budget | None = None,
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
            budget=budget
            or Budget(max_requests=settings.max_requests, daily_quota=settings.daily_quota),
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
        return await self.search_tracks(f"isrc:{isrc}", market=market, limit=limit, label=isrc)

    async def search_tracks(
        self, query: str, *, market: str | None = None, limit: int = 10, label: str = ""
    ) -> Mapping[str, Any]:
        """The ``tracks`` paging object of ``GET /search?q=QUERY&type=track``."""
        params = {"q": query, "type": "track", "limit": str(min(max(limit, 1), 10))}
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
        admitted = await gate.wait()
        token = await self.tokens.get()
        # Checked and counted with no await between: requests in flight never overrun it.
        await self.budget.take_or_wait(self.policy.max_wait, self._sleep)
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
        credentials = f"{self._client_id}:{self._secret.reveal()}"
        basic = base64.b64encode(credentials.encode()).decode("ascii")
        register_secret(credentials)  # a server that echoes them must not put them in a log
        register_secret(basic)
        headers = {"Authorization": f"Basic {basic}"}
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
        return AccessToken(*_read_token(data, self.token_url, self._wall_clock()))

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


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_LONGEST_TOKEN_LIFE = 366 * 86_400.0


def _read_token(data: object, url: str, now: float) -> tuple[str, float]:
    """The token and its expiry (Unix time) from a token answer, checked; a clear
    :class:`TokenError` for anything that could not be sent or trusted."""
    if not isinstance(data, dict):
        raise TokenError(f"the token endpoint {url} answered with something other than an object")
    token, token_type = data.get("access_token"), data.get("token_type", "")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenError(f"the token endpoint {url} did not answer with a bearer token")
    if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
        raise TokenError(
            f"the token endpoint {url} answered with an access token that cannot be sent "
            "(empty, or with spaces, line breaks or other characters a token never has)"
        )
    register_secret(token)
    expires_in = data.get("expires_in", 3600)
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not 0 < expires_in < _LONGEST_TOKEN_LIFE
    ):
        raise TokenError(
            f"the token endpoint {url} gave an unusable expires_in ({str(expires_in)[:20]!r}); "
            "expected a number of seconds"
        )
    return token, now + float(expires_in)


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
