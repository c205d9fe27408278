"""A local server that answers like the Spotify Web API (aiohttp.web).

What it serves, with the real API's paths, status codes and body shapes:

* ``POST /api/token``           client credentials (Basic auth or form fields)
* ``GET  /v1/search``           ``q=isrc:...``, ``type``, ``market``, ``limit`` 1..10, ``offset``
* ``GET  /v1/albums/{id}``, ``GET /v1/albums?ids=`` (≤ 20), ``GET /v1/audio-features?ids=`` (≤ 100)
* ``GET  /deezer/track/isrc:X`` Deezer's track by ISRC (see :mod:`.deezer`)
* ``GET  /_stats``              counters for tests and benchmarks (not part of Spotify)

and how it misbehaves, when asked (:class:`FakeConfig`): latency with jitter, a rolling
window rate limit, a daily quota, 5xx and HTML 502 answers, dropped connections, slow
answers, expiring tokens, and endpoints closed with 403. All randomness comes from the seed.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from ..markets import MARKETS
from .catalogue import Availability, Catalogue, FakeTrack
from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeConfig, Stats, error
from .faults import Misbehaviour
from .shapes import Shapes
from .sides import StoreSides
from .tokens import Tokens

__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "FakeConfig", "FakeSpotify"]


_ISRC_FILTER = re.compile(r"isrc:\s*([A-Za-z0-9]+)", re.IGNORECASE)
_FIELD_FILTER = re.compile(r'\b(track|artist):"([^"]*)"', re.IGNORECASE)

_OWN_WAYS = ("/_stats", "/deezer/", "/tidal/", "/apple/", "/musicbrainz/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeSpotify(Tokens, Misbehaviour, Shapes, StoreSides):
    """The local Spotify. Use in-process as ``async with FakeSpotify(...) as server``.

    ``server.api_url`` (``http://127.0.0.1:PORT/v1``) and ``server.token_url`` are what
    the client needs; ``server.stats()`` returns the counters that ``/_stats`` serves.
    ``clock`` (default: ``time.monotonic``) times token lifetimes and the rate window; a
    test passes its own to make time pass without waiting.
    """

    def __init__(
        self,
        config: FakeConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        self._clock = clock  # token lifetimes, the rate window and penalties
        self.config = replace(config or FakeConfig(), **overrides)
        cfg = self.config
        shares = Availability(
            cfg.region_locked, cfg.foreign, cfg.isrc_invisible, cfg.unavailable, cfg.conflicting
        )
        self.catalogue = Catalogue(cfg.seed, cfg.fixtures, shares)
        self.catalogue.world = cfg.world
        self._rng = random.Random(self.config.seed)
        self._tokens: dict[str, float] = {}
        self._window: deque[float] = deque()
        self._penalty_until = 0.0
        self._quota_used = 0
        self._stats = Stats()
        self._stores_init()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = self._build_app()

    @classmethod
    def demo(cls) -> FakeSpotify:
        """The server ``--demo`` runs against: the stores paced for a quick first try."""
        return cls(**cls.DEMO_LIMITS)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/api/token"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeSpotify:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # With port 0 the OS chose the port; the runner lists what it bound.
        addresses = self._runner.addresses
        if not addresses:
            raise RuntimeError("the local Spotify server did not bind a socket")
        bound_port = addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSpotify:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def stats(self) -> dict[str, Any]:
        return {**self._stats.as_json(), **self._stores_stats()}

    def reset_stats(self) -> None:
        self._stats = Stats()
        self._stores_reset()

    def reconfigure(self, **changes: Any) -> None:
        """Change behaviour while running (e.g. open or close an endpoint mid-test, or
        change the world between two nights: ``world=World(taken_down=...)``)."""
        self.config = replace(self.config, **changes)
        self.catalogue.world = self.config.world

    # -- app -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/v1/search", self._search)
        app.router.add_get("/v1/tracks/{id}", self._track)
        app.router.add_get("/v1/albums", self._albums)
        app.router.add_get("/v1/albums/{id}", self._album)
        app.router.add_get("/v1/audio-features", self._audio_features)
        self._stores_routes(app)
        app.router.add_get("/_stats", self._stats_handler)
        app.router.add_post("/_stats/reset", self._reset_handler)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(_OWN_WAYS):  # the other stores misbehave in their own ways
            return await handler(request)
        endpoint = _endpoint_name(path)
        stats = self._stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            response = await self._misbehave(request, endpoint)
            if response is None:
                response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        finally:
            stats.in_flight -= 1
        status = getattr(response, "status", 0)
        stats.requests.setdefault(endpoint, Counter())[status] += 1
        return response

    # -- search ----------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query
        q = query.get("q", "")
        if not q:
            return error(400, "No search query")
        types = [t.strip() for t in query.get("type", "").split(",") if t.strip()]
        if not types:
            return error(400, "Missing parameter type")
        known = {"album", "artist", "playlist", "track", "show", "episode", "audiobook"}
        if any(t not in known for t in types):
            return error(400, "Bad search type field")
        try:
            limit = int(query.get("limit", "5"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return error(400, "Invalid limit")
        if not 1 <= limit <= 10:
            return error(400, "Invalid limit")
        if not 0 <= offset <= 1000:
            return error(400, "Invalid offset")
        market = query.get("market")
        if market is not None and market.upper() not in MARKETS:
            return error(400, "Invalid market code")
        # There is no marketless search: a client-credentials search looks in the US.
        market = (market or "US").upper()
        found: list[FakeTrack] = []
        match = _ISRC_FILTER.search(q)
        fields = dict(_FIELD_FILTER.findall(q))
        if match and " OR " not in q:
            isrc = match.group(1).upper()
            self._stats.search_isrcs[isrc] += 1
            found = self.catalogue.search(isrc, market)
        elif "track" in fields:
            self._stats.title_searches += 1
            found = self.catalogue.search_title(fields["track"], fields.get("artist", ""), market)
        body: dict[str, Any] = {}
        plural = {
            "track": "tracks",
            "album": "albums",
            "artist": "artists",
            "playlist": "playlists",
            "show": "shows",
            "episode": "episodes",
            "audiobook": "audiobooks",
        }
        for kind in types:
            items = (
                [self._track_json(t) for t in found[offset : offset + limit]]
                if kind == "track"
                else []
            )
            total = len(found) if kind == "track" else 0
            body[plural[kind]] = self._paging(request, items, total, limit, offset)
        return web.json_response(body)

    # -- tracks, albums and audio features ---------------------------------------------

    async def _track(self, request: web.Request) -> web.Response:
        market = request.query.get("market")
        if market is not None and market.upper() not in MARKETS:
            return error(400, "Invalid market code")
        track_id = request.match_info["id"]
        if not _TRACK_ID.fullmatch(track_id):
            return error(400, "Invalid base62 id")
        track = self.catalogue.track_by_id(track_id)
        if track is None:
            return error(404, "Non existing id")
        return web.json_response(self._track_json(track))

    async def _album(self, request: web.Request) -> web.Response:
        if self.config.forbid_album:
            return error(403, "Forbidden")
        album = self.catalogue.album(request.match_info["id"])
        if album is None:
            return error(404, "Non existing id")
        return web.json_response(self._album_json(album, full=True))

    async def _albums(self, request: web.Request) -> web.Response:
        if self.config.forbid_albums:
            return error(403, "Forbidden")
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            return error(400, "invalid id")
        if len(ids) > 20:
            return error(400, "Too many ids requested")
        albums = [self.catalogue.album(i) for i in ids]
        return web.json_response(
            {"albums": [self._album_json(a, full=True) if a else None for a in albums]}
        )

    async def _audio_features(self, request: web.Request) -> web.Response:
        if self.config.forbid_audio_features:
            return error(403, "Forbidden")
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            return error(400, "invalid id")
        if len(ids) > 100:
            return error(400, "Too many ids requested")
        out: list[dict[str, Any] | None] = []
        for track_id in ids:
            track = self.catalogue.track(track_id)
            if track is None:
                out.append(None)
                continue
            out.append(
                {
                    **self.catalogue.audio_features(track),
                    "type": "audio_features",
                    "id": track.id,
                    "uri": f"spotify:track:{track.id}",
                    "track_href": f"{self.api_url}/tracks/{track.id}",
                    "analysis_url": f"{self.api_url}/audio-analysis/{track.id}",
                    "duration_ms": track.duration_ms,
                }
            )
        return web.json_response({"audio_features": out})

    # -- stats -----------------------------------------------------------------------

    async def _stats_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset_handler(self, request: web.Request) -> web.Response:
        self.reset_stats()
        return web.json_response(self.stats())


_TRACK_ID = re.compile(r"[0-9A-Za-z]{22}")


def _endpoint_name(path: str) -> str:
    if path == "/api/token":
        return "token"
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "v1":
        if parts[1] == "albums" and len(parts) > 2:
            return "album"
        if parts[1] == "tracks" and len(parts) > 2:
            return "track"
        return parts[1]
    return "other"
