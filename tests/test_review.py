"""Answers a person can check and correct: candidates, ISRC conflicts, overrides, the review
list, the summary file and the report, end to end against the local server."""

from __future__ import annotations

import contextlib
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from isrc_resolver import MatchPreference
from isrc_resolver.fake import Catalogue
from isrc_resolver.fake.catalogue import Availability
from isrc_resolver.matching import different_recordings
from isrc_resolver.overrides import parse_overrides, parse_track_id
from isrc_resolver.pipeline.search import choose_with_reason

from .conftest import Cli
from .helpers import ServerThread, isrcs, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
SHARE = 0.3  # of generated ISRCs also carried by another recording


def conflicting(cat: Catalogue, isrc: str) -> bool:
    """The server's truth: the tracks a US search shows under ``isrc`` with that very
    code are of more than one length (the other recording is 47 s longer)."""
    tracks = [t for t in cat.search(isrc, "US") if t.isrc == isrc]
    return len({t.duration_ms for t in tracks}) > 1


def titled_rows(cat: Catalogue, codes: list[str]) -> list[dict[str, str]]:
    rows = []
    for isrc in codes:
        first = cat.search(isrc, "US")[0]
        rows.append({"isrc": isrc, "title": first.name, "artist": first.artists[0].name})
    return rows


# -- candidates and conflicts ------------------------------------------------------------


def test_candidates_and_conflicts_through_the_cli(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(conflicting=SHARE)
    env(server)
    cat = Catalogue(0, availability=Availability(conflicting=SHARE))
    codes = isrcs(80)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in codes])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--candidates", "cand.parquet"]
    assert cli(*args).code == 0

    out = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    flagged = {i for i, r in out.items() if r["isrc_conflict"] == "True"}
    assert flagged == {i for i in codes if conflicting(cat, i)}
    assert 5 < len(flagged) < 60  # both kinds are there
    assert all(out[i]["isrc_conflict"] == "False" for i in set(codes) - flagged)

    cand = pd.read_parquet(tmp_path / "cand.parquet")
    assert str(cand["chosen"].dtype) == "boolean" and str(cand["rank"].dtype) == "Int64"
    by_isrc: dict[str, list[dict[str, object]]] = defaultdict(list)
    for record in cand.to_dict("records"):
        by_isrc[str(record["isrc"])].append(record)
    assert set(by_isrc) == set(codes)
    for isrc, kept in by_isrc.items():
        chosen = [c for c in kept if c["chosen"]]
        assert len(chosen) == 1, isrc
        assert chosen[0]["spotify_track_id"] == out[isrc]["spotify_track_id"]
        assert chosen[0]["reason"], isrc
        assert [c["spotify_track_id"] for c in kept] == [t.id for t in cat.search(isrc, "US")]
        assert [c["rank"] for c in kept] == list(range(1, len(kept) + 1))

    # From the cache alone, the same candidates, for no request at all.
    server.reset_stats()
    args[-1] = "again.parquet"
    assert cli(*args).code == 0
    assert server.stats()["total_requests"] == 0
    again = pd.read_parquet(tmp_path / "again.parquet")
    pd.testing.assert_frame_equal(again, cand)


