"""A local server that answers like the Spotify Web API (aiohttp.web).

What it serves, with the real API's paths, status codes and body shapes:

* ``POST /api/token``           client credentials (Basic auth or form fields)
* ``GET  /v1/search``           ``q=isrc:...``, ``type``, ``market``, ``limit`` 1..10, ``offset``
* ``GET  /v1/albums/{id}``, ``GET /v1/albums?ids=`` (≤ 20), ``GET /v1/audio-features?ids=`` (≤ 100)
* ``GET  /_stats``              counters for tests and benchmarks (not part of Spotify)

and how it misbehaves, when asked (:class:`FakeConfig`): latency with jitter, a rolling
window rate limit, a daily quota, 5xx and HTML 502 answers, dropped connections, slow
answers, expiring tokens, and endpoints closed with 403. All randomness comes from the seed.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..markets import MARKETS
from .catalogue import Availability, Catalogue, FakeAlbum, FakeArtist, FakeTrack

__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "FakeConfig", "FakeSpotify"]

DEMO_CLIENT_ID = "demo-client-id"
DEMO_CLIENT_SECRET = "demo-client-secret"

_ISRC_FILTER = re.compile(r"isrc:\s*([A-Za-z0-9]+)", re.IGNORECASE)
_FIELD_FILTER = re.compile(r'\b(track|artist):"([^"]*)"', re.IGNORECASE)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class FakeConfig:
    """How the local server behaves. The defaults are a well-behaved, fast Spotify."""

    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    seed: int = 0
    fixtures: Path | None = None
    token_lifetime: float = 3600.0
    latency: float = 0.0  # seconds added to every API answer
    jitter: float = 0.0  # ± seconds around latency
    window_limit: int | None = None  # N requests ...
    window_seconds: float = 30.0  # ... per rolling window of S seconds, else 429
    daily_quota: int | None = None  # API requests before QUOTA_EXCEEDED
    quota_retry_after: int = 50_000
    fault_5xx: float = 0.0  # probability of a JSON 500/502/503
    fault_html: float = 0.0  # probability of a 502 with an HTML body (a gateway)
    fault_drop: float = 0.0  # probability of closing the connection without an answer
    fault_slow: float = 0.0  # probability of answering after slow_seconds
    slow_seconds: float = 5.0
    extended_quota: bool = False  # serve the fields Spotify removed for Development Mode
    forbid_album: bool = False  # 403 on GET /albums/{id}
    forbid_albums: bool = False  # 403 on GET /albums?ids= (Development Mode)
    forbid_audio_features: bool = False  # 403 on GET /audio-features (apps after 2024-11-27)
    # Shares of generated ISRCs that are hard to find (see catalogue.Availability).
    region_locked: float = 0.0  # only in the market of the ISRC's prefix
    foreign: float = 0.0  # only in one market unrelated to the prefix
    isrc_invisible: float = 0.0  # missed by isrc: everywhere, found by track:/artist:
    unavailable: float = 0.0  # in no market


@dataclass
class _Stats:
    requests: dict[str, Counter[int]] = field(default_factory=dict)
    token_requests: int = 0
    tokens_issued: int = 0
    throttled: int = 0
    quota_exceeded: int = 0
    during_penalty: int = 0
    dropped: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    search_isrcs: Counter[str] = field(default_factory=Counter)
    title_searches: int = 0  # q=track:... artist:... (no isrc: filter)

    def as_json(self) -> dict[str, Any]:
        by_endpoint = {ep: {str(k): v for k, v in c.items()} for ep, c in self.requests.items()}
        return {
            "requests": by_endpoint,
            "total_requests": sum(sum(c.values()) for c in self.requests.values()),
            "search_requests": sum(self.requests.get("search", Counter()).values()),
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "throttled": self.throttled,
            "quota_exceeded": self.quota_exceeded,
            "requests_during_penalty": self.during_penalty,
            "dropped_connections": self.dropped,
            "max_in_flight": self.max_in_flight,
            "unique_isrcs_searched": len(self.search_isrcs),
            "title_searches": self.title_searches,
        }


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"error": {"status": status, "message": message, **extra}}, status=status
    )


class FakeSpotify:
    """The local Spotify. Use in-process as ``async with FakeSpotify(...) as server``.

    ``server.api_url`` (``http://127.0.0.1:PORT/v1``) and ``server.token_url`` are what
    the client needs; ``server.stats()`` returns the counters that ``/_stats`` serves.
    """

    def __init__(self, config: FakeConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or FakeConfig(), **overrides)
        cfg = self.config
        shares = Availability(cfg.region_locked, cfg.foreign, cfg.isrc_invisible, cfg.unavailable)
        self.catalogue = Catalogue(cfg.seed, cfg.fixtures, shares)
        self._rng = random.Random(self.config.seed)
        self._tokens: dict[str, float] = {}
        self._window: deque[float] = deque()
        self._penalty_until = 0.0
        self._quota_used = 0
        self._stats = _Stats()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = self._build_app()

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
        return self._stats.as_json()

    def reset_stats(self) -> None:
        self._stats = _Stats()

    def reconfigure(self, **changes: Any) -> None:
        """Change behaviour while running (e.g. open or close an endpoint mid-test)."""
        self.config = replace(self.config, **changes)

    def expire_tokens(self) -> None:
        """Make every issued token expired, as if an hour had passed."""
        for token in self._tokens:
            self._tokens[token] = 0.0

    # -- app -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/v1/search", self._search)
        app.router.add_get("/v1/albums", self._albums)
        app.router.add_get("/v1/albums/{id}", self._album)
        app.router.add_get("/v1/audio-features", self._audio_features)
        app.router.add_get("/_stats", self._stats_handler)
        app.router.add_post("/_stats/reset", self._reset_handler)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_stats"):
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

    async def _misbehave(self, request: web.Request, endpoint: str) -> web.StreamResponse | None:
        """Latency, faults, rate limit and quota, in the order a real stack applies them."""
        cfg = self.config
        if endpoint == "token":
            return None
        delay = cfg.latency
        if cfg.jitter:
            delay = max(0.0, delay + self._rng.uniform(-cfg.jitter, cfg.jitter))
        if cfg.fault_slow and self._rng.random() < cfg.fault_slow:
            delay += cfg.slow_seconds
        if delay:
            await asyncio.sleep(delay)
        roll = self._rng.random()
        if roll < cfg.fault_drop:
            self._stats.dropped += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)  # counted as 599; the client never sees it
        roll -= cfg.fault_drop
        if roll < cfg.fault_5xx:
            status = self._rng.choice([500, 502, 503])
            return _error(
                status,
                {500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}[status],
            )
        roll -= cfg.fault_5xx
        if roll < cfg.fault_html:
            return web.Response(
                status=502,
                content_type="text/html",
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
        # Authentication comes before the rate limit, as on Spotify.
        unauthorized = self._check_token(request)
        if unauthorized is not None:
            return unauthorized
        return self._throttle()

    def _throttle(self) -> web.Response | None:
        cfg = self.config
        now = time.monotonic()
        if now < self._penalty_until:
            self._stats.during_penalty += 1
        if cfg.daily_quota is not None and self._quota_used >= cfg.daily_quota:
            self._stats.throttled += 1
            self._stats.quota_exceeded += 1
            response = _error(429, "Too many requests", reason="QUOTA_EXCEEDED")
            response.headers["Retry-After"] = str(cfg.quota_retry_after)
            self._penalty_until = max(self._penalty_until, now + cfg.quota_retry_after)
            return response
        if cfg.window_limit is not None:
            window = self._window
            while window and window[0] <= now - cfg.window_seconds:
                window.popleft()
            if len(window) >= cfg.window_limit:
                retry_after = max(1, math.ceil(window[0] + cfg.window_seconds - now))
                self._penalty_until = max(self._penalty_until, now + retry_after)
                self._stats.throttled += 1
                response = _error(429, "API rate limit exceeded")
                response.headers["Retry-After"] = str(retry_after)
                return response
            window.append(now)
        self._quota_used += 1
        return None

    def _check_token(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return _error(401, "No token provided")
        scheme, _, token = header.partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None:
            return _error(401, "Invalid access token")
        if time.monotonic() >= expires:
            return _error(401, "The access token expired")
        return None

    # -- token -----------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self._stats.token_requests += 1
        form = await request.post()
        client_id, client_secret = (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
            except ValueError:
                client_id = client_secret = ""
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type parameter is missing",
                },
                status=400,
            )
        if not (
            secrets.compare_digest(client_id, self.config.client_id)
            and secrets.compare_digest(client_secret, self.config.client_secret)
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "Invalid client"}, status=400
            )
        token = "BQ" + secrets.token_urlsafe(60)
        lifetime = self.config.token_lifetime
        self._tokens[token] = time.monotonic() + lifetime
        self._stats.tokens_issued += 1
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": math.ceil(lifetime)}
        )

    # -- search ----------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query
        q = query.get("q", "")
        if not q:
            return _error(400, "No search query")
        types = [t.strip() for t in query.get("type", "").split(",") if t.strip()]
        if not types:
            return _error(400, "Missing parameter type")
        known = {"album", "artist", "playlist", "track", "show", "episode", "audiobook"}
        if any(t not in known for t in types):
            return _error(400, "Bad search type field")
        try:
            limit = int(query.get("limit", "5"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            return _error(400, "Invalid limit")
        if not 1 <= limit <= 10:
            return _error(400, "Invalid limit")
        if not 0 <= offset <= 1000:
            return _error(400, "Invalid offset")
        market = query.get("market")
        if market is not None and market.upper() not in MARKETS:
            return _error(400, "Invalid market code")
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

    def _paging(
        self, request: web.Request, items: list[Any], total: int, limit: int, offset: int
    ) -> dict[str, Any]:
        def page_url(page_offset: int) -> str:
            params = {"query": request.query.get("q", ""), "type": request.query.get("type", "")}
            if "market" in request.query:
                params["market"] = request.query["market"]
            params.update(offset=str(page_offset), limit=str(limit))
            return f"{self.api_url}/search?{urlencode(params)}"

        return {
            "href": page_url(offset),
            "limit": limit,
            "next": page_url(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": page_url(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
            "items": items,
        }

    # -- albums and audio features ---------------------------------------------------

    async def _album(self, request: web.Request) -> web.Response:
        if self.config.forbid_album:
            return _error(403, "Forbidden")
        album = self.catalogue.album(request.match_info["id"])
        if album is None:
            return _error(404, "Non existing id")
        return web.json_response(self._album_json(album, full=True))

    async def _albums(self, request: web.Request) -> web.Response:
        if self.config.forbid_albums:
            return _error(403, "Forbidden")
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            return _error(400, "invalid id")
        if len(ids) > 20:
            return _error(400, "Too many ids requested")
        albums = [self.catalogue.album(i) for i in ids]
        return web.json_response(
            {"albums": [self._album_json(a, full=True) if a else None for a in albums]}
        )

    async def _audio_features(self, request: web.Request) -> web.Response:
        if self.config.forbid_audio_features:
            return _error(403, "Forbidden")
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if not ids:
            return _error(400, "invalid id")
        if len(ids) > 100:
            return _error(400, "Too many ids requested")
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

    # -- JSON shapes -----------------------------------------------------------------

    def _artist_json(self, artist: FakeArtist) -> dict[str, Any]:
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.id}"},
            "href": f"{self.api_url}/artists/{artist.id}",
            "id": artist.id,
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist.id}",
        }

    def _album_json(self, album: FakeAlbum, *, full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "album_type": album.album_type,
            "total_tracks": album.total_tracks,
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album.id}"},
            "href": f"{self.api_url}/albums/{album.id}",
            "id": album.id,
            "images": [
                {"url": f"https://i.scdn.co/image/{album.id}{size}", "height": size, "width": size}
                for size in (640, 300, 64)
            ],
            "name": album.name,
            "release_date": album.release_date,
            "release_date_precision": album.release_date_precision,
            "type": "album",
            "uri": f"spotify:album:{album.id}",
            "artists": [self._artist_json(a) for a in album.artists],
        }
        if self.config.extended_quota:
            body["available_markets"] = ["US", "GB", "DE", "SE", "JP", "BR"]
        if full:
            tracks = self.catalogue.album_tracks(album)
            body["tracks"] = {
                "href": f"{self.api_url}/albums/{album.id}/tracks?offset=0&limit=50",
                "limit": 50,
                "next": None,
                "offset": 0,
                "previous": None,
                "total": len(tracks),
                "items": [self._track_json(t, simplified=True) for t in tracks],
            }
            body["copyrights"] = [
                {"text": f"(P) {album.release_date[:4]} {album.label}", "type": "P"}
            ]
            body["external_ids"] = {"upc": album.upc}
            if self.config.extended_quota:
                body["genres"] = list(album.genres)
                body["label"] = album.label
                body["popularity"] = album.popularity
        return body

    def _track_json(self, track: FakeTrack, *, simplified: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "artists": [self._artist_json(a) for a in track.artists],
            "disc_number": track.disc_number,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"},
            "href": f"{self.api_url}/tracks/{track.id}",
            "id": track.id,
            "is_local": False,
            "name": track.name,
            "track_number": track.track_number,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
        }
        if not simplified:
            body["album"] = self._album_json(track.album)
            body["external_ids"] = {"isrc": track.isrc}
            if self.config.extended_quota:
                body["popularity"] = track.popularity
        if self.config.extended_quota:
            body["available_markets"] = list(track.markets) or ["US", "GB", "DE", "SE", "JP"]
        return body


def _endpoint_name(path: str) -> str:
    if path == "/api/token":
        return "token"
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "v1":
        if parts[1] == "albums" and len(parts) > 2:
            return "album"
        return parts[1]
    return "other"
