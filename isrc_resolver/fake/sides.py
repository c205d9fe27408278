"""The other stores' sides of the local server, as one mixin: their state, routes, URLs
and counters (see each store's module)."""

from __future__ import annotations

from typing import Any

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

    def _stores_reset(self) -> None:
        self.deezer_stats = dict.fromkeys(self.deezer_stats, 0)
        for counter in (self.tidal_stats, self.apple_stats, self.musicbrainz_stats):
            counter.clear()