def test_candidates_need_a_cache_and_are_checked_before_any_request(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--candidates", "cand.csv")
    assert ran.code == 2 and "--candidates" in ran.err and "--no-cache" in ran.err
    ran = cli("in.csv", "-o", "out.csv", "--candidates", "cand.xlsx")
    assert ran.code == 2 and "xlsx" in ran.err
    ran = cli("in.csv", "-o", "out.csv", "--report", "no/such/folder/r.html")
    assert ran.code == 2 and "does not exist" in ran.err
    ran = cli("in.csv", "-o", "-", "--report", "r.html")
    assert ran.code == 2 and "--report" in ran.err
    assert spotify.stats()["total_requests"] == 0 and spotify.stats()["token_requests"] == 0
    assert not (tmp_path / "out.csv").exists()


def test_reasons_say_which_rule_chose() -> None:
    def item(tid: str, isrc: str, kind: str = "album", date: str = "2020", ms: int = 200_000):
        album = {"album_type": kind, "release_date": date, "artists": [{"name": "A"}]}
        return {"id": tid, "external_ids": {"isrc": isrc}, "album": album, "duration_ms": ms}

    one = [item("a", "GBAAA2400001")]
    assert choose_with_reason(one, "GBAAA2400001")[1] == "only track"
    mixed = [item("x", "GBAAA2400002"), item("a", "GBAAA2400001")]
    assert choose_with_reason(mixed, "GBAAA2400001") == (mixed[1], "exact ISRC")
    comp = [item("c", "GBAAA2400001", "compilation", "2019"), item("a", "GBAAA2400001")]
    chosen, why = choose_with_reason(comp, "GBAAA2400001", MatchPreference.ORIGINAL)
    assert chosen["id"] == "a" and why == "original over compilation"
    dates = [item("b", "GBAAA2400001", date="2021"), item("a", "GBAAA2400001", date="2020")]
    assert choose_with_reason(dates, "GBAAA2400001", "original")[1] == "earliest release"
    assert choose_with_reason(dates, "GBAAA2400001")[1] == "Spotify's order"
    long = [item("b", "GBAAA2400001", ms=260_000), item("a", "GBAAA2400001", ms=200_000)]
    chosen, why = choose_with_reason(long, "GBAAA2400001", duration_ms=201_000)
    assert chosen["id"] == "a" and why == "duration within 2 s of the input's"


def test_different_recordings() -> None:
    assert not different_recordings([("Hey Jude", 431_000)])
    assert not different_recordings(
        [("Hey Jude", 431_000), ("Hey Jude - Remastered 2015", 431_333), ("HEY JUDE", None)]
    )
    assert different_recordings([("Hey Jude", 431_000), ("Let It Be", 431_000)])
    assert different_recordings([("Hey Jude", 431_000), ("Hey Jude", 445_000)])
    assert not different_recordings([("Don't Stop Me Now", 209_000), ("Dont Stop Me Now", 209_500)])


# -- overrides -----------------------------------------------------------------------------


def test_overrides_cost_no_search_and_come_back_with_the_pinned_names(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    cat = Catalogue(0)
    codes = isrcs(12)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in codes])
    assert cli("in.csv", "-o", "first.csv", "--cache", "c.sqlite").code == 0
    first = {r["isrc"]: r for r in read_csv(tmp_path / "first.csv")}
    # Pin three: one to another ISRC's track (by link), one to "not on Spotify", one by id.
    other = cat.search(codes[5], "US")[0]
    pins = [
        {
            "isrc": codes[0].lower(),
            "spotify_track_id": f"https://open.spotify.com/track/{other.id}?si=x",
            "note": "label says so",
        },
        {"isrc": codes[1], "spotify_track_id": "none", "note": ""},
        {"isrc": codes[2], "spotify_track_id": first[codes[3]]["spotify_track_id"], "note": ""},
    ]
    write_csv(tmp_path / "pins.csv", pins)
    plan = cli("plan", "in.csv", "--cache", "c.sqlite", "--overrides", "pins.csv")
    assert plan.code == 0 and "overrides: 3 pinned: no search (2 tracks to look up)" in plan.out
    spotify.reset_stats()
    assert (
        cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--overrides", "pins.csv").code == 0
    )
    stats = spotify.stats()
    assert stats["search_requests"] == 0  # the rest were cached, the pinned never searched
    assert stats["requests"]["track"] == {"200": 2}  # one GET /tracks/{id} per pinned id
    out = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    assert (out[codes[0]]["track"], out[codes[0]]["spotify_track_id"]) == (other.name, other.id)
    assert out[codes[0]]["match_method"] == "override"
    assert (out[codes[1]]["status"], out[codes[1]]["match_method"]) == ("not_found", "override")
    assert out[codes[2]]["track"] == first[codes[3]]["track"]
    assert all(out[i] == first[i] for i in codes[3:])

    # Later runs take the pinned tracks from the cache; the searched ISRCs are never asked.
    spotify.reset_stats()
    assert (
        cli("in.csv", "-o", "out2.csv", "--cache", "c.sqlite", "--overrides", "pins.csv").code == 0
    )
    assert spotify.stats()["total_requests"] == 0
    again, before = read_csv(tmp_path / "out2.csv"), read_csv(tmp_path / "out.csv")
    # A row pinned "not found" has no answer of Spotify's: its time is the run's own,
    # which may be the next second. Everything else comes back the same.
    for rows in (again, before):
        pinned_miss = rows[1]
        assert (pinned_miss["status"], pinned_miss["match_method"]) == ("not_found", "override")
        assert pinned_miss.pop("resolved_at").endswith("Z")
    assert again == before
    assert spotify.stats()["unique_isrcs_searched"] == 0


