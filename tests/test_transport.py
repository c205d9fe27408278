"""The real transport (aiohttp) against a recording server on loopback: the exact request it
sends, and how it maps what the network does (no answer, a reset, a stall, an oversized or
non-JSON body, a redirect) to the library's own answers.

aioresponses would pin the request without a socket, but its latest release (0.7.9) cannot
build a response under aiohttp 3.14 (``ClientResponse`` wants a ``stream_writer``; upstream
issue pnuckowski/aioresponses#289), so a small aiohttp server on 127.0.0.1 records instead.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from isrc_resolver import HttpRequest, RequestError, Settings, SpotifyClient, TransportError
from isrc_resolver.http.transport import AiohttpTransport

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Recorder:
    """A loopback server that keeps every request and answers with ``answer``."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), form)
        )
        return await self.answer(request)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[Recorder]]]:
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> Recorder:
        recorder = Recorder(answer)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recorder.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return recorder

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    t = AiohttpTransport(timeout=2, max_body=1_000)
    yield t
    await t.aclose()


def body(data: bytes, status: int = 200) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=data, content_type="application/json")

    return answer


Serve = Callable[[Answer], Awaitable[Recorder]]


async def test_a_search_is_sent_exactly_as_built(serve: Serve, transport: AiohttpTransport) -> None:
    server = await serve(body(b'{"tracks": {}}'))
    params = {"q": "isrc:USRC17607839", "type": "track", "limit": "10", "market": "GB"}
    response = await transport.send(
        HttpRequest("GET", f"{server.url}/v1/search", params, {"Authorization": "Bearer tok"})
    )
    assert (response.status, response.body) == (200, b'{"tracks": {}}')
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.query) == ("GET", "/v1/search", params)
    assert seen.headers["Authorization"] == "Bearer tok"


async def test_the_token_request_is_a_form_post(serve: Serve, transport: AiohttpTransport) -> None:
    server = await serve(body(b"{}"))
    form = {"grant_type": "client_credentials"}
    headers = {"Authorization": "Basic aWQ6c2VjcmV0"}
    await transport.send(HttpRequest("POST", f"{server.url}/api/token", None, headers, form))
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.form) == ("POST", "/api/token", form)
    assert seen.headers["Authorization"] == "Basic aWQ6c2VjcmV0"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_a_redirect_is_an_answer_and_is_not_followed(
    serve: Serve, transport: AiohttpTransport
) -> None:
    """A redirect to another origin must never carry the token there: nothing is sent."""
    elsewhere = await serve(body(b"{}"))

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{elsewhere.url}/steal")

    server = await serve(redirect)
    response = await transport.send(
        HttpRequest("GET", f"{server.url}/v1/search", None, {"Authorization": "Bearer tok"})
    )
    assert response.status == 302
    assert len(server.seen) == 1 and elsewhere.seen == []


async def test_a_redirect_answer_is_an_error_for_the_client(serve: Serve) -> None:
    elsewhere = await serve(body(b"{}"))

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/token":
            return web.json_response({"access_token": "tok", "token_type": "Bearer"})
        raise web.HTTPTemporaryRedirect(f"{elsewhere.url}/v1/search")

    server = await serve(answer)
    settings = Settings.build(
        "id", "secret", environ={}, api_url=f"{server.url}/v1", token_url=f"{server.url}/api/token"
    )
    async with SpotifyClient(settings) as client:
        with pytest.raises(RequestError, match="307"):
            await client.search_isrc("USRC17607839")
    assert elsewhere.seen == []


async def test_a_refused_connection_is_a_transport_error(transport: AiohttpTransport) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(TransportError):
        await transport.send(HttpRequest("GET", f"http://127.0.0.1:{closed}/v1/search"))


async def test_a_reset_connection_is_a_transport_error(
    serve: Serve, transport: AiohttpTransport
) -> None:
    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    server = await serve(reset)
    with pytest.raises(TransportError):
        await transport.send(HttpRequest("GET", f"{server.url}/v1/search"))


async def test_a_stalled_answer_times_out_as_a_transport_error(serve: Serve) -> None:
    never = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.Response()

    server = await serve(stall)
    quick = AiohttpTransport(timeout=0.05)
    try:
        with pytest.raises(TransportError, match="Timeout"):
            await quick.send(HttpRequest("GET", f"{server.url}/v1/search"))
    finally:
        never.set()
        await quick.aclose()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_answer_over_the_size_limit_is_not_read(
    serve: Serve, transport: AiohttpTransport, chunked: bool
) -> None:
    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = 1_001
        await response.prepare(request)
        await response.write(b"x" * 1_001)
        return response

    server = await serve(large)
    with pytest.raises(TransportError, match="larger than 1000 bytes"):
        await transport.send(HttpRequest("GET", f"{server.url}/v1/search"))


async def test_an_answer_at_the_size_limit_is_read(
    serve: Serve, transport: AiohttpTransport
) -> None:
    server = await serve(body(b"x" * 1_000))
    assert (await transport.send(HttpRequest("GET", f"{server.url}/v1/x"))).body == b"x" * 1_000


async def test_a_body_that_is_not_json_is_retried_then_an_error(serve: Serve) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/api/token":
            return web.json_response({"access_token": "tok", "token_type": "Bearer"})
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    server = await serve(answer)
    settings = Settings.build(
        "id",
        "secret",
        environ={},
        api_url=f"{server.url}/v1",
        token_url=f"{server.url}/api/token",
        max_retries=2,
    )

    async def no_sleep(_: float) -> None:
        return None

    async with SpotifyClient(settings, sleep=no_sleep) as client:
        with pytest.raises(RequestError, match="not JSON"):
            await client.search_isrc("USRC17607839")
    searches = [s for s in server.seen if s.path == "/v1/search"]
    assert len(searches) == 3  # the first try and two retries
