"""The enrich stage (optional): album details and audio features for resolved tracks.

Both use Spotify's batch endpoints (``GET /albums?ids=``, 20 at a time, and
``GET /audio-features?ids=``, 100 at a time) through the same client, token, rate gate,
retries and cache as the search. Spotify has closed them to many apps, so a 403 is an
expected answer, not a failure: it is reported once and the columns stay empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ForbiddenError, RequestError
from ..models import (
    ALBUMS_PER_REQUEST,
    FEATURES_PER_REQUEST,
    AlbumDetails,
    AudioFeatures,
    Enrichment,
    InvalidAnswer,
)
from ..progress import Progress
from ..schema import Row, enriched
from ..settings import Settings
from ..spotify.client import SpotifyClient
from ..store.cache import AsyncCache
from .workers import Workers, finish

__all__ = ["Enricher"]

log = logging.getLogger("isrc_resolver")

_CLOSED_WARNINGS = {
    Enrichment.AUDIO_FEATURES: (
        "GET /audio-features answered 403: Spotify closed it to apps created after "
        "27 November 2024. The audio-feature columns stay empty; the rest of the run "
        "is unaffected."
    ),
    Enrichment.ALBUM: (
        "GET /albums?ids= answered 403 (Spotify serves it only to apps in Extended "
        "Quota Mode). The album columns stay empty; allow_per_album=True fetches them "
        "one album at a time, one request of the daily allowance each."
    ),
}
_PER_ALBUM_WARNING = (
    "GET /albums?ids= answered 403 (Spotify serves it only to apps in Extended "
    "Quota Mode); fetching albums one at a time (allow_per_album=True), one request "
    "of the daily allowance each."
)


class Enricher:
    """Details by id, each asked at most once per run and cached across runs."""

    def __init__(
        self,
        client: SpotifyClient,
        workers: Workers,
        cache: AsyncCache | None,
        settings: Settings,
    ) -> None:
        self._client = client
        self._workers = workers
        self._cache = cache
        self._settings = settings
        self._memo: dict[Enrichment, dict[str, dict[str, Any] | None]] = {}
        self._closed: set[Enrichment] = set()

    async def enrich(self, rows: dict[str, Row], kinds: Sequence[str], progress: Progress) -> None:
        """Append the columns of ``kinds`` to every row, in place (empty where there is
        nothing, and for every row when the run was interrupted first)."""
        if not kinds:
            return
        progress.phase("enriching", None, "request")
        albums: Mapping[str, AlbumDetails] = {}
        features: Mapping[str, AudioFeatures] = {}
        if self._workers.control.interrupted is None:
            if Enrichment.ALBUM in kinds:
                albums = await self.albums(r.get("album_id") for r in rows.values())
            if Enrichment.AUDIO_FEATURES in kinds:
                features = await self.audio_features(
                    r.get("spotify_track_id") for r in rows.values()
                )
        for isrc, row in rows.items():
            album = albums.get(row.get("album_id") or "")
            rows[isrc] = enriched(
                row, kinds, album, features.get(row.get("spotify_track_id") or "")
            )

    async def albums(self, ids: Iterable[str]) -> dict[str, AlbumDetails]:
        found = await self._details(Enrichment.ALBUM, ids)
        return {i: AlbumDetails.from_json(d) for i, d in found.items()}

    async def audio_features(self, track_ids: Iterable[str]) -> dict[str, AudioFeatures]:
        found = await self._details(Enrichment.AUDIO_FEATURES, track_ids)
        return {i: AudioFeatures.from_json(d) for i, d in found.items()}

    async def _details(self, kind: Enrichment, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Details of ``kind`` by id: from this run's memory, the cache, then Spotify."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        memo = self._memo.setdefault(kind, {})
        missing = [i for i in wanted if i not in memo]
        cache = self._cache
        if missing and cache is not None and not self._settings.refresh:
            cached = await cache.call(
                cache.cache.lookup_details, kind.value, missing, max_age=self._settings.max_age
            )
            memo.update(cached)
            missing = [i for i in missing if i not in cached]
        if missing and kind not in self._closed:
            fetched = await self._fetch(kind, missing)
            memo.update(fetched)
            if cache is not None:
                known = {i: d for i, d in fetched.items() if d is not None}
                await finish(cache.call(cache.cache.store_details, kind.value, known))
        return {i: d for i in wanted if (d := memo.get(i)) is not None}

    async def _fetch(
        self, kind: Enrichment, ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        album = kind is Enrichment.ALBUM
        path, key = ("albums", "albums") if album else ("audio-features", "audio_features")
        parse = AlbumDetails.from_api if album else AudioFeatures.from_api
        fetched: dict[str, dict[str, Any] | None] = {}

        async def fetch_batch(batch: list[str]) -> None:
            if kind in self._closed:
                return
            try:
                body = await self._client.get_json(path, {"ids": ",".join(batch)}, label=path)
            except ForbiddenError:
                self._close(kind)
                return
            except RequestError as exc:
                log.warning(
                    "GET /%s failed (%s); those rows keep empty %s columns", path, exc, kind
                )
                return
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list) or len(items) != len(batch):
                log.warning("GET /%s gave an answer of unexpected shape; skipped", path)
                return
            for asked, item in zip(batch, items, strict=True):
                try:
                    fetched[asked] = parse(item).to_json() if item is not None else None
                except InvalidAnswer as exc:
                    log.warning("GET /%s: the answer for %s was refused (%s)", path, asked, exc)

        size = ALBUMS_PER_REQUEST if album else FEATURES_PER_REQUEST
        groups = [list(ids[i : i + size]) for i in range(0, len(ids), size)]
        await self._workers.run_after_probe(groups, fetch_batch)
        if album and kind in self._closed and self._settings.allow_per_album:
            await self._albums_one_by_one([i for i in ids if i not in fetched], fetched)
        return fetched

    async def _albums_one_by_one(
        self, ids: Sequence[str], fetched: dict[str, dict[str, Any] | None]
    ) -> None:
        closed = False

        async def fetch_one(album_id: str) -> None:
            nonlocal closed
            if closed:
                return
            try:
                body = await self._client.get_json(f"albums/{album_id}", label=album_id)
            except ForbiddenError:
                closed = True
                log.warning("GET /albums/{id} answered 403 too; the album columns stay empty")
                return
            except RequestError as exc:
                if exc.status == 404:
                    fetched[album_id] = None
                else:
                    log.warning("GET /albums/%s failed (%s)", album_id, exc)
                return
            try:
                fetched[album_id] = AlbumDetails.from_api(body).to_json()
            except InvalidAnswer as exc:
                log.warning("GET /albums/%s: the answer was refused (%s)", album_id, exc)

        await self._workers.run_after_probe(ids, fetch_one)

    def _close(self, kind: Enrichment) -> None:
        """Report a 403 once; send no more requests to that endpoint in this run."""
        if kind in self._closed:
            return
        self._closed.add(kind)
        per_album = kind is Enrichment.ALBUM and self._settings.allow_per_album
        log.warning("%s", _PER_ALBUM_WARNING if per_album else _CLOSED_WARNINGS[kind])
