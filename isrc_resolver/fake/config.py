"""How the local Spotify behaves (:class:`FakeConfig`), what it counts, and its errors."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .records import World

__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "DEMO_STORES", "FakeConfig", "Stats", "error"]

DEMO_CLIENT_ID = "demo-client-id"
DEMO_CLIENT_SECRET = "demo-client-secret"
# What the demo gives the other stores (Apple's key is the server's own, written at start).
DEMO_STORES = {
    "TIDAL_CLIENT_ID": "demo-tidal-id",
    "TIDAL_CLIENT_SECRET": "demo-tidal-secret",
    "APPLE_MUSIC_TEAM_ID": "DEMOTEAM01",
    "APPLE_MUSIC_KEY_ID": "DEMOKEY001",
    "APPLE_MUSIC_PRIVATE_KEY": "(written by the demo)",
    "MUSICBRAINZ_CONTACT": "isrc-resolver-demo@example.invalid",
}


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
    conflicting: float = 0.0  # also carried by a different recording (a label's error)
    # Deezer's side (``/deezer/track/isrc:...``; see fake/deezer.py).
    deezer_limit: int | None = 50  # N requests ...
    deezer_window: float = 5.0  # ... per rolling window of S seconds, else code 4
    deezer_missing: float = 0.0  # share of ISRCs Deezer does not have (Spotify only)
    deezer_only: float = 0.0  # share Deezer has where Spotify has no track, or sells none
    deezer_renamed: float = 0.0  # "(Remastered)" or a featured artist added
    deezer_other_release: float = 0.0  # another album of the same recording
    deezer_other_edit: float = 0.0  # the same title, 40 s longer
    deezer_other_artist: float = 0.0  # credited to another artist
    deezer_busy: float = 0.0  # probability of a code 700 answer
    deezer_outage: bool = False  # every Deezer request a 503
    # TIDAL's side (``/tidal``; see fake/tidal.py). The bucket: capacity, refill/s, cost.
    tidal_client_id: str = DEMO_STORES["TIDAL_CLIENT_ID"]
    tidal_client_secret: str = DEMO_STORES["TIDAL_CLIENT_SECRET"]
    tidal_token_lifetime: float = 3600.0
    tidal_bucket: tuple[float, float, float] | None = (10.0, 1.0, 5.0)
    tidal_batch_limit: int = 20
    tidal_page_size: int = 2  # one ISRC's tracks a page
    tidal_missing: float = 0.0  # share of ISRCs TIDAL does not have
    tidal_outage: bool = False
    # Apple Music's side (``/apple``; see fake/apple.py).
    apple_team_id: str = DEMO_STORES["APPLE_MUSIC_TEAM_ID"]
    apple_key_id: str = DEMO_STORES["APPLE_MUSIC_KEY_ID"]
    apple_private_key: bytes | None = None  # PEM; None: a new key at start
    apple_limit: int | None = 20  # requests ...
    apple_window: float = 1.0  # ... per sliding window of S seconds, else 429
    apple_songs: int = 3  # songs (releases) per ISRC, at most
    apple_missing: float = 0.0
    apple_outage: bool = False
    # MusicBrainz's side (``/musicbrainz``; see fake/musicbrainz.py).
    musicbrainz_rate: float | None = 1.0  # requests a second per address, burst 1, else 503
    musicbrainz_busy: float = 0.0  # share of "busy" 503s
    musicbrainz_missing: float = 0.0
    musicbrainz_outage: bool = False
    # How the world changed since (takedowns, re-links, renames, new releases), by ISRC.
    world: World = field(default_factory=World)


@dataclass
class Stats:
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


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"error": {"status": status, "message": message, **extra}}, status=status
    )
