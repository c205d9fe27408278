"""No file a run writes is a file it reads, or another it writes: told apart by what the
file is (device and inode), not by how it is spelled; refused before any request."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isrc_resolver import Resolver
from isrc_resolver.errors import InputError
from isrc_resolver.paths import Place, check_places

from .conftest import Cli
from .helpers import ServerThread, isrcs, resolver_for, write_csv

Env = Callable[[ServerThread], None]


def sent(server: ServerThread) -> int:
    return int(server.stats()["total_requests"])


def _error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.fixture
def files(env: Env, spotify: ServerThread, tmp_path: Path) -> Path:
    """An input, a symbolic link and a hard link to it, an overrides file, a sub-folder."""
    env(spotify)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(4)])
    (tmp_path / "link.csv").symlink_to("in.csv")
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")
    write_csv(tmp_path / "pins.csv", [{"isrc": isrcs(1)[0], "spotify_track_id": "none"}])
    (tmp_path / "sub").mkdir()
    (tmp_path / "out.csv").write_text("an earlier output\n")
    return tmp_path


CLASHES = [
    # (extra arguments, the option named, the other option named)
    (["--summary-json", "in.csv"], "--summary-json", "the input"),
    (["--summary-json", "./in.csv"], "--summary-json", "the input"),
    (["--report", "link.csv"], "--report", "the input"),
    (["--candidates", "hard.csv"], "--candidates", "the input"),
    (["--report", "out.csv"], "--report", "-o"),
    (["--summary-json", "sub/../out.csv"], "--summary-json", "-o"),
    (["--summary-json", "s.json", "--report", "s.json"], "--summary-json", "--report"),
    (["--overrides", "pins.csv", "--report", "pins.csv"], "--report", "--overrides"),
    (["--overrides", "pins.csv", "--candidates", "./pins.csv"], "--candidates", "--overrides"),
    (["--env-file", "pins.csv", "--summary-json", "pins.csv"], "--summary-json", "--env-file"),
]


@pytest.mark.parametrize(("extra", "named", "other"), CLASHES)
def test_a_file_written_that_is_one_read_or_written_is_refused_before_any_request(
    files: Path, spotify: ServerThread, cli: Cli, extra: list[str], named: str, other: str
) -> None:
    before = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file()}
    ran = cli("in.csv", "-o", "out.csv", "--cache", "c.db", *extra)
    assert ran.code == 2, ran.err
    message = _error(ran.err)
    assert f"({named})" in message and f"({other})" in message, message
    assert f"Name another file for {named}" in message
    assert sent(spotify) == 0
    after = {p.name: p.read_bytes() for p in files.iterdir() if p.is_file()}
    assert after == before  # nothing written or replaced, the cache not even made


def test_the_overrides_named_again_as_the_output_is_refused(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    before = (files / "pins.csv").read_bytes()
    ran = cli("in.csv", "-o", "pins.csv", "--overrides", "pins.csv", "--no-cache")
    assert ran.code == 2 and "(-o)" in _error(ran.err) and "(--overrides)" in ran.err
    assert sent(spotify) == 0 and (files / "pins.csv").read_bytes() == before


def test_the_cache_named_as_the_input_is_refused_before_it_is_opened(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    before = (files / "in.csv").read_bytes()
    ran = cli("in.csv", "-o", "o.csv", "--cache", "link.csv")
    assert ran.code == 2 and "(--cache)" in _error(ran.err) and "(the input)" in ran.err
    assert sent(spotify) == 0 and (files / "in.csv").read_bytes() == before
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["in.csv", "link.csv", "hard.csv", "pins.csv", "sub", "out.csv"]
    )


def test_review_never_writes_over_the_output_it_reads(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    assert cli("in.csv", "-o", "run.csv", "--no-cache").code == 0
    before = (files / "run.csv").read_bytes()
    for target in ("run.csv", "sub/../run.csv"):
        ran = cli("review", "run.csv", "-o", target, "--no-cache")
        assert ran.code == 2 and "(review -o)" in _error(ran.err), ran.err
        assert "(review OUTPUT)" in ran.err
    assert (files / "run.csv").read_bytes() == before


def test_an_output_in_the_folder_read_is_refused(
    env: Env, spotify: ServerThread, cli: Cli, tmp_path: Path
) -> None:
    env(spotify)
    part = tmp_path / "dataset" / "year=2024" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"isrc": isrcs(3)}), part)
    before = part.read_bytes()
    for target in ("dataset/year=2024/part-0.parquet", "dataset/new.parquet"):
        ran = cli("dataset", "-o", target, "--no-cache")
        assert ran.code == 2, ran.err
        assert "is inside dataset (the input), a folder the run reads" in _error(ran.err)
    assert sent(spotify) == 0 and part.read_bytes() == before
    assert not (tmp_path / "dataset" / "new.parquet").exists()
    assert cli("dataset", "-o", "beside.parquet", "--no-cache").code == 0


def test_no_output_that_keeps_nothing_with_a_report(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    ran = cli("in.csv", "-o", os.devnull, "--report", "r.html", "--no-cache")
    assert ran.code == 2 and "--report reads the output back" in _error(ran.err)
    assert sent(spotify) == 0 and not (files / "r.html").exists()


def test_the_null_device_may_take_several_outputs(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    ran = cli("in.csv", "-o", os.devnull, "--summary-json", os.devnull, "--no-cache")
    assert ran.code == 0, ran.err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device file needs root")
def test_a_device_is_written_in_place_never_replaced(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    """As root, a device named by any option stays that device (a null device made here,
    so that a failure cannot replace the machine's own /dev/null)."""
    null = files / "null.csv"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    runs = [
        ("in.csv", "-o", "a.csv", "--summary-json", "null.csv", "--no-cache"),
        ("in.csv", "-o", "b.csv", "--report", "null.csv", "--no-cache"),
        ("in.csv", "-o", "c.csv", "--candidates", "null.csv", "--cache", "c.db"),
        ("cache", "export", "null.csv", "--cache", "c.db"),
        ("review", "a.csv", "-o", "null.csv", "--no-cache"),
        ("cache", "export", "x.parquet", "--cache", "c.db"),
    ]
    for args in runs:
        ran = cli(*args)
        assert ran.code == 0, (args, ran.err)
        assert stat.S_ISCHR(null.stat().st_mode), args
    ran = cli("cache", "backup", "null.csv", "--cache", "c.db")
    assert ran.code == 2 and "name a file" in ran.err and stat.S_ISCHR(null.stat().st_mode)


def test_cache_backup_never_writes_over_the_cache(
    files: Path, spotify: ServerThread, cli: Cli
) -> None:
    assert cli("in.csv", "-o", "o.csv", "--cache", "c.db").code == 0
    before = (files / "c.db").read_bytes()
    ran = cli("cache", "backup", "./c.db", "--cache", "c.db")
    assert ran.code == 2 and "(cache backup PATH)" in ran.err and "(--cache)" in ran.err
    assert (files / "c.db").read_bytes() == before


async def test_the_library_refuses_a_clash_too(spotify: ServerThread, tmp_path: Path) -> None:
    """``resolve_file`` with an overrides file, and a summary naming it: refused, unsent."""
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(3)])
    pins = tmp_path / "pins.csv"
    write_csv(pins, [{"isrc": isrcs(1)[0], "spotify_track_id": "none"}])
    before = pins.read_bytes()
    resolver: Resolver = resolver_for(spotify, cache=None, overrides=pins)
    async with resolver as r:
        with pytest.raises(InputError, match=r"\(summary_json=\).*\(overrides=\)"):
            await r.resolve_file(tmp_path / "in.csv", tmp_path / "o.csv", summary_json=pins)
        with pytest.raises(InputError, match=r"\(output=\).*\(input=\)"):
            await r.resolve_file(tmp_path / "in.csv", tmp_path / "in.csv")
    assert pins.read_bytes() == before and sent(spotify) == 0


def test_places_are_compared_by_identity(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "ln").symlink_to(tmp_path / "d")
    check_places([Place("r", tmp_path / "a", False), Place("w", tmp_path / "b", True)])
    check_places([Place("r1", tmp_path / "a", False), Place("r2", tmp_path / "a", False)])
    with pytest.raises(InputError):  # two new files, one through a linked folder
        check_places([Place("w1", tmp_path / "d/n", True), Place("w2", tmp_path / "ln/n", True)])
    with pytest.raises(InputError):  # a new file inside a folder read, through a link
        check_places([Place("r", tmp_path / "d", False, True), Place("w", tmp_path / "ln/x", True)])
