"""Overridden ISRCs: no search, the pinned track's names from ``GET /tracks/{id}``.

Each pinned id is asked once, ever: its track is kept in the cache's details (kind
``track``) and read from there on later runs, for as long as an answer is fresh. An id
Spotify does not know (404) makes its rows ``error``, saying which id and what to do.
A pin to "not on Spotify" costs nothing at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import RequestError
from ..isrc import normalize_value
from ..models import PINNED, InvalidAnswer, MatchMethod, Result, Status, Track
from ..overrides import Override
from ..settings import Settings
from ..spotify.client import SpotifyClient
from ..store.cache import AsyncCache
from ..store.details import PINNED_TRACK as KIND
from .workers import Workers, finish

__all__ = ["Pinned", "pinned_result"]

log = logging.getLogger("isrc_resolver")


class Pinned:
    """Results for overridden ISRCs."""

    def __init__(
        self,
        client: SpotifyClient,
        workers: Workers,
        cache: AsyncCache | None,
        settings: Settings,
        overrides: Mapping[str, Override],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._workers = workers
        self._cache = cache
        self._settings = settings
        self.overrides = overrides
        self._clock = clock
        self._known: dict[str, dict[str, Any]] = {}  # id -> {"track": ..., "fetched_at": ...}
        self._failed: dict[str, str] = {}  # id -> why it has no track

    async def take(self, isrcs: list[str], emit: Callable[[Result], None]) -> list[str]:
        """Resolve the overridden ones of ``isrcs``; returns the others."""
        if not self.overrides:
            return isrcs
        pinned = [isrc for isrc in isrcs if isrc in self.overrides]
        if not pinned:
            return isrcs
        await self.resolve(pinned, emit)
        return [isrc for isrc in isrcs if isrc not in self.overrides]

    async def resolve(self, isrcs: Sequence[str], emit: Callable[[Result], None]) -> None:
        """One result for each of ``isrcs`` (all overridden)."""
        pins = [self.overrides[isrc] for isrc in isrcs]
        await self._tracks([p.track_id for p in pins if p.track_id is not None])
        for pin in pins:
            emit(self._result(pin))

    def _result(self, pin: Override) -> Result:
        known = self._known.get(pin.track_id) if pin.track_id is not None else None
        result = pinned_result(pin, known, self._clock(), warn=True)
        if result is not None:
            return result
        assert pin.track_id is not None
        failure = self._failed.get(pin.track_id)
        if failure is None:  # not asked: the run stopped first
            return self._workers.control.unfinished(pin.isrc)
        return Result(pin.isrc, Status.ERROR, error=failure)

    async def _tracks(self, ids: Sequence[str]) -> None:
        wanted = [i for i in dict.fromkeys(ids) if i not in self._known]
        cache = self._cache
        if wanted and cache is not None and not self._settings.refresh:
            cached = await cache.call(
                cache.cache.lookup_details, KIND, wanted, max_age=self._settings.max_age
            )
            self._known.update(cached)
            wanted = [i for i in wanted if i not in cached]
        fetched: dict[str, dict[str, Any]] = {}

        async def fetch(track_id: str) -> None:
            try:
                body = await self._client.get_json(f"tracks/{track_id}", label=track_id)
                track = Track.from_api(body)
            except RequestError as exc:
                self._failed[track_id] = _failure(track_id, exc)
                return
            except InvalidAnswer as exc:
                self._failed[track_id] = (
                    f"override: Spotify's answer for {track_id} was refused ({exc})"
                )
                return
            fetched[track_id] = {"track": track.to_json(), "fetched_at": self._clock()}

        await self._workers.run(wanted, fetch)
        self._known.update(fetched)
        if cache is not None and fetched:
            await finish(cache.call(cache.cache.store_details, KIND, fetched))


def _failure(track_id: str, exc: RequestError) -> str:
    if exc.status in (400, 404):
        return (
            f"override: Spotify has no track {track_id} (GET /tracks/{track_id} answered "
            f"{exc.status}); correct its id in the overrides file, or write none"
        )
    log.warning("GET /tracks/%s failed: %s", track_id, exc)
    return f"override: GET /tracks/{track_id} failed ({exc}); the next run asks again"


def pinned_result(
    pin: Override, known: Mapping[str, Any] | None, now: float, *, warn: bool = False
) -> Result | None:
    """The answer ``pin`` gives, with its track's details ``known`` (as the cache keeps
    them); None when its track is not known. ``warn``: log a pinned track that carries
    another ISRC (the row says so either way)."""
    why = PINNED + (f": {pin.note}" if pin.note else "")
    if pin.track_id is None:
        return Result(
            pin.isrc, Status.NOT_FOUND, method=MatchMethod.OVERRIDE, reason=why, resolved_at=now
        )
    if known is None:
        return None
    track = Track.from_json(known["track"])
    carried = normalize_value(track.isrc) if track.isrc else ""
    if carried != pin.isrc:
        # Allowed (a person may know better), never silent: said in the log and the row.
        if warn:
            log.warning(
                "overrides row %d pins %s to track %s, which carries ISRC %s",
                pin.row, pin.isrc, pin.track_id, track.isrc or "(none)",
            )  # fmt: skip
        why += f"; the pinned track carries ISRC {track.isrc or '(none)'}, not {pin.isrc}"
    at = known.get("fetched_at")
    return Result(
        pin.isrc,
        Status.FOUND,
        track=track,
        method=MatchMethod.OVERRIDE,
        resolved_at=at if isinstance(at, int | float) else None,
        reason=why,
    )
