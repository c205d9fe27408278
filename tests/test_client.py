"""The exact requests the client sends, and its error mapping: through a MockTransport that
answers from a script, so nothing is patched and no socket is opened."""

import base64
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Any

import pytest

from isrc_resolver import (
    CredentialsError,
    ForbiddenError,
    HttpRequest,
    HttpResponse,
    MockTransport,
    RateLimitStop,
    RequestError,
    Settings,
    SpotifyClient,
    TokenError,
    TransportError,
)

API = "https://api.example/v1"
TOKEN = "https://accounts.example/api/token"
SEARCH = f"{API}/search"


def settings(client_id: str = "id", secret: str = "secret", **options: Any) -> Settings:
    """The client's settings, built as the library builds them (no environment read)."""
    return Settings.build(client_id, secret, environ={}, **options)


class Script:
    """Canned answers by URL, served in order (the last one repeats); every request kept."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[HttpResponse | Exception]] = defaultdict(deque)
        self.transport = MockTransport(self._answer)

    def add(
        self,
        url: str,
        status: int = 200,
        payload: Any = None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body if body is not None else json.dumps(payload).encode()
        self.answers[url].append(HttpResponse(status, headers or {}, data))

    def fail(self, url: str, error: Exception) -> None:
        self.answers[url].append(error)

    def token_ok(self, value: str = "tok-1") -> None:
        self.add(TOKEN, payload={"access_token": value, "token_type": "bearer", "expires_in": 3600})

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        queue = self.answers[request.url]
        if not queue:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sent(self, url: str) -> list[HttpRequest]:
        return [r for r in self.transport.requests if r.url == url]


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def client(script: Script) -> AsyncIterator[SpotifyClient]:
    async with SpotifyClient(
        settings(
            "my-id",
            "my-secret",
            api_url=API,
            token_url=TOKEN,
            rate=1000,
            max_retries=2,
            max_wait=60,
        ),
        transport=script.transport,
        sleep=no_sleep,
    ) as c:
        yield c


def page(*items: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    return {
        "tracks": {
            "href": "",
            "limit": 10,
            "next": None,
            "offset": 0,
            "previous": None,
            "total": len(items) if total is None else total,
            "items": list(items),
        }
    }


async def test_exact_requests(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(SEARCH, payload=page())
    await client.search_isrc("USRC17607839")
    (token_call,) = script.sent(TOKEN)
    assert token_call.method == "POST"
    assert token_call.data == {"grant_type": "client_credentials"}
    basic = token_call.headers["Authorization"]
    assert basic.startswith("Basic ")
    assert base64.b64decode(basic.split()[1]) == b"my-id:my-secret"
    (search_call,) = script.sent(SEARCH)
    assert search_call.method == "GET"
    assert search_call.params == {"q": "isrc:USRC17607839", "type": "track", "limit": "10"}
    assert search_call.headers == {"Authorization": "Bearer tok-1"}


async def test_market_is_passed_and_limit_never_exceeds_ten(
    client: SpotifyClient, script: Script
) -> None:
    script.token_ok()
    script.add(SEARCH, payload=page())
    await client.search_isrc("USRC17607839", market="GB", limit=50)
    params = script.sent(SEARCH)[0].params
    assert params is not None and (params["limit"], params["market"]) == ("10", "GB")


async def test_401_renews_the_token_once_and_repeats(client: SpotifyClient, script: Script) -> None:
    script.token_ok("old")
    script.token_ok("new")
    script.add(SEARCH, 401, {"error": {"status": 401, "message": "The access token expired"}})
    script.add(SEARCH, payload=page(total=0))
    await client.search_isrc("USRC17607839")
    auths = [c.headers["Authorization"] for c in script.sent(SEARCH)]
    assert auths == ["Bearer old", "Bearer new"]
    assert client.tokens.fetches == 2


async def test_persistent_401_is_an_error_not_a_loop(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(SEARCH, 401, {"error": {"status": 401, "message": "Invalid access token"}})
    with pytest.raises(RequestError, match="401 again"):
        await client.search_isrc("USRC17607839")
    assert len(script.sent(SEARCH)) == 2


async def test_transient_failures_are_retried_then_given_up(
    client: SpotifyClient, script: Script
) -> None:
    script.token_ok()
    script.add(SEARCH, 503, {"error": {"status": 503, "message": "x"}})
    script.add(SEARCH, 502, body=b"<html>Bad gateway</html>")
    script.add(SEARCH, 200, body=b"not json")
    with pytest.raises(RequestError, match=r"not JSON.*gave up after 2 retries"):
        await client.search_isrc("USRC17607839")
    assert len(script.sent(SEARCH)) == 3
    assert client.stats.retries == 2


async def test_connection_errors_are_retried(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.fail(SEARCH, TransportError("ConnectionResetError"))
    script.add(SEARCH, payload=page(total=0))
    result = await client.search_isrc("USRC17607839")
    assert result["total"] == 0
    assert client.stats.transport_errors == 1


async def test_other_4xx_are_not_retried(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(SEARCH, 400, {"error": {"status": 400, "message": "Invalid limit"}})
    with pytest.raises(RequestError, match="400 Invalid limit"):
        await client.search_isrc("USRC17607839")
    assert len(script.sent(SEARCH)) == 1


async def test_403_is_forbidden(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(f"{API}/audio-features", 403, {"error": {"status": 403, "message": "Forbidden"}})
    with pytest.raises(ForbiddenError):
        await client.get_json("audio-features", {"ids": "a"})


async def test_429_pauses_the_gate_then_retries(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(
        SEARCH,
        429,
        {"error": {"status": 429, "message": "API rate limit exceeded"}},
        headers={"retry-after": "3"},
    )
    script.add(SEARCH, payload=page(total=0))
    # The gate's own pausing is tested on a virtual clock (test_retry); here only that the
    # client hands it the Retry-After.
    paused: list[float] = []
    client.gate.pause = lambda seconds, admitted_at=None: paused.append(seconds)  # type: ignore[method-assign]
    await client.search_isrc("USRC17607839")
    assert paused == [3.0]
    assert client.stats.throttled == 1


async def test_long_retry_after_stops_at_once(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(
        SEARCH,
        429,
        {"error": {"status": 429, "message": "API rate limit exceeded"}},
        headers={"Retry-After": "50000"},
    )
    with pytest.raises(RateLimitStop) as info:
        await client.search_isrc("USRC17607839")
    assert info.value.retry_after == 50000 and not info.value.quota
    assert len(script.sent(SEARCH)) == 1


async def test_quota_exceeded_stops_even_with_a_short_wait(
    client: SpotifyClient, script: Script
) -> None:
    script.token_ok()
    script.add(
        SEARCH,
        429,
        {"error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}},
        headers={"Retry-After": "10"},
    )
    with pytest.raises(RateLimitStop) as info:
        await client.search_isrc("USRC17607839")
    assert info.value.quota


async def test_invalid_client_stops_without_retry(client: SpotifyClient, script: Script) -> None:
    script.add(TOKEN, 400, {"error": "invalid_client", "error_description": "Invalid client"})
    with pytest.raises(CredentialsError, match="rejected the client id or secret") as info:
        await client.search_isrc("USRC17607839")
    assert "my-secret" not in str(info.value)
    assert len(script.sent(TOKEN)) == 1


async def test_token_type_is_compared_case_insensitively_and_checked(
    client: SpotifyClient, script: Script
) -> None:
    script.add(TOKEN, payload={"access_token": "t", "token_type": "mac", "expires_in": 3600})
    with pytest.raises(TokenError, match="bearer token"):
        await client.search_isrc("USRC17607839")


async def test_token_endpoint_that_keeps_failing_stops_everything(
    client: SpotifyClient, script: Script
) -> None:
    script.add(TOKEN, 503, body=b"down")
    with pytest.raises(TokenError, match="could not get an access token from https://accounts"):
        await client.search_isrc("USRC17607839")
    assert len(script.sent(TOKEN)) == 3  # max_retries=2
    assert script.sent(SEARCH) == []


async def test_token_endpoint_5xx_is_retried(script: Script) -> None:
    script.add(TOKEN, 503, body=b"busy")
    script.token_ok()
    script.add(SEARCH, payload=page(total=0))
    async with SpotifyClient(
        settings(api_url=API, token_url=TOKEN), transport=script.transport, sleep=no_sleep
    ) as c:
        await c.search_isrc("USRC17607839")
    assert len(script.sent(TOKEN)) == 2


async def test_no_secret_or_token_in_any_url(client: SpotifyClient, script: Script) -> None:
    script.token_ok()
    script.add(SEARCH, payload=page(total=0))
    await client.search_isrc("USRC17607839")
    urls = [f"{r.url}?{r.params}" for r in script.transport.requests]
    assert len(urls) == 2 and all("secret" not in u and "tok-1" not in u for u in urls)


async def test_lifecycle_is_enforced() -> None:
    c = SpotifyClient(settings())
    with pytest.raises(RuntimeError, match="not open"):
        await c.search_isrc("USRC17607839")
    async with c:
        with pytest.raises(RuntimeError, match="already open"):
            await c.__aenter__()


async def test_the_aiohttp_transport_speaks_to_a_real_server() -> None:
    """The default transport, end to end over loopback against the local Spotify."""
    from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

    async with (
        FakeSpotify() as server,
        SpotifyClient(
            settings(
                DEMO_CLIENT_ID,
                DEMO_CLIENT_SECRET,
                api_url=server.api_url,
                token_url=server.token_url,
            )
        ) as c,
    ):
        tracks = await c.search_isrc("QZ7XS2400012")
        assert tracks["items"][0]["name"] == "CARNIVAL"
        stats = server.stats()
    assert stats["token_requests"] == 1 and stats["search_requests"] == 1


async def test_the_aiohttp_transport_maps_a_refused_connection() -> None:
    from isrc_resolver.http.transport import AiohttpTransport

    transport = AiohttpTransport(timeout=5)
    try:
        with pytest.raises(TransportError):
            # Port 9 on loopback (discard): nothing listens there on these machines.
            await transport.send(HttpRequest("GET", "http://127.0.0.1:9/v1/search"))
    finally:
        await transport.aclose()
