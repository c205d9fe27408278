"""TIDAL, Apple Music and MusicBrainz beside Spotify and Deezer, end to end against the
local server (which serves every store from one catalogue): batches, tokens, rate
signals, a store that is down, missing credentials, the cache, found_on and the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from isrc_resolver.http.transport import HttpRequest, HttpResponse, MockTransport
from isrc_resolver.provider import catalogues
from isrc_resolver.settings import Settings
from isrc_resolver.tidal.answer import duration_ms
from isrc_resolver.tidal.client import TidalClient

from .conftest import Cli
from .helpers import ServerThread, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
ALL = "spotify,deezer,tidal,apple,musicbrainz"
# The local server's own limits off, so that tests run fast (each test that is about a
# limit turns its own on).
FAST: dict[str, Any] = {
    "deezer_limit": None,
    "tidal_bucket": None,
    "apple_limit": None,
    "musicbrainz_rate": None,
}


def isrcs(n: int, start: int = 0) -> list[str]:
    return [f"QZDZR24{k:05d}" for k in range(start, start + n)]


def _run(cli: Cli, tmp_path: Path, inputs: list[str], *extra: str) -> Any:
    extra = ("--no-cache", *extra)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    return cli("in.csv", "-o", "out.csv", "--providers", ALL, "--summary-json", "s.json", *extra)


def test_every_store_through_the_cli_in_batches(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**FAST, tidal_missing=0.2, apple_missing=0.3, musicbrainz_missing=0.4)
    env(server)
    inputs = isrcs(45)
    ran = _run(cli, tmp_path, inputs)
    assert ran.code == 0, ran.err
    rows = read_csv(tmp_path / "out.csv")
    assert [r["isrc"] for r in rows] == inputs
    known = server.server
    for row in rows:
        isrc = row["isrc"]
        tidal = known.tidal_answer([isrc], "US")["data"]
        apple = known.apple_answer([isrc], "us")["data"]
        brainz = known.musicbrainz_answer(isrc)
        assert row["tidal_status"] == ("found" if tidal else "not_found"), isrc
        assert row["apple_status"] == ("found" if apple else "not_found"), isrc
        assert row["musicbrainz_status"] == ("found" if brainz else "not_found"), isrc
        if tidal:
            assert row["tidal_track_id"] in {t["id"] for t in tidal}
            assert row["tidal_url"] == f"https://tidal.com/browse/track/{row['tidal_track_id']}"
        if apple:
            assert row["apple_song_id"] in {s["id"] for s in apple}
            assert row["apple_url"].startswith("https://music.apple.com/us/")
        if brainz:
            assert row["musicbrainz_recording_id"] == brainz["recordings"][0]["id"]
        on = [
            name
            for name, found in (
                ("spotify", row["status"] == "found"),
                ("deezer", row["deezer_status"] == "found"),
                ("tidal", bool(tidal)),
                ("apple", bool(apple)),
                ("musicbrainz", bool(brainz)),
            )
            if found
        ]
        assert row["found_on"] == ";".join(on), isrc
    stats = server.stats()
    # 45 ISRCs: TIDAL 20 a request, Apple 25, MusicBrainz and Deezer one each.
    assert stats["tidal"]["requests"] == 3 and stats["apple"]["requests"] == 2
    assert stats["musicbrainz"]["requests"] == 45 and stats["deezer"]["requests"] == 45
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 0
    assert summary["providers"]["tidal"]["requests"] == 3
    tidal_found = sum(r["tidal_status"] == "found" for r in rows)
    assert summary["providers"]["tidal"]["found"] == tidal_found
    assert 0 < tidal_found < 45  # the shares the server lacks are misses, not errors


def test_a_rerun_asks_no_store_and_plan_counts_each(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**FAST)
    env(server)
    inputs = isrcs(30)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", ALL]
    plan = json.loads(cli("plan", *args, "--format", "json").out)
    assert plan["stores"]["tidal"] == {"fresh": 0, "isrcs": 30, "requests": 2}
    assert plan["stores"]["apple"] == {"fresh": 0, "isrcs": 30, "requests": 2}
    assert plan["stores"]["musicbrainz"]["requests"] == 30
    assert cli(*args).code == 0
    first = (tmp_path / "out.csv").read_bytes()
    plan = json.loads(cli("plan", *args, "--format", "json").out)
    assert all(store["requests"] == 0 for store in plan["stores"].values()), plan["stores"]
    server.reset_stats()
    again = cli(*args)
    assert again.code == 0, again.err
    stats = server.stats()
    for name in ("tidal", "apple", "musicbrainz"):
        assert stats[name].get("requests", 0) == 0, (name, stats[name])
    assert stats["deezer"]["requests"] == 0 and stats["total_requests"] == 0
    assert (tmp_path / "out.csv").read_bytes() == first


def test_rate_signals_are_sat_out_and_every_answer_comes(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    # TIDAL's bucket (4 tokens, 20 a second, 2 a request), Apple's window (2 a second)
    # and MusicBrainz's 503s (busy now and then, and a bucket of 30 a second).
    server = spotify_thread(
        deezer_limit=None,
        tidal_bucket=(4.0, 20.0, 2.0),
        apple_limit=2,
        apple_window=0.5,
        musicbrainz_rate=30.0,
        musicbrainz_busy=0.2,
    )
    env(server)
    inputs = isrcs(60)
    ran = _run(cli, tmp_path, inputs, "--tidal-rate", "50", "--apple-rate", "50",
               "--musicbrainz-rate", "25")  # fmt: skip
    assert ran.code == 0, ran.err
    rows = read_csv(tmp_path / "out.csv")
    for name in ("tidal", "apple", "musicbrainz"):
        assert {r[f"{name}_status"] for r in rows} <= {"found", "not_found"}, name
    stats = server.stats()
    assert stats["tidal"]["throttled"] > 0 and stats["apple"]["throttled"] > 0
    assert stats["musicbrainz"]["busy"] > 0 or stats["musicbrainz"]["throttled"] > 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["providers"]["tidal"]["throttled"] > 0


def test_a_store_that_is_down_costs_the_others_nothing(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**{**FAST, "apple_outage": True})
    env(server)
    inputs = isrcs(60)
    ran = _run(cli, tmp_path, inputs, "--max-retries", "1", "--report", "r.html")
    assert ran.code == 1, ran.err  # a store that could not answer is a failure
    rows = read_csv(tmp_path / "out.csv")
    assert {r["apple_status"] for r in rows} == {"error"}
    assert {r["tidal_status"] for r in rows} <= {"found", "not_found"}
    assert all(r["status"] in ("found", "not_found") for r in rows)
    # Taken to be down after a few batches: the rest cost no request.
    assert server.stats()["apple"]["requests"] <= 3 * 2
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 1 and summary["providers"]["apple"]["error"] == 60
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Where the recordings are" in page and "apple" in page


def test_missing_credentials_stop_before_any_request(
    spotify_thread: Callable[..., ServerThread],
    env: Env,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = spotify_thread(**FAST)
    env(server)
    for name, variable in (
        ("tidal", "TIDAL_CLIENT_SECRET"),
        ("apple", "APPLE_MUSIC_KEY_ID"),
        ("musicbrainz", "MUSICBRAINZ_CONTACT"),
    ):
        monkeypatch.delenv(variable)
        write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
        ran = cli("in.csv", "-o", "out.csv", "--providers", f"spotify,{name}")
        assert ran.code == 2 and variable in ran.err, ran.err
        assert not (tmp_path / "out.csv").exists()
        monkeypatch.setenv(variable, server.store_env()[variable])
    monkeypatch.setenv("APPLE_MUSIC_PRIVATE_KEY", str(tmp_path / "nowhere.p8"))
    ran = cli("in.csv", "-o", "out.csv", "--providers", "spotify,apple")
    assert ran.code == 2 and "nowhere.p8" in ran.err, ran.err
    (tmp_path / "bad.p8").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    monkeypatch.setenv("APPLE_MUSIC_PRIVATE_KEY", str(tmp_path / "bad.p8"))
    ran = cli("in.csv", "-o", "out.csv", "--providers", "spotify,apple")
    assert ran.code == 2 and "bad.p8" in ran.err and "not a key" not in ran.err, ran.err
    monkeypatch.setenv("TIDAL_CLIENT_SECRET", "wrong")
    ran = cli("in.csv", "-o", "out.csv", "--providers", "spotify,tidal")
    assert ran.code == 2 and "TIDAL_CLIENT_SECRET" in ran.err and "wrong" not in ran.err
    stats = server.stats()
    assert stats["total_requests"] == 0
    for name in ("tidal", "apple", "musicbrainz"):
        assert stats[name].get("requests", 0) == 0, name


def test_musicbrainz_hears_who_asks(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**FAST)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    assert (
        cli("in.csv", "-o", "out.csv", "--no-cache", "--providers", "spotify,musicbrainz").code == 0
    )
    agents = [k for k in server.server.musicbrainz_stats if k.startswith("agent:")]
    assert agents and all("( tests@example.invalid )" in a for a in agents)
    assert all(a.removeprefix("agent:").startswith("isrc-resolver/") for a in agents)


async def test_the_library_takes_every_store(
    spotify_thread: Callable[..., ServerThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = spotify_thread(**FAST)
    env = server.store_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    df = pd.DataFrame({"isrc": [*isrcs(26), "not an isrc"]})
    rates = {name: 1000.0 for name in catalogues()}
    options: dict[str, Any] = {"providers": ALL, "rates": rates}
    options["endpoints"] = {**server.server.endpoints}
    async with resolver_for(server, **options) as resolver:
        out = await resolver.resolve_dataframe(df)
    for column in ("tidal_track_id", "apple_song_id", "musicbrainz_recording_id", "found_on"):
        assert column in out.columns
    for isrc, status in zip(df["isrc"][:-1], out["apple_status"][:-1], strict=True):
        songs = server.server.apple_answer([isrc], "us")["data"]
        assert status == ("found" if songs else "not_found"), isrc
    summary = out.attrs["isrc_resolver"]
    assert summary["providers"]["apple"]["requests"] == 2  # 26 ISRCs: 25 and 1


async def test_tidal_renews_a_refused_token_once_while_the_others_wait() -> None:
    sent: list[str] = []
    tokens = iter(["t1", "t2", "t3"])

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            sent.append("token")
            body = {"access_token": next(tokens), "expires_in": 3600}
            return HttpResponse(200, {}, json.dumps(body).encode())
        sent.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer t1":
            return HttpResponse(401, {}, b'{"errors": [{"detail": "expired"}]}')
        return HttpResponse(200, {}, b'{"data": []}')

    env = {"TIDAL_CLIENT_ID": "i", "TIDAL_CLIENT_SECRET": "s"}
    settings = Settings.build(
        "a", "b", providers="spotify,tidal", environ=env, rates={"tidal": 1000}
    )

    async def no_sleep(_: float) -> None:
        return None

    async with TidalClient(settings, transport=MockTransport(handler), sleep=no_sleep) as client:
        import asyncio

        answers = await asyncio.gather(*(client.ask(isrcs(20, 20 * k)) for k in range(4)))
    assert all(x.status.value == "not_found" for a in answers for x in a.values())
    assert sent.count("token") == 2  # the first, and one renewal for every refused request


def test_tidal_durations_are_iso_8601() -> None:
    assert duration_ms("PT4M44S") == 284_000
    assert duration_ms("PT1H2M5S") == 3_725_000
    assert duration_ms("PT3M5.5S") == 185_500
    assert duration_ms(None) is None
    for bad in ("4:44", "PT", "P1Y", 284, "PT99999999H"):
        with pytest.raises(ValueError):
            duration_ms(bad)


def test_a_hostile_answer_is_an_error_not_a_row(
    spotify_thread: Callable[..., ServerThread],
) -> None:
    from isrc_resolver.apple.answer import listings_of as apple
    from isrc_resolver.musicbrainz.answer import listing_of as brainz
    from isrc_resolver.tidal.answer import listings_of as tidal

    isrc = "QZDZR2400001"
    with pytest.raises(ValueError):  # an id that would go into a link
        tidal([isrc], {"data": [{"id": "1/../x", "type": "tracks",
                                 "attributes": {"isrc": isrc}}]}, 0.0)  # fmt: skip
    named = {"data": [{"id": "1", "type": "songs", "attributes": {"isrc": isrc, "name": [1]}}]}
    with pytest.raises(ValueError):
        apple([isrc], named, "us", 0.0)
    with pytest.raises(ValueError):
        brainz(isrc, {"isrc": isrc, "recordings": [{"id": "javascript:alert(1)"}]}, 0.0)
    song = {"id": "5", "type": "songs", "attributes": {"isrc": "QZDZR2400002"}}
    other = apple([isrc], {"data": [song]}, "us", 0.0)
    assert other[isrc].status.value == "not_found"  # matched by ISRC, never by position
    link = apple([isrc], {"data": [{"id": "5", "type": "songs", "attributes": {
        "isrc": isrc, "url": "https://evil.example/x"}}]}, "us", 0.0)  # fmt: skip
    assert link[isrc].url == "https://music.apple.com/us/song/5"


def test_max_requests_is_one_ceiling_and_the_ledger_counts_every_store(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    import sqlite3

    server = spotify_thread(**FAST)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(40)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", ALL]
    ran = cli(*args, "--max-requests", "30")
    assert ran.code == 3, ran.err  # the ceiling stops the run: rows not reached are deferred
    stats = server.stats()
    sent = stats["total_requests"] + sum(
        stats[name].get("requests", 0) for name in ("deezer", "tidal", "apple", "musicbrainz")
    )
    assert sent <= 30, stats
    rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 40 and {r["status"] for r in rows} <= {"found", "not_found", "deferred"}
    assert "pending" in {r["musicbrainz_status"] for r in rows}  # one a request: not reached
    ran = cli(*args)  # the next run goes on where this one stopped
    assert ran.code == 0, ran.err
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        counted = dict(db.execute("SELECT account, SUM(requests) FROM ledger GROUP BY account"))
    stores = {account.split("@")[0]: n for account, n in counted.items() if "@" in account}
    stats = server.stats()
    for name in ("deezer", "tidal", "apple", "musicbrainz"):
        assert stores[name] == stats[name]["requests"], (name, counted)  # each one counted


def test_the_demo_runs_every_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from isrc_resolver.cli.main import main

    monkeypatch.chdir(tmp_path)
    for name in ("SPOTIFY_CLIENT_ID", "TIDAL_CLIENT_ID", "APPLE_MUSIC_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    code = main(["--demo", "--providers", ALL, "-o", "out.csv", "--report", "r.html"])
    assert code == 0, capsys.readouterr().err
    rows = read_csv(tmp_path / "out.csv")
    for name in ("deezer", "tidal", "apple", "musicbrainz"):
        statuses = {r[f"{name}_status"] for r in rows if r["status"] != "invalid"}
        assert "found" in statuses and statuses <= {"found", "not_found"}, name
    assert any(r["found_on"] == "spotify;deezer;tidal;apple;musicbrainz" for r in rows)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Where the recordings are" in page and "missing on" in page
    assert not list(tmp_path.glob("*.p8"))  # the demo's key lived in a folder of its own


def test_several_tracks_under_one_isrc_are_candidates_and_a_conflict(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**FAST, conflicting=0.4)
    env(server)
    inputs = isrcs(30)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    providers = "spotify,apple,musicbrainz"
    ran = cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", providers,
              "--candidates", "cand.csv")  # fmt: skip
    assert ran.code == 0, ran.err
    rows = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    known = server.server
    conflicts = 0
    for isrc, row in rows.items():
        recordings = (known.musicbrainz_answer(isrc) or {}).get("recordings", [])
        names = {(r["title"], r["length"]) for r in recordings}
        differ = len({t for t, _ in names}) > 1 or (
            len(names) > 1 and max(n for _, n in names) - min(n for _, n in names) > 10_000
        )
        assert ("musicbrainz" in row["conflict_on"].split(";")) == differ, isrc
        conflicts += differ
    assert conflicts > 0
    candidates = read_csv(tmp_path / "cand.csv")
    by_store: dict[tuple[str, str], list[dict[str, str]]] = {}
    for c in candidates:
        by_store.setdefault((c["isrc"], c["store"]), []).append(c)
    for isrc, row in rows.items():
        songs = known.apple_answer([isrc], "us")["data"]
        listed = by_store.get((isrc, "apple"), [])
        assert {c["store_id"] for c in listed} == {s["id"] for s in songs}, isrc
        if listed:
            chosen = [c for c in listed if c["chosen"].lower() == "true"]
            assert [c["store_id"] for c in chosen] == [row["apple_song_id"]], isrc
        if row["status"] == "found":
            assert any(c["store"] == "spotify" for c in by_store.get((isrc, "spotify"), []))


def test_no_secret_of_any_store_reaches_the_logs(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    import base64

    server = spotify_thread(**{**FAST, "tidal_token_lifetime": 61.0, "apple_outage": True})
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(25)])
    ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--providers", ALL, "-v",
              "--max-retries", "1", "--log-format", "json")  # fmt: skip
    assert ran.code == 1  # Apple is down: a failure, logged
    secret = server.server.config.tidal_client_secret
    basic = base64.b64encode(f"{server.server.config.tidal_client_id}:{secret}".encode())
    for leaked in (secret, basic.decode(), "eyJ"):  # the secret, its Basic form, any JWT
        assert leaked not in ran.err and leaked not in ran.out, leaked
        assert leaked not in (tmp_path / "out.csv").read_text(encoding="utf-8")
    tokens = list(server.server._tidal_tokens)
    assert tokens and not any(t in ran.err for t in tokens)


def test_the_order_of_providers_is_the_preference_for_the_names(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**FAST, tidal_missing=0.3)
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(30)])
    ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--providers", "tidal,spotify,deezer")
    assert ran.code == 0, ran.err
    rows = read_csv(tmp_path / "out.csv")
    names = list(rows[0])
    assert names.index("tidal_status") + 1 == names.index("deezer_track_id")  # in that order
    for row in rows:
        on = row["found_on"].split(";") if row["found_on"] else []
        assert on == [s for s in ("tidal", "spotify", "deezer") if s in on]
        assert row["names_from"] == (on[0] if on else ""), row["isrc"]
        if row["names_from"] == "tidal":
            tidal = server.server.tidal_answer([row["isrc"]], "US")["data"][0]
            assert row["track"] == tidal["attributes"]["title"]
    assert {"tidal", "spotify"} <= {r["names_from"] for r in rows}


def test_the_other_stores_alone_need_no_spotify_credentials(
    spotify_thread: Callable[..., ServerThread],
    env: Env,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = spotify_thread(**FAST)
    env(server)
    monkeypatch.delenv("SPOTIFY_CLIENT_ID")
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET")
    inputs = isrcs(30)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in inputs])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", "tidal,apple"]
    plan = json.loads(cli("plan", *args, "--format", "json").out)
    assert plan["needed"] == 0 and plan["stores"]["tidal"]["requests"] == 2
    ran = cli(*args, "--summary-json", "s.json", "--report", "r.html")
    assert ran.code == 0, ran.err
    rows = read_csv(tmp_path / "out.csv")
    assert {r["status"] for r in rows} == {"not_asked"}
    assert all(r["spotify_track_id"] == "" for r in rows)
    for row in rows:
        on = [s for s in ("tidal", "apple") if row[f"{s}_status"] == "found"]
        assert row["found_on"] == ";".join(on) and row["names_from"] == (on[0] if on else "")
        if on:
            assert row["track"], row["isrc"]  # the first store's names
    stats = server.stats()
    assert stats["total_requests"] == 0 and stats["token_requests"] == 0  # Spotify untouched
    assert json.loads((tmp_path / "s.json").read_text())["not_asked"] == 30
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<th>tidal</th>" in page and "<th>spotify</th>" not in page  # not asked: not a row
    # With Spotify asked, its credentials are needed again, and named.
    ran = cli(*args[:-1], "tidal,spotify")
    assert ran.code == 2 and "SPOTIFY_CLIENT_ID" in ran.err


def test_one_isrcs_tracks_come_in_pages_and_all_are_candidates(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(**FAST)
    env(server)
    many = next(i for i in isrcs(400) if len(server.server.tidal_answer([i], "US")["data"]) >= 3)
    tracks = server.server.tidal_answer([many], "US")["data"]
    write_csv(tmp_path / "in.csv", [{"isrc": many}])
    ran = cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--providers", "spotify,tidal",
              "--candidates", "cand.csv")  # fmt: skip
    assert ran.code == 0, ran.err
    assert server.stats()["tidal"]["requests"] == -(-len(tracks) // 2)  # pages of two
    listed = [c for c in read_csv(tmp_path / "cand.csv") if c["store"] == "tidal"]
    assert sorted(c["store_id"] for c in listed) == sorted(t["id"] for t in tracks)


async def test_a_next_page_elsewhere_is_not_followed() -> None:
    sent: list[str] = []
    page = {"data": [], "links": {"next": "//evil.example/tracks?x=1"}}

    async def handler(request: HttpRequest) -> HttpResponse:
        sent.append(request.url)
        if request.method == "POST":
            return HttpResponse(200, {}, b'{"access_token": "t", "expires_in": 3600}')
        return HttpResponse(200, {}, json.dumps(page).encode())

    env = {"TIDAL_CLIENT_ID": "i", "TIDAL_CLIENT_SECRET": "s"}
    settings = Settings.build("a", "b", providers="tidal", environ=env)
    async with TidalClient(settings, transport=MockTransport(handler)) as client:
        answer = await client.ask(["QZDZR2400001"])
    assert answer["QZDZR2400001"].status.value == "not_found"
    assert len(sent) == 2 and not any("evil" in url for url in sent)


@pytest.mark.parametrize(("parameter", "requests"), [("filter[isrc]", 7), ("countryCode", 1)])
async def test_a_refused_batch_is_halved_only_when_its_isrcs_are_the_cause(
    parameter: str, requests: int
) -> None:
    sent: list[int] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            return HttpResponse(200, {}, b'{"access_token": "t", "expires_in": 3600}')
        count = request.url.count("filter%5Bisrc%5D")
        sent.append(count)
        if count > 5 or parameter != "filter[isrc]":
            error = {"status": "400", "detail": "no", "source": {"parameter": parameter}}
            return HttpResponse(400, {}, json.dumps({"errors": [error]}).encode())
        return HttpResponse(200, {}, b'{"data": []}')

    env = {"TIDAL_CLIENT_ID": "i", "TIDAL_CLIENT_SECRET": "s"}
    settings = Settings.build("a", "b", providers="tidal", environ=env, rates={"tidal": 1000})
    async with TidalClient(settings, transport=MockTransport(handler)) as client:
        answer = await client.ask(isrcs(20))
    assert len(sent) == requests, sent
    expected = "not_found" if parameter == "filter[isrc]" else "error"
    assert {x.status.value for x in answer.values()} == {expected}


def test_the_other_stores_alone_are_exported_from_the_cache(
    spotify_thread: Callable[..., ServerThread],
    env: Env,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = spotify_thread(**FAST)
    env(server)
    monkeypatch.delenv("SPOTIFY_CLIENT_ID")
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET")
    inputs = isrcs(30)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in [*inputs, *inputs[:5]]])
    both = ["--cache", "c.sqlite", "--providers", "tidal,apple"]
    assert cli("in.csv", "-o", "out.csv", *both).code == 0
    ran = cli("cache", "export", "all.csv", *both)
    assert ran.code == 0, ran.err
    exported = {r["isrc"]: r for r in read_csv(tmp_path / "all.csv")}
    assert sorted(exported) == sorted(inputs)  # each ISRC once, every one the stores answered
    out = {r["isrc_normalized"]: r for r in read_csv(tmp_path / "out.csv")}
    for isrc, row in exported.items():
        assert row["status"] == "not_asked"
        for column in ("tidal_track_id", "apple_song_id", "found_on", "names_from", "track"):
            assert row[column] == out[isrc][column], (isrc, column)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_ids_the_stores_answered_are_read_in_pages(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from isrc_resolver import Cache

    where = tmp_path / "c.sqlite" if backend == "sqlite" else request.getfixturevalue("pg_url")
    with Cache(where) as cache:
        cache.store_details("tidal x", {i: {"found": False} for i in isrcs(5)})
        cache.store_details("apple y", {i: {"found": False} for i in isrcs(5, 3)})
        cache.store_details("deezer z", {i: {"found": False} for i in isrcs(3, 20)})
        pages = list(cache.details.ids(["tidal x", "apple y"], size=3))
    assert pages == [isrcs(3), isrcs(3, 3), isrcs(2, 6)]  # each id once, in order
