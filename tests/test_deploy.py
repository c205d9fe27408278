"""The deployment kit in deploy/ works as written: systemd accepts the units, the alert
script pages on what needs a person (exit 3 only when it repeats), and the cron line keeps
runs from overlapping."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from isrc_resolver import Cache

from .conftest import Cli
from .helpers import ServerThread, isrcs, write_csv

Env = Callable[[ServerThread], None]

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (Debian package: systemd)")
    cli = Path(sys.executable).with_name("isrc-resolve")
    assert cli.exists()
    units = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text()
        # The paths the units name, pointed at this machine's real files.
        text = text.replace("/opt/isrc-resolver/bin/isrc-resolve", str(cli))
        text = text.replace("/opt/isrc-resolver/share/alert.sh", str(DEPLOY / "alert.sh"))
        text = text.replace("/opt/isrc-resolver/share/gone.sh", str(DEPLOY / "gone.sh"))
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr
    service = (DEPLOY / "systemd" / "isrc-resolve.service").read_text()
    for needed in ("User=", "StateDirectory=", "--cache /var/lib/isrc-resolver/", "OnFailure="):
        assert needed in service


def _alert(tmp_path: Path, status: str) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    logged = tmp_path / "logged"
    fake = bin_dir / "logger"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {logged}\n')
    fake.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MONITOR_EXIT_STATUS": status,
        "ISRC_RESOLVER_STATE": str(tmp_path),
    }
    subprocess.run([str(DEPLOY / "alert.sh"), "isrc-resolve.service"], env=env, check=True)
    return logged.read_text().splitlines() if logged.exists() else []


def test_the_alert_pages_for_errors_and_for_quota_stops_only_when_they_repeat(
    tmp_path: Path,
) -> None:
    assert _alert(tmp_path, "3") == [] and _alert(tmp_path, "3") == []
    (page,) = _alert(tmp_path, "3")  # the third night in a row
    assert "ended with exit 3" in page and "journalctl -u isrc-resolve.service" in page
    assert len(_alert(tmp_path, "2")) == 2  # a configuration error pages at once


def test_tonights_takedowns_go_to_a_person(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    logged = tmp_path / "logged"
    fake = bin_dir / "logger"
    fake.write_text(f'#!/bin/sh\n{{ echo "$@"; cat; }} >> {logged}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    changes = tmp_path / "changes.csv"
    header = "isrc,provider,change,before_id,after_id,before_title,after_title,last_seen\n"
    changes.write_text(header)
    subprocess.run([str(DEPLOY / "gone.sh"), str(changes)], env=env, check=True)
    assert not logged.exists()  # nothing went dark: nothing sent
    changes.write_text(
        header
        + 'GBAYE0601498,spotify,gone,abc,,"Hey, Jude",,2026-12-05T02:17:00Z\n'
        + "GBAYE0601498,deezer,gone,123,,Hey Jude,,2026-12-05T02:17:00Z\n"
        + "USUM71703861,spotify,names_changed,x,x,A,A (Remastered 2026),2026-12-05T02:17:00Z\n"
    )
    subprocess.run([str(DEPLOY / "gone.sh"), str(changes)], env=env, check=True)
    sent = logged.read_text().splitlines()
    assert "2 recordings went dark tonight" in sent[0]
    assert sent[1:] == ["GBAYE0601498 (spotify)", "GBAYE0601498 (deezer)"]
    for unit in ((DEPLOY / "systemd" / "isrc-resolve.service"), (DEPLOY / "cron")):
        assert "--changes /srv/catalogue/changes.csv" in unit.read_text()
        assert "gone.sh /srv/catalogue/changes.csv" in unit.read_text()


def test_the_cron_line_never_overlaps_runs() -> None:
    (line,) = [ln for ln in (DEPLOY / "cron").read_text().splitlines() if ln and ln[0] != "#"]
    fields = line.split()
    assert len(fields[:5]) == 5 and fields[5:7] == ["flock", "-n"]
    assert "--cache" in fields and "--daily-quota" in fields


# -- what monitoring and backups need of the cache ------------------------------------------


def test_cache_info_as_json_for_monitoring(cli: Cli, env: Env, spotify: ServerThread) -> None:
    env(spotify)
    write_csv(Path("in.csv"), [{"isrc": i} for i in isrcs(12)])
    args = ["in.csv", "-o", "out.csv", "--cache", "c.db", "--fallback-markets", "none"]
    assert cli(*args, "--daily-quota", "100")[0] == 0
    code, out, _ = cli("cache", "info", "--cache", "c.db", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["entries"] == 12
    assert report["answers"] == {"found": {"1d": 12}}
    (account,) = report["accounts"]
    assert account["requests_24h"] == 12 and account["cooldown_until"] is None
    assert sum(account["per_day"].values()) == 12


def test_cache_backup_of_a_cache_another_process_is_writing(
    spotify_thread: Callable[..., ServerThread], tmp_path: Path, cli: Cli
) -> None:
    server = spotify_thread(latency=0.02)
    write_csv(tmp_path / "in.csv", [{"isrc": i} for i in isrcs(200)])
    env = {**os.environ, **server.env()}
    run = subprocess.Popen(
        [sys.executable, "-m", "isrc_resolver", "in.csv", "-o", "out.csv", "--rate", "1000",
         "--cache", "c.db", "--fallback-markets", "none", "--concurrency", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while server.stats()["search_requests"] < 40:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    code, out, err = cli(
        "cache", "backup", str(tmp_path / "copy.db"), "--cache", str(tmp_path / "c.db")
    )
    assert code == 0 and "backed up" in out, err
    assert run.wait(timeout=60) == 0
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600
    with Cache(tmp_path / "copy.db") as copy, Cache(tmp_path / "c.db") as live:
        taken = copy.info().entries
        # What was committed when it was taken: 40 searches sent, all but those in flight.
        assert 40 - 2 <= taken <= live.info().entries
        both = copy.lookup(isrcs(200), live_variant(live), max_age=1e9, not_found_max_age=1e9)
        again = live.lookup(list(both), live_variant(live), max_age=1e9, not_found_max_age=1e9)
    assert both == again  # every answer in the copy is the live cache's, as it was


def live_variant(cache: Cache) -> str:
    with sqlite3.connect(cache.location) as db:  # type: ignore[arg-type]
        return str(db.execute("SELECT variant FROM results LIMIT 1").fetchone()[0])
