"""TIDAL's side of the local server (``/tidal``): its token endpoint and ``GET /v2/tracks``.

* ``POST /tidal/v1/oauth2/token``: client credentials (Basic auth or form fields), tokens
  that expire (``tidal_token_lifetime``); a wrong client is ``401 invalid_client``;
* ``GET /tidal/v2/tracks``: a live Bearer token (else a JSON:API 401), the JSON:API media
  type (else 406), ``filter[isrc]`` repeated: at most 20, each a valid upper-case ISRC
  (else 400); one ISRC gives every track carrying it, in pages of ``tidal_page_size``
  with ``links.next`` (relative to ``/v2``), several one track each; the included
  albums and artists;
* a token bucket per client (``tidal_bucket``: capacity, refill a second, cost a request;
  ``None``: no limit) with its ``x-ratelimit-*`` headers, a 429 JSON:API error without
  ``Retry-After`` when empty; an outage (``tidal_outage``: every request a 503).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .catalogue import Catalogue, FakeTrack
from .config import FakeConfig
from .stores import Bucket, has, stable_id

__all__ = ["TidalSide"]

_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
JSON_API = "application/vnd.api+json"


class TidalSide:
    """TIDAL's endpoints, mixed into the local server."""

    config: FakeConfig
    catalogue: Catalogue
    _clock: Callable[[], float]

    def _tidal_init(self) -> None:
        self._tidal_tokens: dict[str, float] = {}
        self._tidal_bucket: Bucket | None = None
        self.tidal_stats: Counter[str] = Counter()

    @property
    def tidal_urls(self) -> dict[str, str]:
        base = f"{self.base_url}/tidal"  # type: ignore[attr-defined]
        return {"tidal_api_url": f"{base}/v2", "tidal_token_url": f"{base}/v1/oauth2/token"}

    def _tidal_routes(self, app: web.Application) -> None:
        app.router.add_post("/tidal/v1/oauth2/token", self._tidal_token)
        app.router.add_get("/tidal/v2/tracks", self._tidal_tracks)

    async def _tidal_token(self, request: web.Request) -> web.Response:
        cfg, form = self.config, await request.post()
        self.tidal_stats["token"] += 1
        if form.get("grant_type") != "client_credentials":
            return _oauth(400, "invalid_request", "grant_type must be client_credentials")
        client, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return _oauth(401, "invalid_client", "bad Basic credentials")
        if (client, secret) != (cfg.tidal_client_id, cfg.tidal_client_secret):
            return _oauth(401, "invalid_client", f"Client with token {client[:20]} not found")
        token = secrets.token_urlsafe(24)
        self._tidal_tokens[token] = self._clock() + cfg.tidal_token_lifetime
        lifetime = int(cfg.tidal_token_lifetime)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": ""}
        )

    async def _tidal_tracks(self, request: web.Request) -> web.Response:
        cfg, stats = self.config, self.tidal_stats
        stats["requests"] += 1
        if cfg.tidal_outage:
            stats["outage"] += 1
            return web.Response(status=503, text="<html>Service Unavailable</html>")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self._tidal_tokens.get(token, 0.0) <= self._clock():
            stats["unauthorized"] += 1
            return _errors(401, "UNAUTHORIZED", "Invalid or missing Authorization Header")
        accept = request.headers.get("Accept", JSON_API)
        if JSON_API not in accept and "*/*" not in accept:
            return _errors(406, "NOT_ACCEPTABLE", f"Accept must allow {JSON_API}")
        limited, headers = self._tidal_rate()
        if limited:
            stats["throttled"] += 1
            return _errors(429, "RATE_LIMIT", "Rate limit exceeded", headers)
        wrong = [k for k in request.query if k.startswith("filter[") and k != "filter[isrc]"]
        isrcs = request.query.getall("filter[isrc]", [])
        if wrong or not isrcs or len(isrcs) > cfg.tidal_batch_limit:
            detail = f"filter[isrc] takes 1 to {cfg.tidal_batch_limit} values"
            return _errors(400, "INVALID_REQUEST", detail, headers, "filter[isrc]")
        bad = [i for i in isrcs if not _ISRC.fullmatch(i)]
        if bad:
            detail = f"Invalid ISRC: Must be 3 groups, 12 symbols in total ({bad[0][:20]})"
            return _errors(400, "INVALID_REQUEST", detail, headers, "filter[isrc]")
        stats["isrcs"] += len(isrcs)
        cursor = request.query.get("page[cursor]", "0")
        if not cursor.isdigit():
            return _errors(400, "INVALID_REQUEST", "bad page[cursor]", headers, "page[cursor]")
        country = request.query.get("countryCode", "US")
        body = self.tidal_answer(isrcs, country, int(cursor), cfg.tidal_page_size)
        return web.json_response(body, headers=headers, content_type=JSON_API)

    def _tidal_rate(self) -> tuple[bool, dict[str, str]]:
        shape = self.config.tidal_bucket
        if shape is None:
            return False, {}
        if self._tidal_bucket is None:
            self._tidal_bucket = Bucket(*shape, clock=self._clock)
        bucket = self._tidal_bucket
        allowed = bucket.take()
        headers = {
            "x-ratelimit-remaining": str(bucket.remaining),
            "x-ratelimit-requested-tokens": f"{bucket.cost:g}",
            "x-ratelimit-burst-capacity": f"{bucket.capacity:g}",
            "x-ratelimit-replenish-rate": f"{bucket.refill:g}",
        }
        return not allowed, headers

    def tidal_answer(
        self, isrcs: list[str], country: str, cursor: int = 0, size: int | None = None
    ) -> dict[str, Any]:
        """TIDAL's JSON:API document for ``isrcs`` in ``country``: one track each, or for
        one ISRC all its tracks, ``size`` a page from ``cursor`` (None: all at once)."""
        data: list[dict[str, Any]] = []
        included: dict[tuple[str, str], dict[str, Any]] = {}
        links: dict[str, Any] = {"self": "/tracks"}
        for isrc in dict.fromkeys(isrcs):
            if not has("tidal", self.config.seed, isrc, self.config.tidal_missing):
                continue
            tracks = [t for t in self.catalogue.tracks_of(isrc) if t.available]
            tracks = [t for t in tracks if _sold(t, country)]
            if len(isrcs) > 1:
                tracks = tracks[:1]
            elif size is not None:
                if cursor + size < len(tracks):
                    links["next"] = (
                        f"/tracks?countryCode={country}&filter%5Bisrc%5D={isrc}"
                        f"&include=albums,artists&page%5Bcursor%5D={cursor + size}"
                    )
                    links["meta"] = {"nextCursor": str(cursor + size)}
                tracks = tracks[cursor : cursor + size]
            data.extend(_track(isrc, track, included) for track in tracks)
        return {"data": data, "included": list(included.values()), "links": links}


