"""Deezer's side of the local server: ``GET /deezer/track/isrc:{ISRC}`` over the same
catalogue, as Deezer answers it.

* one track per ISRC (Deezer's choice), integer ids, ``duration`` in seconds;
* errors as HTTP 200 bodies: code 800 for an ISRC it does not have, code 4 past its rate
  (``deezer_limit`` requests per ``deezer_window`` seconds, 50 per 5 s by default), code
  700 now and then when asked (``deezer_busy``), 503s for an outage (``deezer_outage``);
* a share of ISRCs only one of the two services has (``deezer_missing``: Spotify only;
  ``deezer_only``: among those Spotify has no track for, or sells nowhere, Deezer's only),
  names that differ slightly (``deezer_renamed``: "(Remastered)", a featured artist),
  another release of the same recording (``deezer_other_release``) and another edit of
  it, 40 s longer (``deezer_other_edit``).

The demo's fixed ISRCs show each case once (:data:`DEMO`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .catalogue import Catalogue, FakeTrack
from .config import FakeConfig
from .generate import ARTISTS
from .stores import Window

__all__ = ["DEMO", "DeezerSide"]

# The demo sample's ISRCs that show a case: how Deezer's answer differs from Spotify's.
DEMO: dict[str, str] = {
    "GBAHT8500002": "missing",  # Take On Me: Spotify only
    "GBUM71400001": "missing",  # Bohemian Rhapsody (sold in JP only on Spotify): neither
    "USUM71700626": "only",  # Despacito: sold nowhere on Spotify, on Deezer
    "GBARL9300135": "renamed",  # "Never Gonna Give You Up (Remastered)": still agree
    "USQX91300108": "featuring",  # Get Lucky, with its featured artists as contributors
    "USUG11904206": "other_release",  # Blinding Lights on another album: still agree
    "USIR10211559": "other_edit",  # Lose Yourself, 40 s longer: duration_differs
    "USSM18200360": "other_recording",  # the code Spotify also lists under "Rosanna"
    "GB28K1100036": "other_artist",  # Titanium credited to Sia alone: artist_differs
}
_WORDS = ["lost", "tape", "basement", "session", "northern", "harbour", "lantern", "drift"]


def deezer_id(*parts: object) -> int:
    """A stable positive integer id (Deezer's ids are integers)."""
    digest = hashlib.sha256(":".join(map(str, ("deezer", *parts))).encode()).digest()
    return int.from_bytes(digest[:5], "big") % 4_000_000_000 + 1


class DeezerSide:
    """The Deezer endpoint, mixed into the local server."""

    config: FakeConfig
    catalogue: Catalogue
    _clock: Callable[[], float]

    def _deezer_init(self) -> None:
        self._deezer_window = Window(self._clock)
        self._deezer_rng = random.Random(f"{self.config.seed}:deezer-faults")
        self.deezer_stats: dict[str, int] = {
            "requests": 0, "found": 0, "not_found": 0, "quota": 0, "busy": 0, "outage": 0,
        }  # fmt: skip

    @property
    def deezer_url(self) -> str:
        return f"{self.base_url}/deezer"  # type: ignore[attr-defined]

    async def _deezer_track(self, request: web.Request) -> web.Response:
        stats, cfg = self.deezer_stats, self.config
        stats["requests"] += 1
        if cfg.deezer_outage:
            stats["outage"] += 1
            return web.Response(status=503, text="<html>Service Unavailable</html>")
        if not self._deezer_window.take(cfg.deezer_limit, cfg.deezer_window):
            stats["quota"] += 1
            return _error("Exception", "Quota limit exceeded", 4)
        if cfg.deezer_busy and self._deezer_rng.random() < cfg.deezer_busy:
            stats["busy"] += 1
            return _error("Exception", "Service busy", 700)
        key = request.match_info["key"]
        if not key.lower().startswith("isrc:"):
            return _error("DataException", "no data", 800)
        body = self.deezer_answer(key[5:].upper())
        stats["found" if body else "not_found"] += 1
        return web.json_response(body or {"error": _no_data()})

    def deezer_answer(self, isrc: str) -> dict[str, Any] | None:
        """Deezer's track JSON for ``isrc``, or None (code 800)."""
        case = DEMO.get(isrc) or self._deezer_case(isrc)
        tracks = self.catalogue.tracks_of(isrc)
        sold = [t for t in tracks if t.available]
        if case == "missing":
            return None
        if not sold:
            return self._only_deezer(isrc, tracks) if case == "only" else None
        same = [t for t in sold if t.name == sold[0].name] or sold
        if case == "other_recording" and len(sold) > 1:
            return _track_json(isrc, sold[-1], album=None)
        chosen = same[-1] if case == "other_release" else same[0]
        album = f"{chosen.album.name} (Deluxe)" if case == "other_release" else None
        credited = tuple(a.name for a in chosen.artists)
        artists, title = credited, chosen.name
        if case == "renamed":
            title = f"{title} (Remastered)"
        if case == "featuring" or (case == "renamed" and len(isrc) % 2):
            guest = next(n for n in ARTISTS if n not in credited)
            artists += (guest,) if case == "renamed" else ("Pharrell Williams", "Nile Rodgers")
        if case == "other_artist":  # credited to someone else entirely
            artists = ("Sia",) if isrc in DEMO else (next(n for n in ARTISTS if n not in credited),)
        seconds = 40 if case == "other_edit" else 0
        return _track_json(isrc, chosen, album=album, artists=artists, seconds=seconds, title=title)

    def _deezer_case(self, isrc: str) -> str:
        cfg = self.config
        roll = random.Random(f"{cfg.seed}:deezer:{isrc}").random()
        for case, share in (
            ("missing", cfg.deezer_missing),
            ("only", cfg.deezer_only),
            ("renamed", cfg.deezer_renamed),
            ("other_release", cfg.deezer_other_release),
            ("other_edit", cfg.deezer_other_edit),
            ("other_artist", cfg.deezer_other_artist),
        ):
            if roll < share:
                return case
            roll -= share
        return "same"

    def _only_deezer(self, isrc: str, tracks: list[FakeTrack]) -> dict[str, Any]:
        """A track Spotify has none of (or sells nowhere): Deezer's own names for it."""
        if tracks:
            return _track_json(isrc, tracks[0], album=None)
        rng = random.Random(f"{self.config.seed}:deezer-only:{isrc}")
        title = " ".join(rng.sample(_WORDS, 2)).title()
        track_id = deezer_id("only", isrc)
        artist = rng.choice(ARTISTS)
        return {
            "id": track_id,
            "readable": True,
            "title": title,
            "title_short": title,
            "isrc": isrc,
            "link": f"https://www.deezer.com/track/{track_id}",
            "duration": rng.randint(120, 300),
            "artist": {"id": deezer_id("artist", artist), "name": artist},
            "contributors": [{"id": deezer_id("artist", artist), "name": artist, "role": "Main"}],
            "album": {"id": deezer_id("album", isrc), "title": title, "release_date": "2019-05-17"},
            "type": "track",
        }


def _track_json(
    isrc: str,
    track: FakeTrack,
    *,
    album: str | None,
    artists: tuple[str, ...] = (),
    seconds: int = 0,
    title: str | None = None,
) -> dict[str, Any]:
    names = list(artists) if artists else [a.name for a in track.artists]
    track_id = deezer_id("track", track.id, album or "")
    contributors = [
        {"id": deezer_id("artist", n), "name": n, "role": "Main" if i == 0 else "Featured"}
        for i, n in enumerate(names)
    ]
    return {
        "id": track_id,
        "readable": True,
        "title": title or track.name,
        "title_short": track.name,
        "title_version": "",
        "isrc": isrc,
        "link": f"https://www.deezer.com/track/{track_id}",
        "duration": round(track.duration_ms / 1000) + seconds,
        "track_position": track.track_number,
        "disk_number": track.disc_number,
        "rank": 500_000,
        "release_date": track.album.release_date,
        "explicit_lyrics": track.explicit,
        "artist": {"id": deezer_id("artist", names[0]), "name": names[0]},
        "contributors": contributors,
        "album": {
            "id": deezer_id("album", track.album.id, album or ""),
            "title": album or track.album.name,
            "release_date": track.album.release_date,
        },
        "type": "track",
    }


def _no_data() -> dict[str, Any]:
    return {"type": "DataException", "message": "no data", "code": 800}


def _error(kind: str, message: str, code: int) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message, "code": code}})
