"""What a run reports is true: the summary file says the process's exit code on every
exit; a provider asked that could not answer fails the run; a known answer is never
lost to a failure; every way in asks every provider of the run, and export shows them."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from isrc_resolver.http.transport import AiohttpTransport, HttpRequest, HttpResponse, TransportError

from .conftest import Cli
from .helpers import ServerThread, age_cache, isrcs, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
BOTH = ["--providers", "spotify,deezer"]


def _summary(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there now


def test_the_summary_says_the_exit_code_of_every_run(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(5)])
    args = ["in.csv", "-o", "out.csv", "--no-cache", "--summary-json", "s.json"]
    assert cli(*args).code == 0
    assert _summary(tmp_path / "s.json")["exit_code"] == 0
    ran = cli(*args, "--column", "nope")
    assert ran.code == 2
    summary = _summary(tmp_path / "s.json")
    assert summary["exit_code"] == 2 and "column 'nope' not found" in str(summary["error"])
    monkeypatch.setenv("SPOTIFY_TOKEN_URL", f"http://127.0.0.1:{_closed_port()}/api/token")
    ran = cli(*args)
    assert ran.code == 1, ran.err
    assert _summary(tmp_path / "s.json")["exit_code"] == 1
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET")
    ran = cli(*args)
    assert ran.code == 2 and _summary(tmp_path / "s.json")["exit_code"] == 2
    # A summary that names a file the run reads is refused, and that file left alone.
    before = (tmp_path / "in.csv").read_bytes()
    assert cli("in.csv", "-o", "o2.csv", "--summary-json", "in.csv").code == 2
    assert (tmp_path / "in.csv").read_bytes() == before
    # One that cannot be written is refused before any request, not left unwritten.
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", spotify.env()["SPOTIFY_CLIENT_SECRET"])
    monkeypatch.setenv("SPOTIFY_TOKEN_URL", spotify.token_url)
    spotify.reset_stats()
    ran = cli("in.csv", "-o", "o3.csv", "--summary-json", "nowhere/s.json")
    assert ran.code == 2 and "nowhere/s.json (--summary-json)" in ran.err
    assert spotify.stats()["total_requests"] == 0 and not (tmp_path / "o3.csv").exists()


def test_a_summary_that_cannot_be_written_is_exit_1_naming_it(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "s.json").write_text('{"exit_code": 0}')
    os.chmod(tmp_path / "ro", 0o555)
    try:
        ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--summary-json", "ro/s.json")
    finally:
        os.chmod(tmp_path / "ro", 0o755)
    if os.geteuid() == 0:  # root writes anywhere: the run succeeds and says so
        assert ran.code == 0 and _summary(tmp_path / "ro" / "s.json")["exit_code"] == 0
    else:
        assert ran.code in (1, 2) and "ro/s.json" in ran.err and "Traceback" not in ran.err


def test_a_provider_asked_that_cannot_answer_fails_the_run(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(deezer_outage=True)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(10)])
    ran = cli(
        "in.csv", "-o", "out.csv", "--no-cache", *BOTH, "--max-retries", "0",
        "--summary-json", "s.json",
    )  # fmt: skip
    assert ran.code == 1, ran.err
    summary = _summary(tmp_path / "s.json")
    assert summary["exit_code"] == 1
    deezer = summary["providers"]["deezer"]  # type: ignore[index]
    assert deezer["error"] == 10 and deezer["failed"] == 10  # type: ignore[index]


def test_a_failing_provider_keeps_its_known_answers(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(deezer_limit=None)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(10)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", *BOTH, "--max-retries", "0"]
    assert cli(*args).code == 0
    first = read_csv(tmp_path / "out.csv")
    known = {r["isrc"]: r["deezer_track_id"] for r in first}
    assert any(known.values())
    server.reconfigure(deezer_outage=True)
    ran = cli(*args, "--refresh", "--summary-json", "s.json")
    assert ran.code == 1, ran.err  # Deezer failed: said, and ...
    again = read_csv(tmp_path / "out.csv")
    assert {r["isrc"]: r["deezer_track_id"] for r in again} == known  # ... nothing lost
    assert [r["deezer_status"] for r in again] == [r["deezer_status"] for r in first]
    deezer = _summary(tmp_path / "s.json")["providers"]["deezer"]  # type: ignore[index]
    assert deezer["stale"] == 10 and deezer["failed"] == 10  # type: ignore[index]


def test_cache_export_has_the_providers_of_the_run(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(deezer_limit=None)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(8)])
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.db", *BOTH).code == 0
    out = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    assert cli("cache", "export", "x.parquet", "--cache", "c.db", *BOTH).code == 0
    exported = pd.read_parquet(tmp_path / "x.parquet")
    assert len(exported) == 8
    for row in exported.to_dict("records"):
        assert (row["deezer_track_id"] or "") == out[row["isrc"]]["deezer_track_id"]
        assert row["deezer_status"] == out[row["isrc"]]["deezer_status"]
    assert cli("cache", "export", "y.parquet", "--cache", "c.db").code == 0
    assert "deezer_track_id" not in pd.read_parquet(tmp_path / "y.parquet").columns


async def test_resolve_many_asks_every_provider_of_the_run(
    spotify_thread: Callable[..., ServerThread],
) -> None:
    server = spotify_thread(deezer_limit=None)
    codes = isrcs(6)
    resolver = resolver_for(
        server, cache=None, providers=("spotify", "deezer"), deezer_api_url=server.deezer_url
    )
    async with resolver as r:
        got = [result.isrc async for result in r.resolve_many(codes)]
    assert got == codes
    assert server.stats()["deezer"]["requests"] == len(codes)


def test_a_title_search_answer_is_kept_when_the_search_cannot_run(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    """Found by title and artist; a later refresh without them (the input's columns, or a
    second catalogue that failed) keeps the answer, stale, and does not cache a miss."""
    server = spotify_thread(isrc_invisible=1.0)
    env(server)
    codes = isrcs(6)
    known = {r["isrc"]: r for r in _truth_rows(server, codes)}
    write_csv(tmp_path / "titled.csv", list(known.values()))
    write_csv(tmp_path / "bare.csv", [{"isrc": i} for i in codes])
    args = ["-o", "out.csv", "--cache", "c.db"]
    assert cli("titled.csv", *args).code == 0
    first = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    assert {r["match_method"] for r in first.values()} == {"title_artist"}
    age_cache(tmp_path / "c.db", days=31)
    ran = cli("bare.csv", *args)
    assert ran.code == 0, ran.err
    again = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    for isrc, row in again.items():
        assert (
            row["status"] == "found" and row["spotify_track_id"] == first[isrc]["spotify_track_id"]
        )
    assert "stale=6" in ran.err
    assert cli("cache", "export", "x.csv", "--cache", "c.db").code == 0
    assert {r["status"] for r in read_csv(tmp_path / "x.csv")} == {"found"}


def _truth_rows(server: ServerThread, codes: list[str]) -> list[dict[str, str]]:
    """Each ISRC's title and first artist as the local Spotify knows them."""
    catalogue = server.server.catalogue
    rows = []
    for code in codes:
        track = catalogue.tracks_of(code)[0]
        rows.append({"isrc": code, "title": track.name, "artist": track.artists[0].name})
    return rows


