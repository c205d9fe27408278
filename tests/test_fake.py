"""The local Spotify: shapes checked against the OpenAPI description, switches via /_stats."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jsonschema
import pytest

from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

from .openapi import validate_response, validate_schema

ServerFactory = Callable[..., Any]


@pytest.fixture
async def start() -> AsyncIterator[ServerFactory]:
    servers: list[FakeSpotify] = []

    async def factory(**config: Any) -> FakeSpotify:
        server = await FakeSpotify(**config).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def token(http: aiohttp.ClientSession, server: FakeSpotify) -> str:
    async with http.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        headers=basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    return str(body["access_token"])


async def get(
    http: aiohttp.ClientSession, url: str, tok: str | None, **params: str
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with http.get(url, params=params, headers=headers) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp.headers


async def search(
    http: aiohttp.ClientSession, server: FakeSpotify, tok: str, isrc: str, **params: str
) -> tuple[int, Any, Any]:
    return await get(
        http, f"{server.api_url}/search", tok, q=f"isrc:{isrc}", type="track", **params
    )


# -- token endpoint ----------------------------------------------------------------------


async def test_token_by_basic_auth_and_by_form_fields(
    start: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start()
    assert await token(http, server)
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    async with http.post(server.token_url, data=form) as resp:
        assert resp.status == 200
    assert server.stats()["tokens_issued"] == 2


async def test_token_errors_use_the_oauth_shape(
    start: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start()
    async with http.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        headers=basic(DEMO_CLIENT_ID, "wrong"),
    ) as resp:
        assert (resp.status, await resp.json()) == (
            400,
            {"error": "invalid_client", "error_description": "Invalid client"},
        )
    async with http.post(
        server.token_url, data={}, headers=basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "unsupported_grant_type"
    assert server.stats()["token_requests"] == 2 and server.stats()["tokens_issued"] == 0


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_tokens_really_expire(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    clock = Clock()
    server = await start(token_lifetime=0.3, clock=clock)
    tok = await token(http, server)
    assert (await search(http, server, tok, "QZ7XS2400012"))[0] == 200
    clock.now += 0.29
    assert (await search(http, server, tok, "QZ7XS2400012"))[0] == 200
    clock.now += 0.02
    status, body, _ = await search(http, server, tok, "QZ7XS2400012")
    assert (status, body["error"]["message"]) == (401, "The access token expired")
    status, body, _ = await search(http, server, "not-a-token", "QZ7XS2400012")
    assert (status, body["error"]["message"]) == (401, "Invalid access token")
    assert (await stats(http, server))["requests"]["search"] == {"200": 2, "401": 2}


# -- search ------------------------------------------------------------------------------


async def test_known_isrcs_answer_as_spotify_does(
    start: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start()
    tok = await token(http, server)
    _, body, _ = await search(http, server, tok, "QZ7XS2400012", limit="10")
    (track,) = body["tracks"]["items"]
    assert (track["name"], track["album"]["name"], track["artists"][0]["name"]) == (
        "CARNIVAL",
        "VULTURES 1",
        "¥$",
    )
    _, body, _ = await search(http, server, tok, "QZJ842400387", limit="10")
    assert body["tracks"]["total"] == 6
    assert {t["artists"][0]["name"] for t in body["tracks"]["items"]} == {"Artemas"}
    assert body["tracks"]["items"][0]["album"]["album_type"] == "single"


async def test_paging_links_and_totals(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    server = await start()
    tok = await token(http, server)
    _, body, _ = await search(http, server, tok, "QZJ842400387", limit="2", offset="2")
    page = body["tracks"]
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (6, 2, 2, 2)
    assert "offset=4" in page["next"] and "limit=2" in page["next"]
    assert "offset=0" in page["previous"]
    _, body, _ = await search(http, server, tok, "QZJ842400387", limit="2", offset="4")
    assert body["tracks"]["next"] is None
    _, body, _ = await search(http, server, tok, "QZJ842400387", limit="10")
    assert body["tracks"]["previous"] is None and body["tracks"]["next"] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "11"}, "Invalid limit"),
        ({"limit": "0"}, "Invalid limit"),
        ({"limit": "50"}, "Invalid limit"),
        ({"offset": "-1"}, "Invalid offset"),
        ({"market": "usa"}, "Invalid market code"),
    ],
)
async def test_search_rejects_bad_parameters(
    start: ServerFactory, http: aiohttp.ClientSession, params: dict[str, str], message: str
) -> None:
    server = await start()
    tok = await token(http, server)
    status, body, _ = await search(http, server, tok, "QZ7XS2400012", **params)
    assert (status, body) == (400, {"error": {"status": 400, "message": message}})


async def test_or_queries_find_nothing(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    server = await start()
    tok = await token(http, server)
    status, body, _ = await get(
        http,
        f"{server.api_url}/search",
        tok,
        q="isrc:QZ7XS2400012 OR isrc:QZJ842400387",
        type="track",
    )
    assert (status, body["tracks"]["total"]) == (200, 0)


async def test_market_filters_region_locked_tracks(
    start: ServerFactory, http: aiohttp.ClientSession, tmp_path: Any
) -> None:
    fixtures = tmp_path / "fixed.json"
    fixtures.write_text(
        '{"tracks": [{"isrc": "SEAAA2400001", "name": "Bara i Sverige", "markets": ["SE"]}]}'
    )
    server = await start(fixtures=fixtures)
    tok = await token(http, server)
    assert (await search(http, server, tok, "SEAAA2400001"))[1]["tracks"][
        "total"
    ] == 0  # default market US
    assert (await search(http, server, tok, "SEAAA2400001", market="SE"))[1]["tracks"]["total"] == 1


# -- behaviour switches, read back through /_stats ---------------------------------------


async def stats(http: aiohttp.ClientSession, server: FakeSpotify) -> dict[str, Any]:
    async with http.get(f"{server.base_url}/_stats") as resp:
        return dict(await resp.json())


async def test_rolling_window_limit(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    clock = Clock()
    server = await start(window_limit=5, window_seconds=1, clock=clock)
    tok = await token(http, server)
    results = [await search(http, server, tok, "QZ7XS2400012") for _ in range(7)]
    assert [r[0] for r in results] == [200] * 5 + [429] * 2
    retry_after = results[5][2]["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 1
    assert results[5][1] == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    s = await stats(http, server)
    assert s["throttled"] == 2
    assert s["requests_during_penalty"] == 1  # the second 429 came during the first's penalty
    assert s["requests"]["search"] == {"200": 5, "429": 2}
    clock.now += 0.99
    assert (await search(http, server, tok, "QZ7XS2400012"))[0] == 429  # still in the window
    clock.now += 0.02
    assert (await search(http, server, tok, "QZ7XS2400012"))[0] == 200


async def test_daily_quota(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    server = await start(daily_quota=3, quota_retry_after=50_000)
    tok = await token(http, server)
    statuses = [(await search(http, server, tok, "QZ7XS2400012"))[:3] for _ in range(4)]
    assert [s[0] for s in statuses] == [200, 200, 200, 429]
    assert statuses[3][1] == {
        "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
    }
    assert statuses[3][2]["Retry-After"] == "50000"
    assert (await stats(http, server))["quota_exceeded"] == 1


@pytest.mark.parametrize(
    ("switch", "check"),
    [
        (
            "fault_5xx",
            lambda status, body: status in (500, 502, 503) and body["error"]["status"] == status,
        ),
        ("fault_html", lambda status, body: status == 502 and body.startswith("<html>")),
    ],
)
async def test_error_faults(
    start: ServerFactory, http: aiohttp.ClientSession, switch: str, check: Any
) -> None:
    server = await start(**{switch: 1.0})
    tok = await token(http, server)
    status, body, _ = await search(http, server, tok, "QZ7XS2400012")
    assert check(status, body)
    assert sum((await stats(http, server))["requests"]["search"].values()) == 1


async def test_dropped_connections(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    server = await start(fault_drop=1.0)
    tok = await token(http, server)
    with pytest.raises(aiohttp.ClientError):
        await search(http, server, tok, "QZ7XS2400012")
    s = await stats(http, server)
    # aiohttp's client quietly resends a GET once when a reused connection drops, so the
    # server may see two; every one of them is counted as dropped.
    assert 1 <= s["dropped_connections"] == s["requests"]["search"]["599"] <= 2


async def test_faults_are_seeded(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    outcomes = []
    for _ in range(2):
        server = await start(fault_5xx=0.5, seed=7)
        tok = await token(http, server)
        outcomes.append([(await search(http, server, tok, "QZ7XS2400012"))[0] for _ in range(20)])
    assert outcomes[0] == outcomes[1] and 200 in outcomes[0] and len(set(outcomes[0])) > 1


async def test_latency_slow_answers_and_in_flight_count(
    start: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start(latency=0.1)
    tok = await token(http, server)
    started = time.perf_counter()
    await asyncio.gather(*(search(http, server, tok, "QZ7XS2400012") for _ in range(10)))
    assert time.perf_counter() - started >= 0.1
    assert (await stats(http, server))["max_in_flight"] == 10
    slow = await start(fault_slow=1.0, slow_seconds=0.2)
    tok = await token(http, slow)
    started = time.perf_counter()
    await asyncio.gather(*(search(http, slow, tok, "QZ7XS2400012") for _ in range(3)))
    assert time.perf_counter() - started >= 0.2
    assert (await stats(http, slow))["max_in_flight"] == 3  # all three were held together


async def test_enrichment_endpoints_and_their_403_switches(
    start: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await start()
    tok = await token(http, server)
    _, body, _ = await search(http, server, tok, "QZJ842400387", limit="10")
    track_ids = [t["id"] for t in body["tracks"]["items"]]
    album_ids = [t["album"]["id"] for t in body["tracks"]["items"]]
    status, albums, _ = await get(
        http, f"{server.api_url}/albums", tok, ids=",".join([*album_ids, "unknown"])
    )
    assert (
        status == 200
        and [a["id"] for a in albums["albums"][:-1]] == album_ids
        and albums["albums"][-1] is None
    )
    status, album, _ = await get(http, f"{server.api_url}/albums/{album_ids[0]}", tok)
    assert status == 200 and album["name"] == "i like the way you kiss me"
    status, features, _ = await get(
        http, f"{server.api_url}/audio-features", tok, ids=",".join(track_ids)
    )
    assert status == 200 and [f["id"] for f in features["audio_features"]] == track_ids
    assert (await get(http, f"{server.api_url}/albums", tok, ids=",".join(["x"] * 21)))[0] == 400
    assert (await get(http, f"{server.api_url}/audio-features", tok, ids=",".join(["x"] * 101)))[
        0
    ] == 400

    server.reconfigure(forbid_album=True, forbid_albums=True, forbid_audio_features=True)
    for url, params in [
        (f"{server.api_url}/albums", {"ids": album_ids[0]}),
        (f"{server.api_url}/albums/{album_ids[0]}", {}),
        (f"{server.api_url}/audio-features", {"ids": track_ids[0]}),
    ]:
        status, body, _ = await get(http, url, tok, **params)
        assert (status, body["error"]["status"]) == (403, 403)
    s = await stats(http, server)
    assert s["requests"]["albums"]["403"] == 1 and s["requests"]["album"]["403"] == 1
    assert s["requests"]["audio-features"]["403"] == 1


async def test_catalogue_is_deterministic_and_varied(
    start: ServerFactory, http: aiohttp.ClientSession
) -> None:
    from isrc_resolver.fake import Catalogue

    a, b = Catalogue(seed=3), Catalogue(seed=3)
    isrcs = [f"USAAA24{n:05d}" for n in range(400)]
    assert [[t.id for t in a.search(i)] for i in isrcs] == [
        [t.id for t in b.search(i)] for i in isrcs
    ]
    counts = [len(a.search(i)) for i in isrcs]
    assert 0 in counts and 1 in counts and max(counts) >= 3
    tracks = [t for i in isrcs for t in a.search(i)]
    names = " ".join(t.name for t in tracks)
    assert "," in names and '"' in names and "\n" in names and "🔥" in names
    assert {t.album.release_date_precision for t in tracks} == {"day", "month", "year"}
    assert {t.album.album_type for t in tracks} == {"single", "album", "compilation"}


# -- shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("extended", [False, True])
async def test_every_body_matches_the_openapi_description(
    start: ServerFactory, http: aiohttp.ClientSession, extended: bool
) -> None:
    server = await start(extended_quota=extended)
    tok = await token(http, server)
    all_tracks = []
    for n in range(60):
        status, body, _ = await search(http, server, tok, f"GBAAA23{n:05d}", limit="10")
        assert status == 200
        validate_response("SearchItems", body)
        all_tracks += body["tracks"]["items"]
    for name in ("QZ7XS2400012", "QZJ842400387"):
        validate_response("SearchItems", (await search(http, server, tok, name))[1])
    album_ids = list({t["album"]["id"] for t in all_tracks})[:20]
    validate_response(
        "ManyAlbums", (await get(http, f"{server.api_url}/albums", tok, ids=",".join(album_ids)))[1]
    )
    validate_response(
        "OneAlbum", (await get(http, f"{server.api_url}/albums/{album_ids[0]}", tok))[1]
    )
    track_id = all_tracks[0]["id"]
    validate_response("OneTrack", (await get(http, f"{server.api_url}/tracks/{track_id}", tok))[1])
    features = (
        await get(
            http,
            f"{server.api_url}/audio-features",
            tok,
            ids=",".join(t["id"] for t in all_tracks[:100]),
        )
    )[1]
    validate_response("ManyAudioFeatures", features)
    validate_response("BadRequest", (await search(http, server, tok, "X", limit="11"))[1])
    validate_response("Unauthorized", (await search(http, server, "nope", "X"))[1])
    for track in all_tracks:
        validate_schema("TrackObject", track)
        assert ("popularity" in track) is extended  # removed for Development Mode apps


async def test_error_bodies_match(start: ServerFactory, http: aiohttp.ClientSession) -> None:
    server = await start(window_limit=1, window_seconds=30, forbid_albums=True)
    tok = await token(http, server)
    await search(http, server, tok, "QZ7XS2400012")
    validate_response("TooManyRequests", (await search(http, server, tok, "QZ7XS2400012"))[1])
    server.reconfigure(window_limit=None)
    validate_response("Forbidden", (await get(http, f"{server.api_url}/albums", tok, ids="x"))[1])


def test_the_validator_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_response("SearchItems", {"tracks": {"items": "not a list"}})
    with pytest.raises(jsonschema.ValidationError):
        validate_schema("TrackObject", {"duration_ms": "long"})


def test_spotipy_reads_track_album_and_artist(spotify_thread: Any) -> None:
    spotipy = pytest.importorskip("spotipy")
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyClientCredentials

    server = spotify_thread()

    class LocalCredentials(SpotifyClientCredentials):  # type: ignore[misc]
        OAUTH_TOKEN_URL = server.token_url

    sp = spotipy.Spotify(
        auth_manager=LocalCredentials(
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            cache_handler=MemoryCacheHandler(),  # not its default .cache file in the cwd
        ),
        retries=0,
    )
    sp.prefix = server.api_url + "/"
    result = sp.search(q="isrc:QZ7XS2400012", type="track", limit=10)
    track = result["tracks"]["items"][0]
    assert (track["name"], track["album"]["name"], track["artists"][0]["name"]) == (
        "CARNIVAL",
        "VULTURES 1",
        "¥$",
    )
    assert server.stats()["search_requests"] == 1


def test_runs_as_a_command_and_prints_its_url() -> None:
    import subprocess
    import sys
    from urllib.request import urlopen

    proc = subprocess.Popen(
        [sys.executable, "-m", "isrc_resolver.fake", "--port", "0", "--window", "10/30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        with urlopen(f"{base}/_stats") as resp:  # loopback only
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
