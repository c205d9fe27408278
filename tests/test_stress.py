"""The command never dies by a signal of its own: many small runs, side by side.

Arrow's CSV reader once held a Python file and a Python callback; when one of Arrow's
threads dropped the last reference during interpreter shutdown, freeing them aborted the
process (exit -6, "terminate called without an active exception") in about one small
run in fifty. Each run here is a whole process, as a scheduler starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .helpers import ServerThread, isrcs, write_csv

RUNS = 200
AT_ONCE = 4


def test_two_hundred_small_runs_four_at_a_time_all_exit_by_themselves(
    spotify: ServerThread, tmp_path: Path
) -> None:
    rows = [{"isrc": i, "title": f"t{n}", "artist": "a"} for n, i in enumerate(isrcs(10))]
    write_csv(tmp_path / "in.csv", rows)
    write_csv(tmp_path / "in.tsv", rows, delimiter="\t")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    env = {**os.environ, **spotify.env()}
    kinds = [
        ("in.csv", "csv", ["--no-cache", "-q"]),
        ("in.tsv", "tsv", ["--no-cache"]),
        ("in.parquet", "csv", ["--no-cache", "-q"]),
        ("in.csv", "parquet", ["--cache", "c{n}.db", "-q"]),
    ]

    def one(n: int) -> tuple[int, str]:
        source, suffix, extra = kinds[n % len(kinds)]
        args = [a.format(n=n % 8) for a in extra]
        cmd = [sys.executable, "-m", "isrc_resolver", source, "-o", f"out{n}.{suffix}", *args]
        done = subprocess.run(
            [*cmd, "--rate", "1000"], cwd=tmp_path, env=env, capture_output=True, timeout=120
        )
        return done.returncode, done.stderr.decode(errors="replace")[-2000:]

    with ThreadPoolExecutor(AT_ONCE) as pool:
        ended = list(pool.map(one, range(RUNS)))
    by_signal = [(n, code, err) for n, (code, err) in enumerate(ended) if code < 0]
    assert by_signal == [], by_signal[:3]
    assert [code for code, _ in ended] == [0] * RUNS, [e for e in ended if e[0]][:3]
