"""The "two providers" scenario: what Deezer adds on the first night of a catalogue whose
Spotify allowance is far smaller than the catalogue.

10,000 ISRCs (no title or artist columns), a Spotify daily quota of 2,000 requests (the
local server's: past it, a quota 429 stops the run), the local server's Deezer beside it.
Figures: the share of the ISRCs Deezer has that get names tonight (target: all), Spotify's
coverage of the tracks its ``isrc:`` search cannot see, among those Deezer names and the
night reached (target >= 95%), wrong matches (target 0), and requests per provider. The
same input with Spotify alone is the baseline. Runs through the library, in this process.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pandas as pd

from isrc_resolver import Resolver
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

Line = tuple[str, str, str, bool, str]
SHARES: dict[str, Any] = {
    "isrc_invisible": 0.05,
    "unavailable": 0.03,
    "deezer_missing": 0.05,
    "deezer_only": 0.5,
    "deezer_renamed": 0.1,
    "deezer_other_release": 0.1,
    "deezer_other_edit": 0.03,
    # Deezer's own rate, ten times the real one, so that the night takes minutes, not hours
    # (the pace against the real rate has a test of its own).
    "deezer_limit": 500,
}
SETTLED = {"found", "not_found"}


async def _night(df: pd.DataFrame, quota: int | None, providers: str) -> tuple[pd.DataFrame, dict]:
    async with FakeSpotify(daily_quota=quota, **SHARES) as server:
        async with Resolver(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            api_url=server.api_url,
            token_url=server.token_url,
            deezer_api_url=server.deezer_url,
            providers=providers,
            rate=1_000,
            deezer_rate=90,
            concurrency=16,
        ) as resolver:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the quota stop's warning: expected here
                out = await resolver.resolve_dataframe(df)
        return out, server.stats()


def rows(count: int, quota: int) -> list[Line]:
    df = pd.DataFrame({"isrc": [f"QZTWO24{n:05d}" for n in range(count)]})
    truth = FakeSpotify(**SHARES)
    alone, alone_stats = asyncio.run(_night(df, quota, "spotify"))
    both, stats = asyncio.run(_night(df, quota, "spotify,deezer"))
    # The title/artist round comes after every first search, so a night the quota stops
    # early leaves it to the next nights: its coverage is measured on a whole run.
    whole, _ = asyncio.run(_night(df, None, "spotify,deezer"))
    whole_alone, _ = asyncio.run(_night(df, None, "spotify"))
    isrcs = list(df["isrc"])
    deezer_has = [truth.deezer_answer(i) is not None for i in isrcs]
    named = both["names_from"].notna() & (both["names_from"] != "")
    missed_names = sum(has and not bool(n) for has, n in zip(deezer_has, named, strict=True))
    invisible = [
        i for i, has in zip(isrcs, deezer_has, strict=True)
        if has and (ts := truth.catalogue.tracks_of(i)) and not ts[0].isrc_visible
        and ts[0].available
    ]  # fmt: skip
    status = dict(zip(isrcs, whole["status"], strict=True))
    reached = [i for i in invisible if status[i] in SETTLED]
    found = [i for i in reached if status[i] == "found"]
    alone_status = dict(zip(isrcs, whole_alone["status"], strict=True))
    alone_found = sum(alone_status[i] == "found" for i in reached)
    wrong = 0
    for out in (both, whole):
        for isrc, track_id in zip(isrcs, out["spotify_track_id"], strict=True):
            if isinstance(track_id, str) and track_id:
                wrong += track_id not in {t.id for t in truth.catalogue.tracks_of(isrc)}
    coverage = len(found) / max(len(reached), 1)
    searches, deezer = stats["requests"]["search"].get("200", 0), stats["deezer"]["requests"]
    return [
        (
            "two providers: ISRCs Deezer has, named tonight",
            f"{sum(deezer_has) - missed_names:,} of {sum(deezer_has):,} "
            f"(Spotify alone: {int((alone['status'] == 'found').sum()):,})",
            "all",
            missed_names == 0,
            f"{count:,} ISRCs, Spotify quota {quota:,}; "
            f"{int((both['names_from'] == 'deezer').sum()):,} rows named by Deezer",
        ),
        (
            "two providers: isrc-invisible tracks found",
            f"{coverage:.1%} of {len(reached)} (Spotify alone: {alone_found})",
            ">= 95%",
            coverage >= 0.95 and len(reached) > 0,
            "no title/artist columns: Deezer's names drive the title/artist search "
            "(proven by the ISRC); a whole run (no quota), of those Deezer names",
        ),
        ("two providers: wrong matches", str(wrong), "0", wrong == 0, ""),
        (
            "two providers: requests",
            f"Spotify {searches:,} searches answered, Deezer {deezer:,}",
            f"Spotify <= {quota:,}",
            searches <= quota and deezer == count,
            f"Spotify alone: {alone_stats['requests']['search'].get('200', 0):,} answered; "
            f"Deezer code-4 answers: {stats['deezer']['quota']}",
        ),
    ]
