"""The "coverage" scenario: how many of the tracks Spotify has a run finds, how many it
gets wrong, and what that costs in requests, against a plain ``isrc:`` search without a
market (what most scripts send) as the baseline, on the same catalogue in the same script.

The catalogue (the local server's, as the end-to-end tests use it): ISRCs of many
countries, 8% sold only in their own country, 4% only in an unrelated market, 3% missed by
the ``isrc:`` filter everywhere (found by title and artist), 2% in no market; titles and
artists in the input with noise (case, accents, "feat."). Runs through the library's
``resolve_dataframe``, in this process.
"""

from __future__ import annotations

import asyncio

import pandas as pd

from isrc_resolver import Resolver
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify
from tests.test_coverage import FOREIGN, SHARES, catalogue, findable, right

Line = tuple[str, str, str, bool, str]


async def _run(df: pd.DataFrame, **options: object) -> tuple[pd.DataFrame, int]:
    async with FakeSpotify(**SHARES) as server:  # type: ignore[arg-type]
        async with Resolver(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            api_url=server.api_url,
            token_url=server.token_url,
            rate=1_000,
            concurrency=16,
            **options,  # type: ignore[arg-type]
        ) as resolver:
            out = await resolver.resolve_dataframe(df)
        return out, int(server.stats()["search_requests"])


def rows(count: int) -> list[Line]:
    data, cat = catalogue(count, seed=11)
    df = pd.DataFrame(data)
    plain, plain_requests = asyncio.run(_run(df, fallback_markets="none", fallback_search="off"))
    full, full_requests = asyncio.run(_run(df, fallback_markets=f"isrc,{FOREIGN}"))
    can = [findable(cat, isrc) for isrc in df["isrc"]]
    total = sum(can)

    def figures(out: pd.DataFrame) -> tuple[int, int]:
        found = out["status"] == "found"
        hits = int((found & pd.Series(can, index=out.index)).sum())
        wrong = sum(
            not right(cat, i, t)
            for i, t in zip(out.loc[found, "isrc"], out.loc[found, "spotify_track_id"], strict=True)
        )
        return hits, wrong

    (plain_found, plain_wrong), (full_found, full_wrong) = figures(plain), figures(full)
    unique = len(df)
    methods = full.loc[full["status"] == "found", "match_method"].value_counts().to_dict()
    checks = (full["match_check"] == "ok").sum() / max((full["status"] == "found").sum(), 1)
    return [
        (
            "coverage: found / findable",
            f"{full_found / total:.1%} (plain isrc: {plain_found / total:.1%})",
            ">= 99%",
            full_found / total >= 0.99,
            f"{unique:,} ISRCs, {total:,} findable; found by "
            + ", ".join(f"{m} {n}" for m, n in sorted(methods.items())),
        ),
        (
            "coverage: wrong matches",
            f"{full_wrong} (plain isrc: {plain_wrong})",
            "0",
            full_wrong == 0,
            f"--fallback-search verified; match_check ok on {checks:.1%} of found rows",
        ),
        (
            "coverage: requests per unique ISRC",
            f"{full_requests / unique:.2f} (plain isrc: {plain_requests / unique:.2f})",
            f"<= {1 + len(FOREIGN.split(',')) + 2}",
            full_requests / unique <= 1 + len(FOREIGN.split(",")) + 2,
            f"--fallback-markets isrc,{FOREIGN}; {full_requests:,} vs {plain_requests:,} searches",
        ),
    ]