def test_a_pinned_id_spotify_does_not_know_is_an_error_row(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    codes = isrcs(2)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in codes])
    write_csv(tmp_path / "pins.csv", [{"isrc": codes[0], "spotify_track_id": "0" * 22}])
    ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--overrides", "pins.csv")
    assert ran.code == 1
    out = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    assert out[codes[0]]["status"] == "error"
    assert f"Spotify has no track {'0' * 22}" in out[codes[0]]["error"]
    assert "overrides file" in out[codes[0]]["error"]
    assert out[codes[1]]["status"] == "found"
    assert spotify.stats()["search_requests"] == 1


def test_a_bad_overrides_file_stops_before_any_request_naming_the_rows(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    codes = isrcs(3)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in codes])
    pins = [
        {"isrc": "not-an-isrc", "spotify_track_id": "none"},  # row 2
        {"isrc": codes[0], "spotify_track_id": "abc"},  # row 3
        {"isrc": codes[1], "spotify_track_id": "4uLU6hMCjMI75M1A2tKUQC"},  # row 4
        {"isrc": codes[1], "spotify_track_id": "none"},  # row 5: another answer
        {"isrc": codes[2], "spotify_track_id": "none"},  # rows 6 and 7 agree: fine
        {"isrc": codes[2], "spotify_track_id": ""},
    ]
    write_csv(tmp_path / "pins.csv", pins)
    ran = cli("in.csv", "-o", "out.csv", "--overrides", "pins.csv")
    assert ran.code == 2
    assert "row 2: 'not-an-isrc' is not an ISRC" in ran.err
    assert "row 3: 'abc' is not a Spotify track id" in ran.err
    assert f"rows 4 and 5 give {codes[1]} different answers" in ran.err
    assert "row 6" not in ran.err and "row 7" not in ran.err
    assert spotify.stats()["total_requests"] == 0 and spotify.stats()["token_requests"] == 0
    assert not (tmp_path / "out.csv").exists()
    write_csv(tmp_path / "nocol.csv", [{"isrc": codes[0], "track": "x"}])
    ran = cli("in.csv", "-o", "out.csv", "--overrides", "nocol.csv")
    assert ran.code == 2 and "has no spotify_track_id column" in ran.err


def test_track_ids_are_read_in_every_form() -> None:
    tid = "4uLU6hMCjMI75M1A2tKUQC"
    for form in (tid, f" {tid} ", f"spotify:track:{tid}", f"https://open.spotify.com/track/{tid}",
                 f"https://open.spotify.com/intl-de/track/{tid}?si=abc"):  # fmt: skip
        assert parse_track_id(form) == tid
    for empty in ("", " ", "none", "NONE", None):
        assert parse_track_id(empty) is None
    for bad in ("abc", f"https://example.com/track/{tid}", f"spotify:album:{tid}", tid + "x"):
        with pytest.raises(ValueError):
            parse_track_id(bad)
    review = parse_overrides([(2, "GBAAA2400001", "", "")], "f", empty_means_none=False)
    assert review == {}  # an undecided review row is skipped
    plain = parse_overrides([(2, "GBAAA2400001", "", "")], "f")
    assert plain["GBAAA2400001"].track_id is None


