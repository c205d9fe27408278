"""The network seam: the only module of the client that imports aiohttp.

A :class:`Transport` sends one request and returns one whole answer. The client takes any
object with these two methods: :class:`AiohttpTransport` (the real network, by default) or
:class:`MockTransport` (answers from a function, for tests and experiments). aiohttp's
exceptions never leave this module: a request without an HTTP answer raises
:class:`TransportError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

__all__ = [
    "MAX_BODY",
    "AiohttpTransport",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "Transport",
    "TransportError",
]

# The largest answer read: a search page is a few kB, a batch of 20 albums a few hundred.
MAX_BODY = 16 * 1024 * 1024


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
        timeout: float = 30.0,
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
                # Spotify's API and token endpoint answer where they are asked. A redirect is
                # an answer (a 3xx, an error), never followed: the credentials and the token
                # go to the configured URL and nowhere else.
                allow_redirects=False,
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
