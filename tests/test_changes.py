"""What changed tonight: nights against the local server, whose world changes between them
(a takedown, a re-link, a rename, a new release), through the CLI. A change is told once,
never guessed: failures, throttling and a quota stop tell nothing, and a change missed on
such a night is told on the next clean one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from isrc_resolver.fake import World

from .conftest import Cli
from .helpers import ServerThread, isrcs, read_csv, resolver_for, write_csv

Env = Callable[[ServerThread], None]
COLUMNS = [
    "isrc", "provider", "change", "before_id", "after_id", "before_title", "after_title",
    "last_seen",
]  # fmt: skip


def _sold(server: ServerThread, count: int) -> list[str]:
    """ISRCs the local Spotify sells in the US (found by the first search)."""
    catalogue = server.server.catalogue
    return [i for i in isrcs(80) if catalogue.search(i, "US")][:count]


def _changes(path: Path) -> set[tuple[str, str, str]]:
    rows = read_csv(path)
    assert all(list(r) == COLUMNS for r in rows)
    return {(r["isrc"], r["provider"], r["change"]) for r in rows}


@pytest.fixture
def night(env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path) -> Callable[..., object]:
    env(spotify)
    gone, relinked, renamed, kept, new = _sold(spotify, 5)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in (gone, relinked, renamed, kept, new)])
    spotify.reconfigure(world=World(unreleased=frozenset({new})))

    def run(*extra: str) -> object:
        args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--providers", "spotify,deezer"]
        return cli(*args, "--changes", "changes.csv", "--summary-json", "s.json", *extra)

    run.codes = (gone, relinked, renamed, kept, new)  # type: ignore[attr-defined]
    return run


def test_two_nights_tell_exactly_what_changed_and_a_third_tells_nothing(
    night: Callable[..., object], spotify: ServerThread, tmp_path: Path, cli: Cli
) -> None:
    gone, relinked, renamed, _kept, new = night.codes  # type: ignore[attr-defined]
    first = night("--report", "r.html")
    assert first.code == 0, first.err  # type: ignore[attr-defined]
    assert _changes(tmp_path / "changes.csv") == set()  # a first night: no changes
    assert json.loads((tmp_path / "s.json").read_text())["changes"] == {
        "gone": 0, "appeared": 0, "id_changed": 0, "names_changed": 0,
    }  # fmt: skip
    before = {r["isrc"]: r for r in read_csv(tmp_path / "out.csv")}
    world = World(
        taken_down=frozenset({gone}), relinked=frozenset({relinked}), renamed=frozenset({renamed})
    )
    spotify.reconfigure(world=world)
    second = night("--refresh", "--report", "r.html")
    assert second.code == 0, second.err  # type: ignore[attr-defined]  # news is no failure
    expected = {
        (isrc, store, kind)
        for isrc, kind in ((gone, "gone"), (relinked, "id_changed"), (renamed, "names_changed"))
        for store in ("spotify", "deezer")
    } | {(new, "spotify", "appeared"), (new, "deezer", "appeared")}
    assert _changes(tmp_path / "changes.csv") == expected
    rows = read_csv(tmp_path / "changes.csv")
    assert [r["change"] for r in rows][:2] == ["gone", "gone"]  # gone first
    spotify_gone = next(r for r in rows if r["isrc"] == gone and r["provider"] == "spotify")
    assert spotify_gone["before_id"] == before[gone]["spotify_track_id"]
    assert spotify_gone["after_id"] == "" and spotify_gone["last_seen"].endswith("Z")
    renamed_row = next(r for r in rows if r["isrc"] == renamed and r["provider"] == "spotify")
    assert renamed_row["after_title"] == renamed_row["before_title"] + " (Remastered 2026)"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["changes"] == {"gone": 2, "appeared": 2, "id_changed": 2, "names_changed": 2}
    assert "gone=2 appeared=2 id_changed=2 names_changed=2" in second.err  # type: ignore[attr-defined]
    page = (tmp_path / "r.html").read_text()
    assert "What changed (8)" in page and page.index(gone) < page.index(renamed)
    # The cache tells the story of the one taken down.
    assert cli("cache", "history", gone, "--cache", "c.db").code == 0
    third = night("--refresh")
    assert third.code == 0  # type: ignore[attr-defined]
    assert _changes(tmp_path / "changes.csv") == set()  # told once


def test_a_night_of_failures_tells_nothing_and_the_next_clean_one_tells_it(
    night: Callable[..., object], spotify: ServerThread, tmp_path: Path
) -> None:
    gone, *_ = night.codes  # type: ignore[attr-defined]
    assert night().code == 0  # type: ignore[attr-defined]
    spotify.reconfigure(
        world=World(taken_down=frozenset({gone})), fault_5xx=1.0, deezer_outage=True
    )
    failed = night("--refresh", "--max-retries", "0")
    assert failed.code == 1  # type: ignore[attr-defined]
    assert _changes(tmp_path / "changes.csv") == set()  # failures are no takedown
    spotify.reconfigure(fault_5xx=0.0, deezer_outage=False, window_limit=1, window_seconds=60)
    throttled = night("--refresh", "--max-wait", "0.1")
    assert throttled.code == 3, throttled.err  # type: ignore[attr-defined]
    told = _changes(tmp_path / "changes.csv")
    assert (gone, "spotify", "gone") not in told  # not asked (throttled): no row
    spotify.reconfigure(window_limit=None)
    stopped = night("--refresh", "--max-requests", "0")
    assert stopped.code == 3  # type: ignore[attr-defined]
    assert (gone, "spotify", "gone") not in _changes(tmp_path / "changes.csv")
    clean = night("--refresh", "--ignore-cooldown")  # the throttled night left a cooldown
    assert clean.code == 0, clean.err  # type: ignore[attr-defined]
    assert (gone, "spotify", "gone") in _changes(tmp_path / "changes.csv")


def test_the_changes_file_as_parquet_and_in_the_library(
    night: Callable[..., object], spotify: ServerThread, tmp_path: Path, cli: Cli
) -> None:
    gone, *_, new = night.codes  # type: ignore[attr-defined]
    assert night().code == 0  # type: ignore[attr-defined]
    spotify.reconfigure(world=World(taken_down=frozenset({gone}), unreleased=frozenset({new})))
    args = ["in.csv", "-o", "o.csv", "--cache", "c.db", "--providers", "spotify,deezer"]
    assert cli(*args, "--refresh", "--changes", "ch.parquet").code == 0
    table = pq.read_table(tmp_path / "ch.parquet")
    assert table.column_names == COLUMNS
    assert {(r["isrc"], r["change"]) for r in table.to_pylist()} == {(gone, "gone")}
    # The library gives the same, as the run's report.
    spotify.reconfigure(world=World(unreleased=frozenset({new})))
    resolver = resolver_for(
        spotify, cache=tmp_path / "c.db", providers=("spotify", "deezer"), refresh=True,
        deezer_api_url=spotify.deezer_url,
    )  # fmt: skip

    async def night_in_library() -> list[tuple[str, str, str]]:
        async with resolver as r:
            report = await r.resolve_file(tmp_path / "in.csv", tmp_path / "lib.csv")
        return [(c.isrc, c.provider, c.change.value) for c in report.changes]

    told = asyncio.run(night_in_library())
    assert sorted(told) == [(gone, "deezer", "appeared"), (gone, "spotify", "appeared")]
