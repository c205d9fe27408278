"""Apple Music's side of the local server (``/apple``): ``GET /v1/catalog/{sf}/songs``.

* every request needs a developer token: an ES256 JWT with a known ``kid``, ``iss`` the
  team, ``iat`` not in the future, ``exp`` in the future and at most six months after
  ``iat``, signed by the configured key (the server makes one at start unless given one:
  :attr:`AppleSide.apple_private_key` is what a client signs with); else 401, no body;
* a storefront Apple has (the markets, lower case), else 400; ``filter[isrc]`` split on
  commas: at most 25 valid ISRCs, else 400 code 40005; each ISRC gives every song carrying
  it (``apple_songs``: how many releases, at most), and ``meta.filters.isrc`` maps each
  asked ISRC to its songs;
* a sliding window per team (``apple_limit`` requests per ``apple_window`` s; ``None``:
  none), past which a 429 without ``Retry-After``; an outage (``apple_outage``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..markets import MARKETS
from .catalogue import Catalogue, FakeTrack
from .config import FakeConfig
from .stores import Window, has, stable_id

__all__ = ["AppleSide", "demo_key"]

_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
SIX_MONTHS = 15_777_000


def demo_key() -> bytes:
    """A new EC P-256 private key in PKCS#8 PEM (what Apple's .p8 files hold)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class AppleSide:
    """Apple Music's catalogue songs, mixed into the local server."""

    config: FakeConfig
    catalogue: Catalogue
    _clock: Callable[[], float]

    def _apple_init(self) -> None:
        self.apple_private_key = self.config.apple_private_key or demo_key()
        self._apple_window = Window(self._clock)
        self.apple_stats: Counter[str] = Counter()

    @property
    def apple_urls(self) -> dict[str, str]:
        return {"apple_api_url": f"{self.base_url}/apple/v1"}  # type: ignore[attr-defined]

    def _apple_routes(self, app: web.Application) -> None:
        app.router.add_get("/apple/v1/catalog/{storefront}/songs", self._apple_songs)

    def _apple_token_ok(self, header: str, now: float) -> bool:
        import jwt
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        token = header.removeprefix("Bearer ")
        try:
            if jwt.get_unverified_header(token).get("kid") != self.config.apple_key_id:
                return False
            public = load_pem_private_key(self.apple_private_key, None).public_key()
            claims = jwt.decode(
                token,
                public,  # type: ignore[arg-type]
                algorithms=["ES256"],
                options={"require": ["iss", "iat", "exp"], "verify_iat": False},
                leeway=0,
            )
        except jwt.PyJWTError:
            return False
        iat, exp = claims["iat"], claims["exp"]
        return bool(
            claims["iss"] == self.config.apple_team_id
            and iat <= now + 1
            and exp > now
            and exp - iat <= SIX_MONTHS
        )

    async def _apple_songs(self, request: web.Request) -> web.Response:
        cfg, stats = self.config, self.apple_stats
        stats["requests"] += 1
        if cfg.apple_outage:
            stats["outage"] += 1
            return web.Response(status=503, text="<html>Service Unavailable</html>")
        if not self._apple_token_ok(request.headers.get("Authorization", ""), self._wall()):
            stats["unauthorized"] += 1
            return web.Response(status=401)
        if not self._apple_window.take(cfg.apple_limit, cfg.apple_window):
            stats["throttled"] += 1
            return _errors(429, "42900", "Rate Limit Exceeded", None)
        storefront = request.match_info["storefront"]
        if storefront.upper() not in MARKETS or storefront != storefront.lower():
            return _errors(400, "40008", f"Invalid storefront: {storefront[:10]}", None)
        codes = [c for c in request.query.get("filter[isrc]", "").split(",") if c]
        if not codes or len(codes) > 25 or any(not _ISRC.fullmatch(c) for c in codes):
            detail = "filter[isrc] takes 1 to 25 valid ISRCs"
            return _errors(400, "40005", detail, "filter[isrc]")
        stats["isrcs"] += len(codes)
        return web.json_response(self.apple_answer(codes, storefront))

    def _wall(self) -> float:
        import time

        return time.time()

    def apple_answer(self, codes: list[str], storefront: str) -> dict[str, Any]:
        """Apple's JSON for ``codes`` in ``storefront``."""
        data, filters = [], {}
        for isrc in dict.fromkeys(codes):
            songs = []
            if has("apple", self.config.seed, isrc, self.config.apple_missing):
                for track in [t for t in self.catalogue.tracks_of(isrc) if t.available][
                    : self.config.apple_songs
                ]:
                    if not track.markets or storefront.upper() in track.markets:
                        songs.append(_song(isrc, track, storefront))
            data.extend(songs)
            filters[isrc] = [{"id": s["id"], "type": "songs", "href": s["href"]} for s in songs]
        return {"data": data, "meta": {"filters": {"isrc": filters}}}


def _song(isrc: str, t: FakeTrack, storefront: str) -> dict[str, Any]:
    song_id, album_id = stable_id("apple", t.id), stable_id("apple-album", t.album.id)
    slug = re.sub(r"[^a-z0-9]+", "-", t.name.lower()).strip("-") or "song"
    return {
        "id": song_id,
        "type": "songs",
        "href": f"/v1/catalog/{storefront}/songs/{song_id}",
        "attributes": {
            "name": t.name,
            "artistName": " & ".join(a.name for a in t.artists),
            "albumName": t.album.name,
            "isrc": isrc,
            "durationInMillis": t.duration_ms,
            "releaseDate": t.album.release_date,
            "url": f"https://music.apple.com/{storefront}/album/{slug}/{album_id}?i={song_id}",
            "playParams": {"id": song_id, "kind": "song"},
            "genreNames": ["Pop", "Music"],
        },
    }


def _errors(status: int, code: str, detail: str, parameter: str | None) -> web.Response:
    error: dict[str, Any] = {"id": "X", "title": "Error", "detail": detail}
    error.update(status=str(status), code=code)
    if parameter:
        error["source"] = {"parameter": parameter}
    return web.json_response({"errors": [error]}, status=status)
