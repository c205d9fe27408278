"""The PostgreSQL cache's scenarios (issue 33), against a real PostgreSQL that this script
starts from the machine's server binaries (tests/pgserver.py) and the local Spotify in a
process of its own.

* two hosts: 8 processes in two groups, each group with home folders of its own (two
  hosts), all on one PostgreSQL, each given the same ISRCs in its own order. Requests sent
  must equal the distinct ISRCs (none asked twice); the wall time is set against one
  process on a SQLite file resolving the same ISRCs.
* many distinct, not cached: ISRCs none of which is cached, ``--max-requests 0`` (the
  first night of a big catalogue under a spent allowance: every row ``deferred``): the
  CLI's peak RSS, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

HERE = Path(__file__).resolve().parent

from scenario_warm import codes, measured  # noqa: E402  (in this folder)

from tests.pgserver import running  # noqa: E402

Report = list[tuple[str, str, str, bool, str]]


def _csv(path: Path, isrcs: list[str]) -> Path:
    pa_csv.write_csv(pa.table({"isrc": isrcs}), path)
    return path


def _host(root: Path, name: str) -> dict[str, str]:
    home = root / name
    for sub in ("home", "cache", "state"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home / "home"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
    }


def _cli(base: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "ISRC_"))}
    return {
        **env,
        "SPOTIFY_CLIENT_ID": "demo-client-id",
        "SPOTIFY_CLIENT_SECRET": "demo-client-secret",
        "SPOTIFY_API_URL": f"{base}/v1",
        "SPOTIFY_TOKEN_URL": f"{base}/api/token",
        **extra,
    }


FLAGS = ["--fallback-markets", "none", "--rate", "1000", "--concurrency", "16", "-q"]


def two_hosts(
    tmp: Path, count: int, server: Callable[..., Any], stats: Callable[[str], dict[str, Any]]
) -> Report:
    isrcs = codes(count, seed=33)
    folder = tmp / "two-hosts"
    folder.mkdir(exist_ok=True)
    with server("--latency", "0.03", "--jitter", "0.01") as base, running() as pg:
        # The baseline: one process, a SQLite file.
        source = _csv(folder / "all.csv", isrcs)
        env = _cli(base, _host(folder, "alone"))
        started = time.perf_counter()
        args = [str(source), "-o", str(folder / "alone.csv"), "--cache", str(folder / "c.db")]
        subprocess.run([sys.executable, "-m", "isrc_resolver", *args, *FLAGS], env=env, check=True)
        alone = time.perf_counter() - started
        before = stats(base)["search_requests"]
        # Eight processes, two "hosts" of four, one database.
        url = pg.new_database()
        procs = []
        started = time.perf_counter()
        for n in range(8):
            mine = isrcs[:]
            random.Random(n).shuffle(mine)
            source = _csv(folder / f"in{n}.csv", mine)
            env = _cli(base, {**_host(folder, f"host{n % 2}"), "ISRC_RESOLVER_CACHE": url})
            args = [str(source), "-o", str(folder / f"out{n}.csv"), *FLAGS]
            procs.append(subprocess.Popen([sys.executable, "-m", "isrc_resolver", *args], env=env))
        codes_ = [p.wait() for p in procs]
        shared = time.perf_counter() - started
        sent = stats(base)["search_requests"] - before
    ratio = shared / alone
    return [
        ("two hosts: requests", f"{sent:,}", f"= {count:,} distinct", sent == count,
         f"8 processes in 2 home folders on one PostgreSQL, exits {sorted(set(codes_))}"),
        ("two hosts: wall", f"{ratio:.2f} x one process on SQLite", "report", True,
         f"{shared:.1f} s vs {alone:.1f} s; each process given all {count:,} ISRCs"),
    ]  # fmt: skip


def many_uncached(tmp: Path, distinct: int) -> Report:
    folder = tmp / "uncached"
    folder.mkdir(exist_ok=True)
    source = _csv(folder / "catalogue.csv", codes(distinct, seed=34))
    out: Report = []
    with running() as pg:
        for name, cache in (
            ("SQLite", str(folder / "empty.db")),
            ("PostgreSQL", pg.new_database()),
        ):
            args = [sys.executable, "-m", "isrc_resolver", str(source), "-o",
                    str(folder / "out.csv"), "--cache", cache, "--max-requests", "0",
                    "--fallback-markets", "none", "-q"]  # fmt: skip
            wall, rss, code = measured(args, folder)
            out.append(
                (f"many distinct, not cached ({name}): peak RSS", f"{rss:.0f} MB", "<= 1024 MB",
                 rss <= 1024 and code == 3,
                 f"{distinct:,} distinct ISRCs, none cached, --max-requests 0; {wall:.0f} s "
                 f"wall, exit {code}")
            )  # fmt: skip
    return out
