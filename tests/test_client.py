"""The exact requests the client sends, pinned with aioresponses, and its error mapping."""

import base64
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aioresponses import CallbackResult, aioresponses
from aioresponses import core as aioresponses_core
from yarl import URL

from isrc_resolver import (
    ConfigurationError,
    CredentialsError,
    ForbiddenError,
    RateLimitStop,
    RequestError,
    RetryPolicy,
    SpotifyClient,
    TokenError,
)

API = "https://api.example/v1"
TOKEN = "https://accounts.example/api/token"


class _SentRequest:
    output_size = 0


class _CompatResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289, open). It only reads ``output_size`` from it
    when the request is already sent, so a stand-in with that attribute is enough. Delete
    this once aioresponses passes it itself."""

    def __init__(self, *args: Any, stream_writer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, stream_writer=stream_writer or _SentRequest(), **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:
        monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def client() -> AsyncIterator[SpotifyClient]:
    async with SpotifyClient(
        "my-id",
        "my-secret",
        api_url=API,
        token_url=TOKEN,
        rate=1000,
        policy=RetryPolicy(max_retries=2, max_wait=60),
        sleep=no_sleep,
    ) as c:
        yield c


def token_ok(m: aioresponses, value: str = "tok-1", repeat: bool = False) -> None:
    m.post(
        TOKEN,
        payload={"access_token": value, "token_type": "bearer", "expires_in": 3600},
        repeat=repeat,
    )


def gets(m: aioresponses) -> list[Any]:
    """Every GET the client sent, in order (aioresponses keys them by encoded URL)."""
    return [call for (method, _), calls in m.requests.items() if method == "GET" for call in calls]


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


SEARCH = f"{API}/search?q=isrc:USRC17607839&type=track&limit=10"


async def test_exact_requests(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(SEARCH, payload=page())
        await client.search_isrc("USRC17607839")
        token_call = m.requests[("POST", URL(TOKEN))][0]
        assert token_call.kwargs["data"] == {"grant_type": "client_credentials"}
        basic = token_call.kwargs["headers"]["Authorization"]
        assert basic.startswith("Basic ")
        assert base64.b64decode(basic.split()[1]) == b"my-id:my-secret"
        (search_call,) = gets(m)
        assert search_call.kwargs["params"] == {
            "q": "isrc:USRC17607839",
            "type": "track",
            "limit": "10",
        }
        assert search_call.kwargs["headers"] == {"Authorization": "Bearer tok-1"}


async def test_market_is_passed_and_limit_never_exceeds_ten(client: SpotifyClient) -> None:
    url = f"{API}/search?q=isrc:USRC17607839&type=track&limit=10&market=GB"
    with aioresponses() as m:
        token_ok(m)
        m.get(url, payload=page())
        await client.search_isrc("USRC17607839", market="GB", limit=50)
        assert gets(m)[0].kwargs["params"]["limit"] == "10"


async def test_401_renews_the_token_once_and_repeats(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m, "old")
        token_ok(m, "new")
        m.get(
            SEARCH,
            status=401,
            payload={"error": {"status": 401, "message": "The access token expired"}},
        )
        m.get(SEARCH, payload=page(total=0))
        await client.search_isrc("USRC17607839")
        calls = gets(m)
        assert [c.kwargs["headers"]["Authorization"] for c in calls] == ["Bearer old", "Bearer new"]
        assert client.tokens.fetches == 2


async def test_persistent_401_is_an_error_not_a_loop(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m, repeat=True)
        m.get(
            SEARCH,
            status=401,
            payload={"error": {"status": 401, "message": "Invalid access token"}},
            repeat=True,
        )
        with pytest.raises(RequestError, match="401 again"):
            await client.search_isrc("USRC17607839")
        assert len(gets(m)) == 2


async def test_transient_failures_are_retried_then_given_up(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(SEARCH, status=503, payload={"error": {"status": 503, "message": "x"}})
        m.get(SEARCH, status=502, body="<html>Bad gateway</html>", content_type="text/html")
        m.get(SEARCH, status=200, body="not json")
        with pytest.raises(RequestError, match=r"not JSON.*gave up after 2 retries"):
            await client.search_isrc("USRC17607839")
        assert len(gets(m)) == 3
        assert client.stats.retries == 2


async def test_connection_errors_are_retried(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(SEARCH, exception=ConnectionResetError("reset by peer"))
        m.get(SEARCH, payload=page(total=0))
        result = await client.search_isrc("USRC17607839")
        assert result["total"] == 0
        assert client.stats.transport_errors == 1


async def test_other_4xx_are_not_retried(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(SEARCH, status=400, payload={"error": {"status": 400, "message": "Invalid limit"}})
        with pytest.raises(RequestError, match="400 Invalid limit"):
            await client.search_isrc("USRC17607839")
        assert len(gets(m)) == 1


async def test_403_is_forbidden(client: SpotifyClient) -> None:
    url = f"{API}/audio-features?ids=a"
    with aioresponses() as m:
        token_ok(m)
        m.get(url, status=403, payload={"error": {"status": 403, "message": "Forbidden"}})
        with pytest.raises(ForbiddenError):
            await client.get_json("audio-features", {"ids": "a"})


async def test_429_pauses_the_gate_then_retries(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(
            SEARCH,
            status=429,
            headers={"retry-after": "3"},
            payload={"error": {"status": 429, "message": "API rate limit exceeded"}},
        )
        m.get(SEARCH, payload=page(total=0))
        # The gate's own pausing is tested on a virtual clock (test_retry); here only
        # that the client hands it the Retry-After.
        paused: list[float] = []
        client.gate.pause = paused.append  # type: ignore[method-assign]
        await client.search_isrc("USRC17607839")
        assert paused == [3.0]
        assert client.stats.throttled == 1


async def test_long_retry_after_stops_at_once(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(
            SEARCH,
            status=429,
            headers={"Retry-After": "50000"},
            payload={"error": {"status": 429, "message": "API rate limit exceeded"}},
        )
        with pytest.raises(RateLimitStop) as info:
            await client.search_isrc("USRC17607839")
        assert info.value.retry_after == 50000 and not info.value.quota
        assert len(gets(m)) == 1


async def test_quota_exceeded_stops_even_with_a_short_wait(client: SpotifyClient) -> None:
    with aioresponses() as m:
        token_ok(m)
        m.get(
            SEARCH,
            status=429,
            headers={"Retry-After": "10"},
            payload={
                "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
            },
        )
        with pytest.raises(RateLimitStop) as info:
            await client.search_isrc("USRC17607839")
        assert info.value.quota


async def test_invalid_client_stops_without_retry(client: SpotifyClient) -> None:
    with aioresponses() as m:
        m.post(
            TOKEN,
            status=400,
            payload={"error": "invalid_client", "error_description": "Invalid client"},
        )
        with pytest.raises(CredentialsError, match="rejected the client id or secret") as info:
            await client.search_isrc("USRC17607839")
        assert "my-secret" not in str(info.value)
        assert len(m.requests[("POST", URL(TOKEN))]) == 1


async def test_token_type_is_compared_case_insensitively_and_checked(client: SpotifyClient) -> None:
    with aioresponses() as m:
        m.post(TOKEN, payload={"access_token": "t", "token_type": "mac", "expires_in": 3600})
        with pytest.raises(ConfigurationError, match="bearer token"):
            await client.search_isrc("USRC17607839")


async def test_token_endpoint_that_keeps_failing_stops_everything(client: SpotifyClient) -> None:
    with aioresponses() as m:
        m.post(TOKEN, status=503, body="down", repeat=True)
        with pytest.raises(TokenError, match="could not get an access token from https://accounts"):
            await client.search_isrc("USRC17607839")
        assert len(m.requests[("POST", URL(TOKEN))]) == 3  # max_retries=2
        assert gets(m) == []


async def test_token_endpoint_5xx_is_retried() -> None:
    async with SpotifyClient("id", "secret", api_url=API, token_url=TOKEN, sleep=no_sleep) as c:
        with aioresponses() as m:
            m.post(TOKEN, status=503, body="busy")
            token_ok(m)
            m.get(SEARCH, payload=page(total=0))
            await c.search_isrc("USRC17607839")
            assert len(m.requests[("POST", URL(TOKEN))]) == 2


async def test_callback_sees_no_secret_in_the_url(client: SpotifyClient) -> None:
    seen: list[str] = []

    def record(url: URL, **kwargs: Any) -> CallbackResult:
        seen.append(str(url))
        return CallbackResult(payload=page(total=0))

    with aioresponses() as m:
        token_ok(m)
        m.get(SEARCH, callback=record)
        await client.search_isrc("USRC17607839")
    assert seen and all("secret" not in u and "tok-1" not in u for u in seen)


async def test_lifecycle_is_enforced() -> None:
    c = SpotifyClient("id", "secret")
    with pytest.raises(RuntimeError, match="not open"):
        await c.search_isrc("USRC17607839")
    async with c:
        with pytest.raises(RuntimeError, match="already open"):
            await c.__aenter__()