class _FallbackDown:
    """The local server, except that every search in a market other than the first is
    refused (no answer): a fallback round that fails."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.refused = 0

    async def send(self, request: HttpRequest) -> HttpResponse:
        market = (request.params or {}).get("market")
        if request.url.endswith("/search") and market not in (None, "US"):
            self.refused += 1
            raise TransportError("connection refused (the test's)")
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_found_answer_is_not_cached_over_by_a_first_market_miss(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path
) -> None:
    server = spotify_thread(region_locked=1.0)
    codes = [f"GBABC24{n:05d}" for n in range(1, 13)]  # sold only in GB, if at all
    cache = tmp_path / "c.db"
    async with resolver_for(server, cache=cache, market="US") as r:
        first = {x.isrc: x for x in [await r.resolve(c) for c in codes]}
    codes = [c for c in codes if first[c].found]
    assert len(codes) >= 4
    assert all(first[c].method == "isrc_market" for c in codes)
    age_cache(cache, days=31)
    down = _FallbackDown()
    async with resolver_for(server, cache=cache, market="US", transport=down, max_retries=0) as r:
        again = await r.resolve_values(codes)
    assert down.refused >= len(codes)
    for code in codes:
        assert again[code].found and again[code].stale  # served, marked stale
        assert again[code].track == first[code].track
    # The cache still holds the found answers: a run that may send nothing serves them.
    async with resolver_for(server, cache=cache, market="US", max_requests=0) as r:
        cached = await r.resolve_values(codes)
    assert all(cached[c].found and cached[c].track == first[c].track for c in codes)


def test_a_failed_run_leaves_no_earlier_runs_files_looking_like_its_own(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    """Yesterday's report, candidates and changes are not tonight's: a night that fails
    before writing them leaves none (a takedown alert must not be sent twice)."""
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    extras = ["--report", "r.html", "--changes", "ch.csv", "--candidates", "cand.csv"]
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--summary-json", "s.json", *extras]
    assert cli(*args).code == 0
    assert all((tmp_path / f).exists() for f in ("r.html", "ch.csv", "cand.csv", "s.json"))
    assert cli(*args, "--column", "nope").code == 2
    assert not any((tmp_path / f).exists() for f in ("r.html", "ch.csv", "cand.csv"))
    assert _summary(tmp_path / "s.json")["exit_code"] == 2
    assert (tmp_path / "out.csv").exists()  # the output is whole, from the run before
