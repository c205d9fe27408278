"""The other stores' sides of the local server, as one mixin: their state, routes, URLs
and counters (see each store's module)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web

from .apple import AppleSide
from .deezer import DeezerSide
from .musicbrainz import MusicBrainzSide
from .tidal import TidalSide

__all__ = ["StoreSides"]


class StoreSides(DeezerSide, TidalSide, AppleSide, MusicBrainzSide):
    """Deezer, TIDAL, Apple Music and MusicBrainz, mixed into the local server."""

    def _stores_init(self) -> None:
        self._deezer_init()
        self._tidal_init()
        self._apple_init()
        self._musicbrainz_init()

    def _stores_routes(self, app: web.Application) -> None:
        app.router.add_get("/deezer/track/{key}", self._deezer_track)
        self._tidal_routes(app)
        self._apple_routes(app)
        self._musicbrainz_routes(app)

    @property
    def endpoints(self) -> dict[str, str]:
        """The stores' URLs on this server, by their settings' names (``endpoints=``)."""
        urls = {"deezer_api_url": self.deezer_url, **self.tidal_urls, **self.apple_urls}
        return {**urls, **self.musicbrainz_urls}

    def _stores_stats(self) -> dict[str, Any]:
        stores = {"tidal": self.tidal_stats, "apple": self.apple_stats}
        stores["musicbrainz"] = self.musicbrainz_stats
        counts = {k: {n: v for n, v in c.items() if ":" not in n} for k, c in stores.items()}
        return {"deezer": dict(self.deezer_stats), **counts}

    # The demo's stores, paced for a first try that takes seconds: MusicBrainz's one
    # request a second and TIDAL's bucket are the real services' (see the spec's defaults).
    demo_rates: ClassVar[dict[str, float]] = {"musicbrainz": 10.0, "tidal": 2.0}
    DEMO_LIMITS: ClassVar[dict[str, Any]] = {
        "musicbrainz_rate": 20.0,
        "tidal_bucket": (10.0, 10.0, 5.0),
    }

    def demo_credentials(self, folder: Path) -> dict[str, str]:
        """The stores' credentials a demo run takes: the local Apple's key, written to a
        file of its own (mode 0600) in ``folder``."""
        key = folder / "demo-apple-key.p8"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.apple_private_key)
        return {"APPLE_MUSIC_PRIVATE_KEY": str(key)}

    def _stores_reset(self) -> None:
        self.deezer_stats = dict.fromkeys(self.deezer_stats, 0)
        for counter in (self.tidal_stats, self.apple_stats, self.musicbrainz_stats):
            counter.clear()
