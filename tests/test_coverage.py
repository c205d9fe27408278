"""Finding every track Spotify has: fallback markets, the title/artist search, and the
check of a catalogue's own titles and artists, end to end against the local server."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from isrc_resolver import Resolver, Status, choose_match
from isrc_resolver.cli import main
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Catalogue, FakeSpotify
from isrc_resolver.fake.catalogue import Availability
from isrc_resolver.markets import isrc_market
from isrc_resolver.settings import TITLE_PAGES

from .helpers import ServerThread, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
SHARES = {"region_locked": 0.08, "foreign": 0.04, "isrc_invisible": 0.03, "unavailable": 0.02}
FOREIGN = "JP,BR,NO,KR,MX,ZA,IN,AU"  # the markets the local server sells foreign-only tracks in
PREFIXES = ["SE", "NO", "DE", "FR", "GB", "JP", "BR", "ES", "IT", "NL", "GX", "QZ", "US"]


def catalogue(count: int, seed: int) -> tuple[list[dict[str, str]], Catalogue]:
    """Rows with ISRCs of many countries, and a title and artist with noise (case,
    accents, a "feat." part) taken from what the local server has for each."""
    rng = random.Random(seed)
    cat = Catalogue(0, availability=Availability(**SHARES))
    rows = []
    for n in range(count):
        isrc = f"{rng.choice(PREFIXES)}{rng.choice('ABCDEFGH')}{rng.randint(10, 99)}24{n:05d}"
        tracks = cat.tracks_of(isrc)
        title, artist = (
            (tracks[0].name, tracks[0].artists[0].name) if tracks else ("Nothing", "Nobody")
        )
        rows.append(
            {"isrc": isrc, "title": noisy(title, rng), "artist": noisy(artist, rng, feat=True)}
        )
    return rows, cat


def noisy(text: str, rng: random.Random, *, feat: bool = False) -> str:
    roll = rng.random()
    if roll < 0.3:
        text = text.upper()
    elif roll < 0.5:  # accents dropped, as many catalogues store names
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    elif roll < 0.6:
        text = text.lower()
    if feat and rng.random() < 0.2:
        text += " feat. Somebody Else"
    return text


def no_track(prefix: str) -> str:
    """The first ISRC under ``prefix`` the local catalogue has no track for."""
    cat = Catalogue(0)
    return next(i for n in range(1000) if not cat.tracks_of(i := f"{prefix}{n:05d}"))


def findable(cat: Catalogue, isrc: str) -> bool:
    return any(t.available for t in cat.tracks_of(isrc))


def right(cat: Catalogue, isrc: str, track_id: str) -> bool:
    return track_id in {t.id for t in cat.tracks_of(isrc)}


def bound(stats: dict[str, Any], rows: list[dict[str, str]], markets: int) -> int:
    """The most a run may send: unique ISRCs, plus for each miss the fallback markets
    tried and one title/artist search."""
    return len(rows) * (1 + markets + 1)


def test_the_cli_finds_every_findable_track_and_no_wrong_one(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, env: Env
) -> None:
    server = spotify_thread(**SHARES)
    env(server)
    rows, cat = catalogue(600, seed=1)
    write_csv(tmp_path / "in.csv", rows)
    code = main([
        str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--no-cache",
        "--rate", "1000", "--fallback-markets", f"isrc,{FOREIGN}",
    ])  # fmt: skip
    assert code == 0
    out = read_csv(tmp_path / "out.csv")
    can = [r for r in out if findable(cat, r["isrc"])]
    found = [r for r in can if r["status"] == "found"]
    assert len(found) / len(can) >= 0.99, (len(found), len(can))
    wrong = [
        r
        for r in out
        if r["status"] == "found" and not right(cat, r["isrc"], r["spotify_track_id"])
    ]
    assert wrong == []
    methods = {r["match_method"] for r in found}
    assert methods == {"isrc", "isrc_market", "title_artist"}
    assert all(r["market"] for r in found if r["match_method"] == "isrc_market")
    # A miss says where it was looked for: the first market, its own, the others, title/artist.
    misses = [r for r in out if r["status"] == "not_found"]
    assert misses and all(r["searched"].startswith("US;") for r in misses)
    assert all(r["searched"].endswith(";title_artist") for r in misses)
    # The noise (case, accents, feat.) does not count against the catalogue's names.
    checks = [r["match_check"] for r in found]
    assert checks.count("ok") / len(checks) >= 0.99
    stats = server.stats()
    assert stats["search_requests"] <= len(rows) + sum(
        len(f"isrc,{FOREIGN}".split(",")) + 1 for r in out if r["match_method"] != "isrc"
    )


def test_a_plain_search_misses_what_the_fallbacks_find(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, env: Env
) -> None:
    """The baseline: no fallback markets, no title/artist: the region-locked, foreign and
    ISRC-invisible tracks are silently missing (as a plain search would miss them)."""
    server = spotify_thread(**SHARES)
    env(server)
    rows, cat = catalogue(300, seed=2)
    write_csv(tmp_path / "in.csv", rows)
    code = main([
        str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--no-cache",
        "--rate", "1000", "--fallback-markets", "none", "--fallback-search", "off",
    ])  # fmt: skip
    assert code == 0
    out = read_csv(tmp_path / "out.csv")
    can = [r for r in out if findable(cat, r["isrc"])]
    found = [r for r in can if r["status"] == "found"]
    assert len(found) / len(can) < 0.93  # about 15% of the findable tracks are missed
    assert server.stats()["search_requests"] == len(rows)
    assert server.stats()["title_searches"] == 0


async def test_the_library_finds_them_too_from_a_dataframe() -> None:
    rows, cat = catalogue(300, seed=3)
    df = pd.DataFrame(rows)
    async with (
        FakeSpotify(**SHARES) as server,
        resolver_for(server, fallback_markets=f"isrc,{FOREIGN}") as r,
    ):
        out = await r.resolve_dataframe(df)
    can = out[[findable(cat, i) for i in out["isrc"]]]
    assert (can["status"] == "found").mean() >= 0.99
    found = out[out["status"] == "found"]
    assert all(
        right(cat, i, t) for i, t in zip(found["isrc"], found["spotify_track_id"], strict=True)
    )
    assert set(found["match_method"]) == {"isrc", "isrc_market", "title_artist"}
    assert (found["match_check"] == "ok").mean() >= 0.99
    assert found["match_score"].dtype == "Float64"


def test_no_title_artist_columns_means_no_title_artist_search(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, env: Env
) -> None:
    server = spotify_thread(**SHARES)
    env(server)
    rows, _ = catalogue(200, seed=4)
    write_csv(tmp_path / "in.csv", [{"isrc": r["isrc"]} for r in rows])
    assert (
        main(
            [
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "out.csv"),
                "--no-cache",
                "--rate",
                "1000",
            ]
        )
        == 0
    )
    assert server.stats()["title_searches"] == 0
    out = read_csv(tmp_path / "out.csv")
    assert {r["match_check"] for r in out} == {""}  # nothing to check against
    # A miss in the US cost one search more at most: in its own country's market.
    second = sum(r["status"] == "not_found" or r["match_method"] == "isrc_market" for r in out)
    assert server.stats()["search_requests"] <= len(rows) + second


def test_match_check_flags_a_catalogue_s_wrong_isrcs(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, env: Env
) -> None:
    server = spotify_thread()
    env(server)
    cat = Catalogue(0)
    good, other = "QZAAA2400003", "QZAAA2400004"
    a, b = cat.tracks_of(good)[0], cat.tracks_of(other)[0]
    assert a.name != b.name
    write_csv(
        tmp_path / "in.csv",
        [
            {"isrc": good, "Song": a.name, "Artist_Name": a.artists[0].name},
            {"isrc": other, "Song": a.name, "Artist_Name": a.artists[0].name},  # a label's typo
        ],
    )
    assert main([str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--no-cache"]) == 0
    out = read_csv(tmp_path / "out.csv")
    assert out[0]["match_check"] == "ok" and float(out[0]["match_score"]) == 100
    assert out[1]["match_check"] in {"title_differs", "both_differ"}
    assert float(out[1]["match_score"]) < 90


def test_fuzzy_accepts_a_close_title_artist_match_and_says_so(tmp_path: Path) -> None:
    """An ISRC that is wrong in the catalogue (Spotify has the track under another code):
    verified finds nothing, fuzzy takes the track with the same title and artist."""
    cat = Catalogue(0)
    real = "QZAAA2400010"
    track = cat.tracks_of(real)[0]
    typo = no_track("SEAAA24")  # a code Spotify has no recording under
    names = {"title": track.name, "artist": track.artists[0].name}
    df = pd.DataFrame([{"isrc": real, **names}, {"isrc": typo, **names}])

    async def run(mode: str) -> pd.DataFrame:
        async with FakeSpotify(unavailable=0.0) as server:
            server.catalogue.tracks_of(real)  # the server knows the title (as Spotify would)
            async with Resolver(
                DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, api_url=server.api_url,
                token_url=server.token_url, rate=1000, fallback_search=mode,
                cache=tmp_path / "c.sqlite3",
            ) as r:  # fmt: skip
                return await r.resolve_dataframe(df)

    import asyncio

    fuzzy = asyncio.run(run("fuzzy"))
    assert fuzzy.loc[1, "status"] == "found"
    assert fuzzy.loc[1, "match_method"] == "title_artist_fuzzy"
    # A verified run does not take the cached fuzzy answer: asked again, not proven.
    verified = asyncio.run(run("verified"))
    assert verified.loc[1, "status"] == "not_found"
    assert verified.loc[0, "match_method"] == "isrc"  # the cached proven answer is kept


def test_an_unknown_fallback_market_is_refused_before_any_request(
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
    env: Env,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = spotify_thread()
    env(server)
    write_csv(tmp_path / "in.csv", [{"isrc": "QZAAA2400003"}])
    args = [str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]
    assert main([*args, "--fallback-markets", "isrc,XX"]) == 2
    assert "'XX' is not a Spotify market" in capsys.readouterr().err
    assert main([*args, "--market", "ZZ"]) == 2
    assert server.stats()["search_requests"] == 0 and server.stats()["token_requests"] == 0


async def test_a_cached_miss_asks_only_the_markets_not_searched_yet(tmp_path: Path) -> None:
    miss = no_track("SEAAA24")
    async with FakeSpotify() as server:
        assert not server.catalogue.search(miss)  # a miss everywhere
        for markets, searches in (("none", 1), ("isrc", 1), ("isrc,JP", 1), ("isrc,JP", 0)):
            before = server.stats()["search_requests"]
            async with resolver_for(
                server, cache=tmp_path / "c.sqlite3", fallback_markets=markets
            ) as r:
                result = await r.resolve(miss)
            assert result.status is Status.NOT_FOUND
            assert server.stats()["search_requests"] - before == searches, markets
        assert result.searched == ("US", "SE", "JP")


async def test_the_local_server_models_markets() -> None:
    async with FakeSpotify(region_locked=1.0) as server, resolver_for(server) as r:
        page = await r.client.search_isrc("SEAAA2400002")
        assert page["total"] == 0  # no market means the US
        assert (await r.client.search_isrc("SEAAA2400002", market="SE"))["total"] >= 1
        with pytest.raises(Exception, match="400"):
            await r.client.search_isrc("SEAAA2400002", market="XX")
        track = server.catalogue.tracks_of("SEAAA2400002")[0]
        near = await r.client.search_tracks(
            f'track:"{track.name}" artist:"{track.artists[0].name}"', market="SE"
        )
        names = [i["name"] for i in near["items"]]
        assert track.name in names and any(" - Live" in n for n in names)
        isrcs = {i["external_ids"]["isrc"] for i in near["items"]}
        assert len(isrcs) > 1  # versions and namesakes carry other ISRCs
    assert isrc_market("GX1234500001") == "GB" and isrc_market("QZ1234500001") == "US"
    assert isrc_market("ZZ1234500001") is None


def test_choice_puts_various_artists_last_and_prefers_the_input_s_duration() -> None:
    def item(id_: str, kind: str, artist: str, ms: int, date: str = "2020") -> dict[str, Any]:
        return {
            "id": id_, "external_ids": {"isrc": "QZAAA2400001"}, "duration_ms": ms,
            "album": {"album_type": kind, "release_date": date, "artists": [{"name": artist}]},
        }  # fmt: skip

    items = [
        item("va", "album", "Various Artists", 200_000, "2001"),
        item("own", "album", "Band", 200_000, "2005"),
        item("radio", "single", "Band", 150_000, "2010"),
    ]
    assert choose_match(items, "QZAAA2400001", "original")["id"] == "own"
    assert choose_match(items, "QZAAA2400001", "original", duration_ms=151_500)["id"] == "radio"
    assert choose_match(items, "QZAAA2400001", "exact", duration_ms=151_500)["id"] == "radio"
    assert choose_match(items, "QZAAA2400001", "exact")["id"] == "va"


def test_plan_bounds_what_a_run_with_fallbacks_sends(
    spotify_thread: Callable[..., ServerThread],
    tmp_path: Path,
    env: Env,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    server = spotify_thread(**SHARES)
    env(server)
    rows, _ = catalogue(150, seed=6)
    write_csv(tmp_path / "in.csv", rows)
    args = [str(tmp_path / "in.csv"), "--no-cache", "--fallback-markets", "isrc,JP"]
    assert main(["plan", *args, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    # Each ISRC's fallback markets: its own country's (unless the US) and JP, once each.
    fallbacks = sum(len({isrc_market(r["isrc"]), "JP"} - {None, "US"}) for r in rows)
    assert plan["requests"] == 150
    # ... and a title/artist search each, of up to TITLE_PAGES pages.
    assert plan["requests_max"] == 150 + fallbacks + 150 * TITLE_PAGES
    assert server.stats()["search_requests"] == 0
    assert main([*args, "-o", str(tmp_path / "out.csv"), "--rate", "1000"]) == 0
    assert plan["requests"] <= server.stats()["search_requests"] <= plan["requests_max"]


async def test_the_input_s_duration_picks_the_track_of_that_length(tmp_path: Path) -> None:
    import json

    isrc = "QZDUR2400001"
    album = {"name": "Album", "album_type": "album", "release_date": "2001"}
    single = {"name": "Song", "album_type": "single", "release_date": "2002"}
    tracks = [
        {"isrc": isrc, "name": "Song", "artists": ["Band"], "duration_ms": 240_000, "album": album},
        {
            "isrc": isrc,
            "name": "Song",
            "artists": ["Band"],
            "duration_ms": 185_000,
            "album": single,
        },
    ]
    (tmp_path / "fixtures.json").write_text(json.dumps(tracks))
    row = {"isrc": isrc, "title": "Song", "artist": "Band", "duration_ms": "184000"}
    df = pd.DataFrame([row, row])
    async with FakeSpotify(fixtures=tmp_path / "fixtures.json") as server:
        async with resolver_for(server) as r:
            plain = await r.resolve_dataframe(df.drop(columns=["duration_ms"]))
        async with resolver_for(server) as r:
            timed = await r.resolve_dataframe(df)
        write_csv(tmp_path / "in.csv", [row, row])
        async with resolver_for(server) as r:
            await r.resolve_file(tmp_path / "in.csv", tmp_path / "out.csv")
    assert list(plain["duration_ms"]) == [240_000, 240_000]  # Spotify's first
    # The input has a duration_ms column: ours is spotify_duration_ms, within 2 s of it.
    assert list(timed["spotify_duration_ms"]) == [185_000, 185_000]
    assert {r["spotify_duration_ms"] for r in read_csv(tmp_path / "out.csv")} == {"185000"}


@pytest.mark.parametrize(("at", "requests"), [(3, 1), (14, 2), (25, 3), (40, 3)])
async def test_a_title_search_pages_on_until_a_track_carries_the_isrc(
    at: int, requests: int
) -> None:
    """45 tracks share the title and artist; the one carrying the ISRC is number ``at``:
    the search reads pages of 10 until it is there, three pages at most."""
    import json as json_

    from isrc_resolver import HttpRequest, HttpResponse, MockTransport

    isrc, total = "QZAAA2400001", 45

    def track(n: int) -> dict[str, Any]:
        code = isrc if n == at else f"QZAAA25{n:05d}"
        return {
            "id": f"{n:022d}", "name": "Gold", "duration_ms": 200_000,
            "artists": [{"id": "a" * 22, "name": "Kira"}], "external_ids": {"isrc": code},
            "album": {"id": "b" * 22, "name": "Gold", "album_type": "single",
                      "release_date": "2020"},
        }  # fmt: skip

    asked: list[int] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/api/token"):
            return HttpResponse(200, body=b'{"access_token": "tok", "token_type": "Bearer"}')
        params = request.params or {}
        if "isrc:" in params["q"]:  # Spotify's isrc: filter misses it everywhere
            body = {"tracks": {"items": [], "total": 0, "limit": 10, "offset": 0}}
            return HttpResponse(200, body=json_.dumps(body).encode())
        offset = int(params.get("offset", "0"))
        asked.append(offset)
        items = [track(n) for n in range(offset, min(offset + 10, total))]
        body = {"tracks": {"items": items, "total": total, "limit": 10, "offset": offset}}
        return HttpResponse(200, body=json_.dumps(body).encode())

    df = pd.DataFrame({"isrc": [isrc], "title": ["Gold"], "artist": ["Kira"]})
    async with Resolver(
        "id", "secret", transport=MockTransport(handler), cache=None, rate=1000,
        fallback_markets="none",
    ) as resolver:  # fmt: skip
        out = await resolver.resolve_dataframe(df)
    assert asked == [0, 10, 20][:requests]
    found = at < 10 * 3
    assert out["status"][0] == ("found" if found else "not_found")
    if found:
        assert out["spotify_track_id"][0] == f"{at:022d}"
        assert out["match_method"][0] == "title_artist"
