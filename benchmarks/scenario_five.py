"""The "five stores" scenario: one catalogue through Spotify, Deezer, TIDAL, Apple Music and
MusicBrainz at once, each at its own limits, against the same run with Spotify alone.

Each store's limits are the local server's (the ones its ``--help`` and the README give
for the real service) and the client paces itself by its default ceiling; both are sped up
by the same factor ``SPEED`` so that the run takes minutes, and each store's wall time is
also given at the real pace (measured time x SPEED: an extrapolation, labelled as one).
Figures per store: requests (batches count as one), ISRCs found, its part's wall time; and
the run's wall time against Spotify alone. Runs through the library, in this process.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from isrc_resolver import Resolver
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify
from isrc_resolver.fake.apple import demo_key
from isrc_resolver.provider import catalogues

Line = tuple[str, str, str, bool, str]
SPEED = 50  # every store's limit and every client's ceiling, this many times the real ones
STORES = ("deezer", "tidal", "apple", "musicbrainz")
LIMITS: dict[str, Any] = {
    "deezer_limit": 50 * SPEED,  # 50 requests per 5 s
    "tidal_bucket": (10.0, 1.0 * SPEED, 5.0),  # 10 tokens, 1 a second, 5 a request
    "apple_limit": 20 * SPEED,  # 20 requests a second (a guess: Apple publishes none)
    "musicbrainz_rate": 1.0 * SPEED,  # 1 a second
    "tidal_missing": 0.1,
    "apple_missing": 0.15,
    "musicbrainz_missing": 0.4,  # the long tail is thin in MusicBrainz
}


async def _run(
    df: pd.DataFrame, providers: str, key: Path, pem: bytes
) -> tuple[dict[str, Any], float]:
    async with FakeSpotify(**LIMITS, apple_private_key=pem) as server:
        cfg = server.config
        os.environ.update(
            TIDAL_CLIENT_ID=cfg.tidal_client_id,
            TIDAL_CLIENT_SECRET=cfg.tidal_client_secret,
            APPLE_MUSIC_TEAM_ID=cfg.apple_team_id,
            APPLE_MUSIC_KEY_ID=cfg.apple_key_id,
            APPLE_MUSIC_PRIVATE_KEY=str(key),
            MUSICBRAINZ_CONTACT="benchmarks@example.invalid",
        )
        rates = {name: spec.rate * SPEED for name, spec in catalogues().items()}
        started = time.perf_counter()
        async with Resolver(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            api_url=server.api_url,
            token_url=server.token_url,
            endpoints=server.endpoints,
            providers=providers,
            rate=10.0 * SPEED,  # Spotify's default ceiling, sped up alike
            rates=rates,
            concurrency=16,
        ) as resolver:
            out = await resolver.resolve_dataframe(df)
        return out.attrs["isrc_resolver"], time.perf_counter() - started


def rows(count: int) -> list[Line]:
    df = pd.DataFrame({"isrc": [f"QZFIV24{n:05d}" for n in range(count)]})
    with tempfile.TemporaryDirectory(prefix="five-") as folder:
        key, pem = Path(folder) / "key.p8", demo_key()
        key.write_bytes(pem)
        alone, alone_s = asyncio.run(_run(df, "spotify", key, pem))
        five, five_s = asyncio.run(_run(df, "spotify," + ",".join(STORES), key, pem))
    out: list[Line] = []
    for name in STORES:
        part = five["providers"][name]
        spec = catalogues()[name]
        expected = -(-count // spec.batch)
        seconds = part["ms"] / 1000
        real = seconds * SPEED
        out.append(
            (
                f"five stores: {name}",
                f"{part['requests']:,} requests, {part['found']:,} found, {seconds:.1f} s",
                f"{expected:,} requests",
                part["requests"] <= expected * 1.02 and part["error"] == 0,
                f"{spec.batch} ISRC(s) a request at {spec.rate:g}/s; at the real pace about "
                f"{real / 60:,.0f} min (x{SPEED}); {part['throttled']} rate signals",
            )
        )
    spotify = five["requests"]
    out.append(
        (
            "five stores: the run",
            f"{five_s:.1f} s ({five_s / alone_s:.2f}x Spotify alone, {alone_s:.1f} s)",
            "every store answers",
            all(five["providers"][n]["error"] == 0 for n in STORES),
            f"{count:,} ISRCs; Spotify {spotify:,} requests (alone: {alone['requests']:,}); "
            f"limits and ceilings x{SPEED}",
        )
    )
    return out