async def test_the_library_takes_overrides_as_a_mapping(
    spotify: ServerThread, tmp_path: Path
) -> None:
    cat = Catalogue(0)
    codes = isrcs(3)
    async with resolver_for(spotify, cache=None) as r:
        plain = await r.resolve_values(codes)
    pinned_to = plain[codes[1]].track
    assert pinned_to is not None
    spotify.reset_stats()
    async with resolver_for(
        spotify, cache=None, overrides={codes[0]: pinned_to.id, codes[2]: None}
    ) as r:
        got = await r.resolve_values(codes)
    assert got[codes[0]].track is not None and got[codes[0]].track.id == pinned_to.id
    assert got[codes[0]].method == "override"
    assert got[codes[2]].status == "not_found" and got[codes[2]].method == "override"
    assert spotify.stats()["unique_isrcs_searched"] == 1  # codes[1] only
    assert cat.search(codes[1], "US")[0].id == pinned_to.id
    with pytest.raises(Exception, match="is not an ISRC"):
        resolver_for(spotify, overrides={"nope": None})


# -- the review loop -----------------------------------------------------------------------


def test_review_edit_overrides_round_trip(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(conflicting=SHARE)
    env(server)
    cat = Catalogue(0, availability=Availability(conflicting=SHARE))
    codes = isrcs(40)
    rows = titled_rows(cat, codes)
    rows[3]["title"] = "Something Else Entirely"  # the catalogue's own error
    write_csv(tmp_path / "in.csv", rows)
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite").code == 0
    ran = cli("review", "out.csv", "--cache", "c.sqlite")
    assert ran.code == 0
    review = read_csv(tmp_path / "out.review.csv")
    reasons = [r["review_reason"].split(":")[0] for r in review]
    clashes = [i for i in codes if conflicting(cat, i)]
    assert reasons[: len(clashes)] == ["isrc_conflict"] * len(clashes)  # they lead
    assert {r["isrc"] for r in review[: len(clashes)]} == set(clashes)
    assert codes[3] in {r["isrc"] for r in review if r["review_reason"].startswith("title")}
    assert all(r["spotify_track_id"] == "" for r in review)
    first = review[0]
    assert "[chosen]" in first["candidates"] and len(first["candidates"].splitlines()) >= 2

    # A person picks the other recording for the first conflict and says the catalogue's
    # mistitled row is not on Spotify; every other row is left as it was.
    other = first["candidates"].splitlines()[1].split()[1]
    for r in review:
        if r["isrc"] == first["isrc"]:
            r["spotify_track_id"], r["note"] = other, "the label's sheet says so"
        if r["isrc"] == codes[3]:
            r["spotify_track_id"] = "none"
    write_csv(tmp_path / "edited.csv", review)
    before = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    server.reset_stats()
    assert (
        cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--overrides", "edited.csv").code == 0
    )
    after = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    assert server.stats()["search_requests"] == 0
    assert (after[first["isrc"]]["spotify_track_id"], after[first["isrc"]]["match_method"]) == (
        other,
        "override",
    )
    assert after[codes[3]]["status"] == "not_found"
    untouched = set(codes) - {first["isrc"], codes[3]}
    assert all(after[i] == before[i] for i in untouched)


def test_review_of_a_parquet_output_without_a_cache(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    cat = Catalogue(0)
    codes = isrcs(6)
    rows = titled_rows(cat, codes)
    rows[0]["artist"] = "Nobody We Know"
    write_csv(tmp_path / "in.csv", rows)
    assert cli("in.csv", "-o", "out.parquet", "--no-cache").code == 0
    ran = cli("review", "out.parquet", "-o", "todo.parquet", "--no-cache")
    assert ran.code == 0
    todo = pd.read_parquet(tmp_path / "todo.parquet")
    assert list(todo["isrc"]) == [codes[0]]
    assert todo["review_reason"][0].startswith("artist_differs")
    assert todo["candidates"].isna().all()
    ran = cli("review", "in.csv")
    assert ran.code == 2 and "is not an isrc-resolve output" in ran.err


# -- the summary file and the report --------------------------------------------------------


def test_the_summary_file_says_what_the_summary_line_says(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in [*isrcs(5), "bad", isrcs(1)[0]]])
    ran = cli("in.csv", "-o", "out.csv", "--no-cache", "--summary-json", "run.json")
    assert ran.code == 0
    line = next(x for x in ran.err.splitlines() if "summary:" in x)
    said = dict(re.findall(r"(\w+)=([\w.]+)", line))
    data = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    names = {"errors": "error", "429s": "throttled"}
    for key, value in said.items():
        if key == "elapsed":
            assert f"{data['elapsed']:.1f}s" == value
        elif key in data["changes"]:  # gone=, appeared=...: counted under "changes"
            assert data["changes"][key] == int(value), key
        else:
            assert data[names.get(key, key)] == int(value), key
    assert data["exit_code"] == 0 and data["version"] and data["resume_at"] is None
    assert (data["rows"], data["found"], data["invalid"]) == (7, 6, 1)


def hostile_fixtures(path: Path) -> Path:
    entry = {
        "isrc": "QZHOS2400001",
        "name": "<script>alert(1)</script>",
        "artists": ['"><img src=x onerror=alert(2)>'],
        "album": {"name": "</style><script>alert(3)</script>"},
    }
    path.write_text(json.dumps([entry]), encoding="utf-8")
    return path


def test_the_report_escapes_every_text_and_loads_nothing(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    server = spotify_thread(fixtures=hostile_fixtures(tmp_path / "fixtures.json"))
    env(server)
    rows = [{"isrc": "QZHOS2400001", "title": "<b>Mine</b>", "artist": "Me"}]
    write_csv(
        tmp_path / "in.csv", rows + [{"isrc": i, "title": "", "artist": ""} for i in isrcs(4)]
    )
    assert cli("in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--report", "r.html").code == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Mine&lt;/b&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!open\.spotify\.com/track/)""", page)
    assert page.count("<svg") >= 5  # four charts and the budget


async def test_a_file_run_shows_its_report_in_a_notebook(
    spotify: ServerThread, tmp_path: Path
) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(4)])
    async with resolver_for(spotify, cache=tmp_path / "c.sqlite") as r:
        report = await r.resolve_file(
            tmp_path / "in.csv",
            tmp_path / "out.csv",
            candidates=tmp_path / "cand.csv",
            summary_json=tmp_path / "s.json",
        )
    page = report._repr_html_()
    assert page is not None and "<svg" in page and "found" in page
    assert json.loads((tmp_path / "s.json").read_text())["found"] == 4
    assert len(read_csv(tmp_path / "cand.csv")) >= 4


def test_answers_cached_before_candidates_were_kept_are_written_alone(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    import sqlite3

    from isrc_resolver.store.sqlite import VERSION

    env(spotify)
    codes = isrcs(5)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in codes])
    assert cli("in.csv", "-o", "first.csv", "--cache", "c.sqlite").code == 0
    # Make it a version-2 cache, as the release before this one left it.
    with contextlib.closing(sqlite3.connect(tmp_path / "c.sqlite")) as db, db:
        db.execute("ALTER TABLE results DROP COLUMN conflict")
        db.execute("ALTER TABLE results DROP COLUMN candidates")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
    spotify.reset_stats()
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--candidates", "cand.csv"]
    assert cli(*args).code == 0
    assert spotify.stats()["total_requests"] == 0  # every answer kept through the migration
    out = read_csv(tmp_path / "out.csv")
    assert [r["isrc_conflict"] for r in out] == [""] * 5
    assert [r["spotify_track_id"] for r in out] == [
        r["spotify_track_id"] for r in read_csv(tmp_path / "first.csv")
    ]
    cand = read_csv(tmp_path / "cand.csv")
    assert [c["isrc"] for c in cand] == sorted(codes)
    assert all(c["chosen"] == "True" and "before candidates were kept" in c["reason"] for c in cand)
    with contextlib.closing(sqlite3.connect(tmp_path / "c.sqlite")) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (VERSION,)


def test_a_stopped_run_still_writes_its_summary_file_and_report(
    spotify: ServerThread, env: Env, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(6)])
    args = ["--cache", "c.sqlite", "--max-requests", "2", "--summary-json", "s.json"]
    ran = cli("in.csv", "-o", "out.parquet", *args, "--report", "r.html")
    assert ran.code == 3
    data = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert (data["exit_code"], data["budget_spent"]) == (3, "max_requests")
    assert (data["found"], data["deferred"], data["requests"]) == (2, 4, 2)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert ">deferred<b>4</b>" in page.replace("\n", "") and "exit code 3" in page
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert sorted(frame["status"]) == ["deferred"] * 4 + ["found"] * 2