def _sold(track: FakeTrack, country: str) -> bool:
    return not track.markets or country.upper() in track.markets


def _track(isrc: str, t: FakeTrack, included: dict[tuple[str, str], dict[str, Any]]) -> Any:
    track_id, album_id = stable_id("tidal", t.id), stable_id("tidal-album", t.album.id)
    artist_ids = [stable_id("tidal-artist", a.name, digits=6) for a in t.artists]
    for artist_id, artist in zip(artist_ids, t.artists, strict=True):
        attributes = {"name": artist.name, "popularity": 0.5}
        included[("artists", artist_id)] = {
            "id": artist_id,
            "type": "artists",
            "attributes": attributes,
        }
    album = {"title": t.album.name, "releaseDate": t.album.release_date, "albumType": "ALBUM"}
    included[("albums", album_id)] = {"id": album_id, "type": "albums", "attributes": album}
    seconds = round(t.duration_ms / 1000)
    link = {"href": f"https://tidal.com/browse/track/{track_id}", "meta": {"type": "TIDAL_SHARING"}}
    return {
        "id": track_id,
        "type": "tracks",
        "attributes": {
            "title": t.name,
            "version": None,
            "isrc": isrc,
            "duration": f"PT{seconds // 60}M{seconds % 60}S",
            "explicit": t.explicit,
            "popularity": 0.5,
            "externalLinks": [link],
        },
        "relationships": {
            "albums": {"data": [{"id": album_id, "type": "albums"}]},
            "artists": {"data": [{"id": i, "type": "artists"} for i in artist_ids]},
        },
    }


def _errors(
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    parameter: str | None = None,
) -> web.Response:
    error: dict[str, Any] = {"status": str(status), "code": code, "detail": detail}
    if parameter:
        error["source"] = {"parameter": parameter}
    return web.json_response(
        {"errors": [error]}, status=status, headers=headers or {}, content_type=JSON_API
    )


def _oauth(status: int, error: str, description: str) -> web.Response:
    body = {"status": status, "error": error, "sub_status": 1005, "error_description": description}
    return web.json_response(body, status=status)
