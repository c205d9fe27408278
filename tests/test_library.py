"""The library end to end against the local Spotify, in the same event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from isrc_resolver import (
    ConfigurationError,
    CredentialsError,
    Resolver,
    Status,
    TokenError,
    resolve_file,
    result_row,
)
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

from .helpers import catalogue_rows, check_rows, expected, read_csv, resolver_for, write_csv


async def test_resolve_one() -> None:
    async with FakeSpotify() as server, resolver_for(server) as r:
        result = await r.resolve("qz-7xs-24-00012")
    assert result.status is Status.FOUND and result.isrc == "QZ7XS2400012"
    assert result.track is not None
    assert (result.track.name, result.track.album.name, result.track.artists[0].name) == (
        "CARNIVAL",
        "VULTURES 1",
        "¥$",
    )
    assert (
        result_row(result)["artists"]
        == "¥$; Kanye West; Ty Dolla $ign; Rich The Kid; Playboi Carti"
    )


async def test_resolve_many_keeps_order_and_asks_once_per_isrc() -> None:
    inputs = ["QZJ842400387", "bogus", "qzj842400387", "QZ7XS2400012", "ISRC QZ-J84-24-00387"]
    async with FakeSpotify() as server, resolver_for(server) as r:
        results = [res async for res in r.resolve_many(inputs)]
        searches = server.stats()["search_requests"]
    assert [res.status.value for res in results] == ["found", "invalid", "found", "found", "found"]
    assert results[0] == results[2] == results[4]
    assert results[0].match_count == 6
    assert searches == 2  # invalid values cost nothing, duplicates once


async def test_resolve_dataframe_adds_typed_columns() -> None:
    df = pd.DataFrame({"id": ["a", "b", "c"], "isrc": ["QZ7XS2400012", "nope", None]})
    async with FakeSpotify() as server, resolver_for(server) as r:
        out = await r.resolve_dataframe(df, column="isrc")
    assert list(out["id"]) == ["a", "b", "c"]
    assert list(out["status"]) == ["found", "invalid", "invalid"]
    assert out["duration_ms"].dtype == "Int64" and out["duration_ms"][0] == 264_000
    assert out["explicit"].dtype == "boolean" and bool(out["explicit"][0]) is True
    assert pd.isna(out["track"][1])


async def test_chaos_2000_rows_come_out_complete_and_correct(tmp_path: Path) -> None:
    """5% 5xx, 1% dropped connections, a rolling-window limit, tokens expiring every
    two seconds and once more on demand mid-run: no row lost, none wrong, exit 0."""
    rows = catalogue_rows(2000, seed=11)
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    async with FakeSpotify(
        fault_5xx=0.05,
        fault_drop=0.01,
        window_limit=300,
        window_seconds=1,
        token_lifetime=2,
        seed=5,
    ) as server:

        async def expire_midway() -> None:
            # Polls the server's own counter: there is no event to wait on from outside.
            while server.stats()["search_requests"] < 700:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            server.expire_tokens()

        expirer = asyncio.create_task(expire_midway())
        async with resolver_for(server, rate=1000, concurrency=32, max_retries=8) as r:
            report = await r.resolve_file(source, out)
        await expirer
        stats = server.stats()
    check_rows(rows, read_csv(out), seed=5)
    assert report.exit_code == 0, report.summary()
    assert report.statuses[Status.ERROR] == 0
    assert stats["tokens_issued"] >= 3  # renewed on schedule and after the forced expiry
    assert stats["requests"]["search"].get("401", 0) >= 1
    assert stats["throttled"] >= 1 and stats["dropped_connections"] >= 1
    faults = stats["requests"]["search"]
    assert faults.get("500", 0) + faults.get("502", 0) + faults.get("503", 0) > 0


async def test_a_429_storm_pauses_every_worker_together(tmp_path: Path) -> None:
    rows = catalogue_rows(300, seed=3, unique=300)
    source = write_csv(tmp_path / "in.csv", rows)
    async with FakeSpotify(window_limit=40, window_seconds=1) as server:
        async with resolver_for(server, rate=2000, concurrency=16, adaptive=False) as r:
            report = await r.resolve_file(source, tmp_path / "out.csv")
            pauses = r.client.gate.pauses
        stats = server.stats()
    check_rows(rows, read_csv(tmp_path / "out.csv"))
    assert report.exit_code == 0
    assert stats["throttled"] >= 1 and pauses >= 1
    # During a penalty only requests already in flight arrive (at most one per worker
    # per pause); nobody keeps hammering.
    assert stats["requests_during_penalty"] <= 16 * pauses


@pytest.mark.parametrize("quota", [False, True])
async def test_long_retry_after_or_quota_stops_in_seconds_with_valid_output(
    tmp_path: Path, quota: bool
) -> None:
    rows = catalogue_rows(200, seed=4, unique=150)
    source = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    config: dict[str, Any] = (
        {"daily_quota": 20, "quota_retry_after": 30_000}
        if quota
        else {"window_limit": 20, "window_seconds": 50_000}
    )
    started = time.perf_counter()
    async with FakeSpotify(**config) as server:
        async with resolver_for(server, concurrency=8) as r:
            report = await r.resolve_file(source, out)
        stats = server.stats()
    assert time.perf_counter() - started < 10
    assert report.exit_code == 3 and report.stop is not None and report.stop.quota is quota
    assert report.stop.retry_after >= 30_000
    written = read_csv(out)
    assert len(written) == len(rows)
    statuses = {row["status"] for row in written}
    assert (
        statuses <= {"found", "not_found", "invalid", "rate_limited"} and "rate_limited" in statuses
    )
    # Rows that did get an answer keep it; the rest say why they have none.
    done = [r for r in written if r["status"] in ("found", "not_found")]
    assert 0 < len({r["isrc_normalized"] for r in done}) <= 20
    for row in done:
        assert (row["status"], row["spotify_track_id"] or None) == expected(row["isrc_normalized"])[
            :2
        ]
    assert stats["requests_during_penalty"] <= 8  # only what was in flight at the 429


async def test_bad_credentials_stop_at_once(tmp_path: Path) -> None:
    async with FakeSpotify(client_secret="other") as server:
        with pytest.raises(CredentialsError, match="rejected the client id or secret"):
            async with resolver_for(server) as r:
                await r.resolve("QZ7XS2400012")
        assert server.stats()["token_requests"] == 1


async def test_module_level_resolve_file(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}, {"isrc": "x"}])
    async with FakeSpotify() as server:
        report = await resolve_file(
            source,
            tmp_path / "out.parquet",
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            api_url=server.api_url,
            token_url=server.token_url,
        )
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert list(frame["status"]) == ["found", "invalid"] and report.rows == 2


def test_missing_credentials_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="SPOTIFY_CLIENT_ID is not set"):
        Resolver()
    with pytest.raises(ConfigurationError, match="between 1 and 10"):
        Resolver("id", "secret", limit=50)


async def test_library_errors_name_parameters_not_flags() -> None:
    """An unreachable token endpoint: the library's message names ``token_url``; the CLI
    shows the same message with ``--token-url`` (tests/test_cli.py)."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    resolver = Resolver(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        api_url=f"http://127.0.0.1:{closed}/v1",
        token_url=f"http://127.0.0.1:{closed}/api/token",
        max_retries=0,
        cache=None,
    )
    with pytest.raises(TokenError) as caught:
        async with resolver as r:
            await r.resolve("QZ7XS2400012")
    message = str(caught.value)
    assert "token_url=" in message
    assert "--" not in message


def test_a_cli_message_names_the_flags() -> None:
    from isrc_resolver.cli.options import as_flags

    assert as_flags("check token_url= or try again") == "check --token-url or try again"
    assert as_flags("or run with cache=None") == "or run with --no-cache"
    assert as_flags("allow_insecure_http=True if meant") == "--allow-insecure-http if meant"
    assert as_flags("rows=20 unique=3") == "rows=20 unique=3"  # not parameters
