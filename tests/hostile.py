"""A small Spotify look-alike that answers however a test tells it to: wrong types, odd
headers, echoed credentials, endless bodies. Loopback only, on a thread of its own so the
CLI (``asyncio.run``) can talk to it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from aiohttp import web

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLIENT_ID = "hostile-client-id"
CLIENT_SECRET = "hostile-client-secret-0123456789"


def track(**fields: Any) -> dict[str, Any]:
    """A well-formed track, with ``fields`` replacing its own."""
    item: dict[str, Any] = {
        "id": "track0000000000000001",
        "name": "A Song",
        "uri": "spotify:track:track0000000000000001",
        "external_ids": {"isrc": "USAAA2400001"},
        "external_urls": {"spotify": "https://open.spotify.com/track/track0000000000000001"},
        "duration_ms": 200000,
        "explicit": False,
        "track_number": 1,
        "disc_number": 1,
        "artists": [{"id": "artist1", "name": "Someone"}],
        "album": {"id": "album1", "name": "An Album", "album_type": "album",
                  "release_date": "2024-01-01", "release_date_precision": "day",
                  "total_tracks": 10},
    }  # fmt: skip
    item.update(fields)
    return item


def page(*items: dict[str, Any]) -> web.Response:
    body = {"tracks": {"href": "", "limit": 10, "next": None, "offset": 0, "previous": None,
                       "total": len(items), "items": list(items)}}  # fmt: skip
    return web.json_response(body)


async def good_token(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        {
            "access_token": "hostile-token-abcdefghijklmnop",
            "token_type": "Bearer",
            "expires_in": 3600,
        }
    )


class HostileSpotify:
    """Serves ``/api/token`` with ``token`` and ``/v1/search`` with ``search``; counts both."""

    def __init__(self, search: Answer, token: Answer = good_token) -> None:
        self.search, self.token = search, token
        self.counts = {"token": 0, "search": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.base_url = self._call(self._start())

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/v1/search", self._search)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _token(self, request: web.Request) -> web.StreamResponse:
        self.counts["token"] += 1
        return await self.token(request)

    async def _search(self, request: web.Request) -> web.StreamResponse:
        self.counts["search"] += 1
        return await self.search(request)

    def env(self) -> dict[str, str]:
        return {
            "SPOTIFY_CLIENT_ID": CLIENT_ID,
            "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
            "SPOTIFY_API_URL": f"{self.base_url}/v1",
            "SPOTIFY_TOKEN_URL": f"{self.base_url}/api/token",
        }

    def close(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def json_response(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body), content_type="application/json", headers=headers
    )
