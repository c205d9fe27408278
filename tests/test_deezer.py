"""Deezer as a second catalogue, end to end against the local server (which serves Deezer's
endpoint from the same catalogue): every case of the cross-check, names for rows Spotify
has not answered, Spotify's title/artist search with Deezer's names, the cache, the
rate signal (code 4), an outage, and the checks on every answer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from isrc_resolver.deezer.answer import Refused, listing_of
from isrc_resolver.deezer.client import DeezerClient
from isrc_resolver.fake import FakeSpotify
from isrc_resolver.http.transport import HttpRequest, HttpResponse, MockTransport, TransportError
from isrc_resolver.listing import ListingStatus
from isrc_resolver.matching import CrossCheck, cross_check
from isrc_resolver.settings import Settings

from .conftest import Cli
from .helpers import ServerThread, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
SHARES: dict[str, Any] = {
    "deezer_limit": None,  # the pace of Deezer's refusals has a test of its own
    "unavailable": 0.15,
    "deezer_missing": 0.1,
    "deezer_only": 0.15,
    "deezer_renamed": 0.15,
    "deezer_other_release": 0.15,
    "deezer_other_edit": 0.1,
    "deezer_other_artist": 0.1,
}
SPOTIFY_COLUMNS = [
    "status", "spotify_track_id", "spotify_url", "album_id", "album_type", "release_date",
    "duration_ms", "match_count", "match_method", "market", "searched",
]  # fmt: skip


def codes(count: int, start: int = 0) -> list[str]:
    """Generated ISRCs, found or not: some with no track anywhere."""
    return [f"QZDZR24{n:05d}" for n in range(start, start + count)]


def truth(**config: Any) -> FakeSpotify:
    """A server that is never started, to read its answers (the same seed, the same
    catalogue as the one the run asks)."""
    return FakeSpotify(**config)


def expected_check(row: dict[str, str], body: dict[str, Any] | None, case: str) -> str:
    spotify = row["status"] == "found"
    if not spotify or body is None:
        return {
            (True, False): "only_spotify",
            (False, True): "only_others",
            (False, False): "neither",
        }[(spotify, body is not None)]
    return {
        "other_edit": "duration_differs",
        "other_artist": "artist_differs",
    }.get(case, "agree")


def test_every_case_through_the_cli(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**SHARES)
    env(server)
    known = truth(**SHARES)
    inputs = codes(160)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--providers", "spotify,deezer")
    assert ran.code == 0, ran.err

    rows = read_csv(tmp_path / "out.csv")
    assert [r["isrc"] for r in rows] == inputs
    seen: Counter[str] = Counter()
    for row in rows:
        isrc = row["isrc"]
        body = known.deezer_answer(isrc)
        case = known._deezer_case(isrc)
        assert row["deezer_status"] == ("found" if body else "not_found"), isrc
        assert row["deezer_track_id"] == (str(body["id"]) if body else ""), isrc
        assert row["deezer_url"] == (f"https://www.deezer.com/track/{body['id']}" if body else "")
        assert row["cross_check"] == expected_check(row, body, case), (isrc, case)
        if row["status"] == "found":
            assert row["names_from"] == "spotify"
        elif body is not None:  # Spotify has none: Deezer's names, Spotify's columns empty
            assert row["names_from"] == "deezer"
            assert row["track"] == body["title"]
            assert row["artist"] == body["artist"]["name"]
            assert row["album"] == body["album"]["title"]
            assert row["spotify_track_id"] == row["spotify_url"] == row["album_id"] == ""
        else:
            assert row["names_from"] == row["track"] == ""
        seen[row["cross_check"]] += 1
    # Every case; title_differs (another recording under the code) is the demo's and the
    # unit test's.
    assert set(seen) == {c.value for c in CrossCheck} - {"title_differs"}, seen
    stats = server.stats()["deezer"]
    assert stats["requests"] == len(inputs)  # one request per ISRC, no more
    assert "deezer_found=" in ran.err and "deezer_requests=160" in ran.err


def test_the_demo_shows_each_case(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("--demo", "-o", "out.csv", "--providers", "spotify,deezer").code == 0
    rows = read_csv(tmp_path / "out.csv")
    checks = Counter(r["cross_check"] for r in rows if r["cross_check"])
    assert set(checks) == {c.value for c in CrossCheck}
    assert any(r["names_from"] == "deezer" for r in rows)


def test_a_spotify_quota_stop_still_names_every_row_deezer_knows(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(daily_quota=15, deezer_limit=None)
    env(server)
    known = truth()
    inputs = codes(60, 1000)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", "spotify,deezer"]
    ran = cli(*args)
    assert ran.code == 3, ran.err
    rows = read_csv(tmp_path / "out.csv")
    unanswered = [r for r in rows if r["status"] not in ("found", "not_found")]
    assert len(unanswered) >= 30  # the quota stopped Spotify early
    for row in unanswered:
        body = known.deezer_answer(row["isrc"])
        assert row["deezer_status"] == ("found" if body else "not_found")
        if body is not None:
            assert row["names_from"] == "deezer" and row["track"] == body["title"]
        assert row["cross_check"] == ""  # Spotify has not answered: nothing to compare
    assert sum(r["names_from"] != "" for r in rows) == sum(
        known.deezer_answer(i) is not None or r["status"] == "found"
        for i, r in zip(inputs, rows, strict=True)
    )


def test_a_rerun_asks_neither_provider_and_plan_counts_deezer(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    spotify = spotify_thread(deezer_limit=None)
    env(spotify)
    inputs = codes(40, 2000)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", "spotify,deezer"]
    before = cli("plan", *args)
    assert "deezer:    40 requests for 40 ISRCs (0 cached)" in before.out
    assert cli(*args).code == 0
    first = (tmp_path / "out.csv").read_bytes()
    after = cli("plan", *args, "--format", "json")
    plan = json.loads(after.out)
    assert plan["stores"]["deezer"] == {"fresh": 40, "isrcs": 0, "requests": 0}
    spotify.reset_stats()
    again = cli(*args)
    assert again.code == 0, again.err
    stats = spotify.stats()
    assert stats["total_requests"] == stats["token_requests"] == 0, (stats, again.err)
    assert stats["deezer"]["requests"] == 0, (stats, again.err)
    second = (tmp_path / "out.csv").read_bytes()
    changed = [
        (a, b) for a, b in zip(first.splitlines(), second.splitlines(), strict=True) if a != b
    ]
    assert not changed, changed
    assert "deezer_cached=40" in again.err


def test_code_4_answers_slow_the_run_and_lose_nothing(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(deezer_limit=6, deezer_window=1.0)
    env(server)
    known = truth()
    inputs = codes(30, 3000)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    args = ["in.csv", "-o", "out.csv", "--no-cache", "--providers", "spotify,deezer"]
    ran = cli(*args, "--deezer-rate", "40")
    assert ran.code == 0, ran.err
    assert server.stats()["deezer"]["quota"] > 0  # Deezer said code 4 ...
    rows = read_csv(tmp_path / "out.csv")
    for row in rows:  # ... and every answer still came
        body = known.deezer_answer(row["isrc"])
        assert row["deezer_status"] == ("found" if body else "not_found")
    assert "deezer_error=0" in ran.err and "deezer_throttled=0" not in ran.err


def test_a_deezer_outage_leaves_spotify_whole(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(deezer_outage=True)
    env(server)
    inputs = codes(40, 4000)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    assert cli("in.csv", "-o", "alone.csv", "--no-cache").code == 0
    ran = cli(
        "in.csv", "-o", "both.csv", "--no-cache", "--providers", "spotify,deezer",
        "--max-retries", "1",
    )  # fmt: skip
    # A provider asked that could not answer fails the run (exit 1), and Spotify's part
    # is whole all the same.
    assert ran.code == 1, ran.err
    assert "Deezer is not answering" in ran.err
    alone, both = read_csv(tmp_path / "alone.csv"), read_csv(tmp_path / "both.csv")
    for a, b in zip(alone, both, strict=True):
        assert {c: a[c] for c in SPOTIFY_COLUMNS} == {c: b[c] for c in SPOTIFY_COLUMNS}
        assert b["deezer_status"] == "error" and b["cross_check"] == ""
    # After a few ISRCs failed every retry, the rest were not asked at all.
    assert server.stats()["deezer"]["requests"] < len(inputs)


def test_deezer_names_find_what_spotify_isrc_search_cannot(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(isrc_invisible=0.4, deezer_limit=None)
    env(server)
    known = truth(isrc_invisible=0.4)
    inputs = codes(60, 5000)
    invisible = {
        i for i in inputs if (ts := known.catalogue.tracks_of(i)) and not ts[0].isrc_visible
    }
    assert len(invisible) >= 10
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])  # no title, no artist
    assert cli("in.csv", "-o", "alone.csv", "--no-cache").code == 0
    alone = {r["isrc"]: r for r in read_csv(tmp_path / "alone.csv")}
    assert all(alone[i]["status"] == "not_found" for i in invisible)
    assert cli("in.csv", "-o", "both.csv", "--no-cache", "--providers", "spotify,deezer").code == 0
    both = {r["isrc"]: r for r in read_csv(tmp_path / "both.csv")}
    for isrc in invisible:
        row, track = both[isrc], known.catalogue.tracks_of(isrc)[0]
        assert row["status"] == "found" and row["match_method"] == "title_artist", isrc
        # Proven by the ISRC: the track Spotify has under this very code.
        assert row["spotify_track_id"] in {t.id for t in known.catalogue.tracks_of(isrc)}
        assert row["track"] == track.name
    assert all(both[i]["status"] == alone[i]["status"] for i in inputs if i not in invisible)


async def test_the_library_adds_the_columns(
    spotify_thread: Callable[..., ServerThread],
) -> None:
    spotify = spotify_thread(deezer_limit=None)
    df = pd.DataFrame({"isrc": [*codes(12, 6000), "not an isrc"]})
    options = {"providers": "spotify,deezer", "deezer_api_url": spotify.deezer_url}
    options["deezer_rate"] = 1000
    async with resolver_for(spotify, **options) as resolver:
        out = await resolver.resolve_dataframe(df)
    assert {"deezer_track_id", "deezer_status", "cross_check", "names_from"} <= set(out.columns)
    assert out["deezer_status"].iloc[-1] is pd.NA or pd.isna(out["deezer_status"].iloc[-1])
    known = truth()
    for isrc, status in zip(df["isrc"][:-1], out["deezer_status"][:-1], strict=True):
        assert status == ("found" if known.deezer_answer(isrc) else "not_found")
    summary = out.attrs["isrc_resolver"]
    assert summary["providers"]["deezer"]["requests"] == 12


def test_bad_options_stop_before_any_request(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in codes(3)])
    ran = cli("in.csv", "-o", "out.csv", "--providers", "spotify,napster")
    assert ran.code == 2 and "'napster' is not one" in ran.err and "--providers" in ran.err
    ran = cli("in.csv", "-o", "out.csv", "--providers", "spotify,deezer",
              "--deezer-api-url", "http://deezer.example.com")  # fmt: skip
    assert ran.code == 2 and "--deezer-api-url" in ran.err and "plain http" in ran.err
    with pytest.raises(SystemExit) as exit_:  # argparse's own choices: not a --with
        cli("in.csv", "-o", "out.csv", "--with", "deezer")
    assert exit_.value.code == 2
    assert spotify.stats()["total_requests"] == 0 and spotify.stats()["deezer"]["requests"] == 0
    assert not (tmp_path / "out.csv").exists()


# -- the answer's checks and the client's ways, without a server ---------------------------

ISRC = "QZDZR2400001"
GOOD = {
    "id": 3135556, "title": "Song (Remastered)", "isrc": ISRC, "duration": 201,
    "artist": {"id": 1, "name": "Band"},
    "contributors": [{"name": "Band"}, {"name": "Guest"}],
    "album": {"id": 9, "title": "Album", "release_date": "2001-03-07"},
    "link": "https://evil.example.com/phish",
}  # fmt: skip


def test_a_good_answer_becomes_a_listing_with_our_own_link() -> None:
    listing = listing_of(ISRC, GOOD, 1.0)
    assert listing.status is ListingStatus.FOUND and listing.id == "3135556"
    assert listing.url == "https://www.deezer.com/track/3135556"  # not the answer's link
    assert listing.artists == ("Band", "Guest") and listing.duration_ms == 201_000
    assert listing_of(ISRC, {"error": {"code": 800, "message": "no data"}}, 1.0).status is (
        ListingStatus.NOT_FOUND
    )


@pytest.mark.parametrize(
    "change",
    [
        {"id": "3135556"}, {"id": True}, {"id": -5}, {"id": 2**60}, {"id": None},
        {"title": ["x"]}, {"title": "x" * 5000}, {"duration": 10**7}, {"duration": 1.5},
        {"isrc": "USRC17607839"}, {"artist": "Band"}, {"contributors": {"name": "x"}},
        {"album": [1]}, {"error": {"code": 600, "message": "bad"}},
    ],
)  # fmt: skip
def test_a_malformed_answer_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(Refused):
        listing_of(ISRC, {**GOOD, **change}, 1.0)


def test_the_cross_check_compares_as_match_check_normalises() -> None:
    spotify = ("Song - Remastered 2011", ["Band", "Guest"], 200_400)
    assert cross_check(spotify, ("Song (feat. Guest)", ["Band"], 201_000), 90) is CrossCheck.AGREE
    assert cross_check(spotify, ("Other", ["Band"], 200_000), 90) is CrossCheck.TITLE_DIFFERS
    assert cross_check(spotify, ("Song", ["Nobody"], 200_000), 90) is CrossCheck.ARTIST_DIFFERS
    assert cross_check(spotify, ("Song", ["Band"], 204_000), 90) is CrossCheck.DURATION_DIFFERS
    assert cross_check(spotify, None, 90) is CrossCheck.ONLY_SPOTIFY
    assert cross_check(None, None, 90) is CrossCheck.NEITHER


async def test_the_client_retries_codes_700_and_resets_then_gives_up() -> None:
    answers = iter(
        [
            HttpResponse(200, {}, json.dumps({"error": {"code": 700}}).encode()),
            None,  # a reset
            HttpResponse(200, {}, b"<html>gateway</html>"),
            HttpResponse(200, {}, json.dumps(GOOD).encode()),
        ]
    )

    async def handler(request: HttpRequest) -> HttpResponse:
        answer = next(answers, None)
        if answer is None:
            raise TransportError("reset")
        return answer

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    settings = Settings.build("a", "b", deezer_rate=1000, max_retries=5)
    transport = MockTransport(handler)
    async with DeezerClient(settings, transport=transport, sleep=sleep) as client:
        listing = await client.lookup(ISRC)
        assert listing.found and client.stats.retries == 3
        assert transport.requests[0].url == "https://api.deezer.com/track/isrc:QZDZR2400001"
        assert "Authorization" not in transport.requests[0].headers  # no token goes to Deezer
        failed = [await client.lookup(f"QZDZR24{n:05d}") for n in range(5)]
    assert [x.status for x in failed] == [ListingStatus.ERROR] * 5
    assert client.down is not None and "next run asks again" in (failed[-1].error or "")
    # Three ISRCs tried every retry; the two after them were not sent at all.
    assert len(transport.requests) == 4 + 3 * 6


def test_review_and_report_show_where_deezer_disagrees(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = cli("--demo", "-o", "out.csv", "--providers", "spotify,deezer", "--report", "r.html")
    assert ran.code == 0, ran.err
    rows = {r["isrc_normalized"]: r for r in read_csv(tmp_path / "out.csv")}
    assert cli("review", "out.csv", "-o", "review.csv", "--no-cache").code == 0
    reasons = {r["isrc"]: r["review_reason"] for r in read_csv(tmp_path / "review.csv")}
    for isrc, row in rows.items():
        if row["cross_check"] in ("artist_differs", "duration_differs"):
            assert reasons[isrc].startswith(f"cross_check {row['cross_check']}"), isrc
        if row["cross_check"] == "only_others":
            assert reasons[isrc].startswith("only_others"), isrc
    # Africa: a conflict on Spotify's side too, which leads (the more doubtful reason).
    assert reasons["USSM18200360"].startswith("isrc_conflict")
    assert "GBAHS1600463" not in reasons  # agree, and the input's title checks out
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "cross-check (the other stores)" in page and "duration_differs" in page
