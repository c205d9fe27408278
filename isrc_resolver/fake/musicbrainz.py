"""MusicBrainz's side of the local server (``/musicbrainz``): ``GET /ws/2/isrc/{isrc}``.

* a User-Agent that names an application (not empty, not a bare library's), else 403 with
  ``x-ratelimit-who: ua-missing``; ``fmt=json`` (else 406: the client must ask for JSON);
* an ISRC that is not upper case and well formed: 400 ``Invalid isrc.``; one MusicBrainz
  lacks (``musicbrainz_missing``): 404; else its recordings with their artist credits;
* a token bucket per address (``musicbrainz_rate`` a second, a burst of one; ``None``:
  none) past which a 503 with ``retry-after: 1``; "busy" 503s now and then
  (``musicbrainz_busy``, ``retry-after: 0``); an outage (``musicbrainz_outage``).
"""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .catalogue import Catalogue, FakeTrack
from .config import FakeConfig
from .stores import Bucket, has

__all__ = ["MusicBrainzSide"]

_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
_ANONYMOUS = ("python-requests", "python-urllib", "python/", "java/", "aiohttp")
_HELP = "For usage, please see: https://musicbrainz.org/development/mmd"


class MusicBrainzSide:
    """MusicBrainz's ISRC look-up, mixed into the local server."""

    config: FakeConfig
    catalogue: Catalogue
    _clock: Callable[[], float]

    def _musicbrainz_init(self) -> None:
        rate = self.config.musicbrainz_rate
        self._mb_bucket = None if rate is None else Bucket(1.0, rate, 1.0, self._clock)
        self._mb_rng = random.Random(f"{self.config.seed}:musicbrainz-busy")
        self.musicbrainz_stats: Counter[str] = Counter()

    @property
    def musicbrainz_urls(self) -> dict[str, str]:
        return {"musicbrainz_api_url": f"{self.base_url}/musicbrainz/ws/2"}  # type: ignore[attr-defined]

    def _musicbrainz_routes(self, app: web.Application) -> None:
        app.router.add_get("/musicbrainz/ws/2/isrc/{isrc}", self._musicbrainz_isrc)

    async def _musicbrainz_isrc(self, request: web.Request) -> web.Response:
        cfg, stats = self.config, self.musicbrainz_stats
        stats["requests"] += 1
        agent = request.headers.get("User-Agent", "").strip()
        stats["agent:" + agent[:80]] = 1
        if not agent or agent.lower().startswith(_ANONYMOUS):
            stats["no_agent"] += 1
            text = "Your requests are being throttled by MusicBrainz because the application "
            body = {"error": text + "you are using has not identified itself.", "help": _HELP}
            return web.json_response(body, status=403, headers={"x-ratelimit-who": "ua-missing"})
        if cfg.musicbrainz_outage:
            stats["outage"] += 1
            return web.Response(status=503, text="<html>Service Unavailable</html>")
        if self._mb_bucket is not None and not self._mb_bucket.take():
            stats["throttled"] += 1
            text = "Your requests are exceeding the allowable rate limit."
            headers = {"retry-after": "1", "x-ratelimit-zone": f"ws ip={request.remote}"}
            return web.json_response({"error": text, "help": _HELP}, status=503, headers=headers)
        if cfg.musicbrainz_busy and self._mb_rng.random() < cfg.musicbrainz_busy:
            stats["busy"] += 1
            text = "The MusicBrainz web server is currently busy. Please try again later."
            headers = {"retry-after": "0", "x-ratelimit-zone": "global"}
            return web.json_response({"error": text}, status=503, headers=headers)
        if request.query.get("fmt") != "json":
            return web.Response(status=406, text="XML is not served here: ask with fmt=json")
        isrc = request.match_info["isrc"]
        if not _ISRC.fullmatch(isrc):
            return web.json_response({"error": "Invalid isrc.", "help": _HELP}, status=400)
        found = self.musicbrainz_answer(isrc)
        if found is None:
            stats["not_found"] += 1
            return web.json_response({"error": "Not Found", "help": _HELP}, status=404)
        stats["found"] += 1
        return web.json_response(found)

    def musicbrainz_answer(self, isrc: str) -> dict[str, Any] | None:
        """The look-up's JSON for ``isrc``, or None (a 404)."""
        if not has("musicbrainz", self.config.seed, isrc, self.config.musicbrainz_missing):
            return None
        tracks = [t for t in self.catalogue.tracks_of(isrc) if t.available]
        recordings: dict[tuple[str, int], FakeTrack] = {}  # releases of one recording, once
        for t in tracks:
            recordings.setdefault((t.name, t.duration_ms), t)
        found = [_recording(isrc, t) for t in recordings.values()]
        return {"isrc": isrc, "recordings": found} if found else None


def _recording(isrc: str, t: FakeTrack) -> dict[str, Any]:
    mbid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"musicbrainz:{isrc}:{t.name}:{t.duration_ms}"))
    credits = []
    for n, artist in enumerate(t.artists):
        join = "" if n == len(t.artists) - 1 else " & "
        credit = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mb-artist:{artist.name}"))}
        credit.update(name=artist.name, **{"sort-name": artist.name})
        credits.append({"name": artist.name, "joinphrase": join, "artist": credit})
    return {
        "id": mbid,
        "title": t.name,
        "disambiguation": "",
        "length": t.duration_ms,
        "video": False,
        "first-release-date": t.album.release_date,
        "artist-credit": credits,
    }
