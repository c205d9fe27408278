"""The JSON the local Spotify answers with: tracks, albums, artists and paging objects,
in the shapes of Spotify's OpenAPI description."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .catalogue import Catalogue
from .config import FakeConfig
from .records import FakeAlbum, FakeArtist, FakeTrack

__all__ = ["Shapes"]


class Shapes:
    """A mixin of :class:`~.server.FakeSpotify`: its objects as Spotify would send them."""

    config: FakeConfig
    catalogue: Catalogue

    @property
    def api_url(self) -> str:
        raise NotImplementedError

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
