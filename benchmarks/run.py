"""Benchmarks: the resolver against the local Spotify, with a baseline where one applies.

    python benchmarks/run.py            # the full set (about an hour)
    python benchmarks/run.py --quick    # smaller inputs (about a minute)

Every figure is a ratio or a count, so it holds on a shared, noisy machine. The local server
runs in its own process; the resolver runs as the real CLI (CSV in and out) in another.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the tests' helpers are shared with the benchmarks

from isrc_resolver import is_valid_isrc, normalize_isrc  # noqa: E402
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET  # noqa: E402
from tests.helpers import expected, messy, random_isrc  # noqa: E402


@dataclass
class Row:
    scenario: str
    figure: str
    target: str
    ok: bool
    detail: str = ""


# -- the server, in its own process ------------------------------------------------------


@contextmanager
def server(*flags: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "isrc_resolver.fake", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the local server did not start: {base!r}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stats(base: str) -> dict[str, Any]:
    with urlopen(f"{base}/_stats") as resp:  # loopback only
        return dict(json.load(resp))


# -- inputs ------------------------------------------------------------------------------


def isrcs(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        out[random_isrc(rng)] = None
    return list(out)


def write_input(path: Path, values: list[str], *, extra: bool = True) -> Path:
    rng = random.Random(len(values))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "isrc", "title"] if extra else ["isrc"])
        for i, value in enumerate(values):
            title = rng.choice(["Plain", "With, comma", 'Say "hi"', "Two\nlines"])
            writer.writerow([f"{i:07d}", value, title] if extra else [value])
    return path


def messy_column(
    values: list[str], rows: int, *, dup: float, invalid: float, seed: int
) -> list[str]:
    """``rows`` values as people type them, with duplicates and invalid cells."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(rows):
        if rng.random() < invalid:
            out.append(rng.choice(["", "n/a", "USRC1760783", "NA"]))
        elif rng.random() < dup and out:
            out.append(rng.choice(out))
        else:
            out.append(messy(values[i % len(values)], rng))
    return out


# -- running -----------------------------------------------------------------------------


# The engine's scenarios compare against one request per ISRC (a bare loop, the ideal of a
# rate, the unique count): misses are not searched again elsewhere in them. What the
# fallbacks cost and find is the coverage scenario's figure.
ONE_MARKET = ("--fallback-markets", "none")


def run_cli(base: str, tmp: Path, name: str, *args: str) -> dict[str, Any]:
    report = tmp / f"{name}.json"
    env = cli_env(base)
    subprocess.run(
        [sys.executable, str(HERE / "_measure.py"), str(report), "--", *args, *ONE_MARKET, "-q"],
        env=env,
        cwd=tmp,
        check=False,
    )
    return dict(json.loads(report.read_text()))


def timed_process(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall time of a whole process, from exec to exit (start-up and imports included)."""
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cli_env(base: str) -> dict[str, str]:
    return {
        **os.environ,
        "SPOTIFY_CLIENT_ID": DEMO_CLIENT_ID,
        "SPOTIFY_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "SPOTIFY_API_URL": f"{base}/v1",
        "SPOTIFY_TOKEN_URL": f"{base}/api/token",
    }


def wrong_rows(out: Path, seed: int = 0) -> tuple[int, int]:
    """(rows, rows whose answer differs from the catalogue's) in an output file."""
    rows = wrong = 0
    with out.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows += 1
            isrc = row["isrc_normalized"]
            if not is_valid_isrc(isrc):
                wrong += row["status"] != "invalid"
                continue
            status, track_id, _ = expected(isrc, seed=seed)
            wrong += (row["status"], row["spotify_track_id"] or None) != (status, track_id)
    return rows, wrong


# -- scenarios ---------------------------------------------------------------------------


def overhead(tmp: Path, n: int, repeats: int) -> list[Row]:
    """The CLI against a bare aiohttp loop, both timed as whole processes (median of
    ``repeats`` alternating runs), against one server in its own process."""
    values = isrcs(n, seed=1)
    source = write_input(tmp / "overhead.csv", values)
    cli = [
        sys.executable, "-m", "isrc_resolver", str(source), "-o", "overhead.out.csv",
        "--no-cache", "--rate", "1000000", "--concurrency", "64", "-q", *ONE_MARKET,
    ]  # fmt: skip
    bare, ours = [], []
    with server() as base:
        env = cli_env(base)
        for _ in range(repeats):
            bare.append(timed_process(
                [sys.executable, str(HERE / "_bare.py"), base, str(source), "64"], env, tmp
            ))  # fmt: skip
            ours.append(timed_process(cli, env, tmp))
    ratio = statistics.median(bare) / statistics.median(ours)
    return [
        Row(
            "overhead",
            f"{ratio:.2f} x bare loop",
            ">= 0.80",
            ratio >= 0.8,
            f"whole process, median of {repeats}: {statistics.median(ours):.2f} s vs "
            f"{statistics.median(bare):.2f} s for {n:,} ISRCs",
        )
    ]


def startup(tmp: Path, repeats: int) -> list[Row]:
    """``isrc-resolve --help`` against ``python -c pass``: what start-up costs."""
    env = dict(os.environ)
    nothing = [timed_process([sys.executable, "-c", "pass"], env, tmp) for _ in range(repeats)]
    helps = [
        timed_process([sys.executable, "-m", "isrc_resolver", "--help"], env, tmp)
        for _ in range(repeats)
    ]
    extra = statistics.median(helps) - statistics.median(nothing)
    return [
        Row(
            "start-up: --help",
            f"+{extra:.3f} s over python -c pass",
            "<= +0.300 s",
            extra <= 0.3,
            f"median of {repeats}: {statistics.median(helps):.3f} s vs "
            f"{statistics.median(nothing):.3f} s",
        )
    ]


def rate_bound(tmp: Path, n: int) -> list[Row]:
    values = isrcs(n, seed=2)
    source = write_input(tmp / "rate.csv", values)
    with server("--window", "100/2", "--latency", "0.03", "--jitter", "0.01") as base:
        run = run_cli(
            base,
            tmp,
            "rate",
            str(source),
            "-o",
            "rate.out.csv",
            "--no-cache",
            "--rate",
            "200",
            "--concurrency",
            "16",
        )
        s = stats(base)
    ideal = n / 50
    ratio = run["elapsed"] / ideal
    searches = s["search_requests"]
    share = s["throttled"] / searches
    return [
        Row(
            "rate-bound: wall",
            f"{ratio:.3f} x ideal",
            "<= 1.03",
            ratio <= 1.03,
            f"{run['elapsed']:.1f} s vs {ideal:.0f} s for {n:,} ISRCs at 100 per 2 s",
        ),
        Row(
            "rate-bound: 429s",
            f"{share:.2%} of requests",
            "<= 1%",
            share <= 0.01,
            f"{s['throttled']} of {searches}; {s['requests_during_penalty']} sent during a penalty",
        ),
    ]


def latency_bound(tmp: Path, n: int) -> list[Row]:
    values = isrcs(n, seed=3)
    source = write_input(tmp / "latency.csv", values)
    with server("--latency", "0.08", "--jitter", "0.02") as base:
        run = run_cli(
            base,
            tmp,
            "latency",
            str(source),
            "-o",
            "latency.out.csv",
            "--no-cache",
            "--rate",
            "1000000",
            "--concurrency",
            "32",
        )
    ratio = (n / run["elapsed"]) / (32 / 0.08)
    return [
        Row(
            "latency-bound",
            f"{ratio:.3f} x 32/0.08s",
            ">= 0.90",
            ratio >= 0.9,
            f"{n / run['elapsed']:.0f} ISRCs/s, {n:,} ISRCs",
        )
    ]


def faults(tmp: Path, n: int) -> list[Row]:
    values = messy_column(isrcs(int(n * 0.8), seed=4), n, dup=0.1, invalid=0.03, seed=4)
    source = write_input(tmp / "faults.csv", values)
    unique = len({v for v in map(normalize_isrc, values) if is_valid_isrc(v)})
    with server(
        "--fault-5xx",
        "0.05",
        "--fault-drop",
        "0.01",
        "--token-lifetime",
        "5",
        "--window",
        "400/2",
        "--latency",
        "0.005",
    ) as base:
        run = run_cli(
            base,
            tmp,
            "faults",
            str(source),
            "-o",
            "faults.out.csv",
            "--no-cache",
            "--rate",
            "1000",
            "--concurrency",
            "16",
            "--max-retries",
            "8",
        )
        s = stats(base)
    rows, wrong = wrong_rows(tmp / "faults.out.csv")
    search = s["requests"]["search"]
    forced = sum(v for k, v in search.items() if k != "200")
    ratio = s["search_requests"] / (unique + forced)
    lost = n - rows
    return [
        Row(
            "faults: rows lost / wrong",
            f"{lost} / {wrong}",
            "0 / 0",
            lost == 0 and wrong == 0,
            f"exit {run['exit']}, {n:,} rows",
        ),
        Row(
            "faults: requests",
            f"{ratio:.3f} x (unique + forced)",
            "<= 1.10",
            ratio <= 1.1,
            f"{s['search_requests']} = {unique} unique + {forced} faulted answers",
        ),
    ]


def no_waste(tmp: Path, n: int) -> list[Row]:
    values = messy_column(isrcs(n, seed=5), n, dup=0.2, invalid=0.02, seed=5)
    source = write_input(tmp / "waste.csv", values)
    unique = len({v for v in map(normalize_isrc, values) if is_valid_isrc(v)})
    with server() as base:
        run_cli(
            base,
            tmp,
            "waste",
            str(source),
            "-o",
            "waste.out.csv",
            "--no-cache",
            "--rate",
            "1000000",
            "--concurrency",
            "32",
        )
        s = stats(base)
    return [
        Row(
            "no waste",
            f"{s['search_requests']} searches",
            f"= {unique} unique valid",
            s["search_requests"] == unique,
            f"{n:,} rows",
        )
    ]


def scale(tmp: Path, rows: int, unique: int) -> list[Row]:
    values = isrcs(unique, seed=6)
    rng = random.Random(6)
    column = [values[i] if i < unique else rng.choice(values) for i in range(rows)]
    source = write_input(tmp / "scale.csv", column)
    cache = tmp / "scale.sqlite3"
    with server() as base:
        cold = run_cli(
            base,
            tmp,
            "scale-cold",
            str(source),
            "-o",
            "scale.out.csv",
            "--cache",
            str(cache),
            "--rate",
            "1000000",
            "--concurrency",
            "64",
        )
        searches = stats(base)["search_requests"]
        warm = run_cli(
            base,
            tmp,
            "scale-warm",
            str(source),
            "-o",
            "scale.out.parquet",
            "--cache",
            str(cache),
            "--rate",
            "1000000",
            "--concurrency",
            "64",
        )
        warm_searches = stats(base)["search_requests"] - searches
    return [
        Row(
            "scale, cold: peak RSS",
            f"{cold['peak_rss_mb']:.0f} MB",
            "<= 400 MB",
            cold["peak_rss_mb"] <= 400,
            f"{rows:,} rows, {unique:,} unique, {cold['elapsed']:.1f} s, exit {cold['exit']}",
        ),
        Row(
            "scale, warm: wall",
            f"{warm['elapsed']:.1f} s",
            "<= 30 s",
            warm["elapsed"] <= 30,
            f"{warm_searches} searches (all cached), Parquet out",
        ),
        Row(
            "scale, warm: peak RSS",
            f"{warm['peak_rss_mb']:.0f} MB",
            "<= 400 MB",
            warm["peak_rss_mb"] <= 400,
            f"exit {warm['exit']}",
        ),
    ]


def nightly(tmp: Path, catalogue: int, quota: int) -> list[Row]:
    from scenario_nightly import rows  # in this folder; imports the library in this process

    return [Row(*row) for row in rows(tmp, catalogue, quota)]


def warm(tmp: Path, sizes: list[int], distinct: int) -> list[Row]:
    from scenario_warm import warm_join  # in this folder

    return [Row(*row) for rows in sizes for row in warm_join(tmp, rows, distinct)]


def many(tmp: Path, distinct: int) -> list[Row]:
    from scenario_warm import many_distinct  # in this folder

    return [Row(*row) for row in many_distinct(tmp, distinct)]


def coverage(count: int) -> list[Row]:
    from scenario_coverage import rows  # in this folder; the local server runs in this process

    return [Row(*row) for row in rows(count)]


def two(count: int, quota: int) -> list[Row]:
    from scenario_two import rows  # in this folder; the local server runs in this process

    return [Row(*row) for row in rows(count, quota)]


def five(count: int) -> list[Row]:
    from scenario_five import rows  # in this folder; the local server runs in this process

    return [Row(*row) for row in rows(count)]


def hosts(tmp: Path, count: int) -> list[Row]:
    from scenario_hosts import two_hosts  # in this folder; starts its own PostgreSQL

    return [Row(*row) for row in two_hosts(tmp, count, server, stats)]


def uncached(tmp: Path, distinct: int) -> list[Row]:
    from scenario_hosts import many_uncached  # in this folder; starts its own PostgreSQL

    return [Row(*row) for row in many_uncached(tmp, distinct)]


def workbook(tmp: Path, rows: int) -> list[Row]:
    from scenario_workbook import workbook_round_trip  # in this folder

    return [Row(*row) for row in workbook_round_trip(tmp, rows)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs, about a minute")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    q = args.quick
    scenarios: list[tuple[str, Callable[[Path], list[Row]]]] = [
        ("start-up", lambda t: startup(t, 5)),
        ("overhead", lambda t: overhead(t, 5_000 if q else 20_000, 3 if q else 5)),
        ("rate-bound", lambda t: rate_bound(t, 600 if q else 3_000)),
        ("latency-bound", lambda t: latency_bound(t, 1_000 if q else 3_000)),
        ("faults", lambda t: faults(t, 1_000 if q else 2_000)),
        ("no waste", lambda t: no_waste(t, 5_000 if q else 10_000)),
        ("scale", lambda t: scale(t, 100_000 if q else 1_000_000, 20_000 if q else 200_000)),
        ("nightly", lambda t: nightly(t, 2_000 if q else 10_000, 400 if q else 2_000)),
        ("coverage", lambda t: coverage(500 if q else 3_000)),
        ("two providers", lambda t: two(2_000 if q else 10_000, 400 if q else 2_000)),
        ("five stores", lambda t: five(2_000 if q else 10_000)),
        (
            "warm join",
            lambda t: warm(t, [100_000] if q else [1_000_000, 3_000_000], 20_000 if q else 200_000),
        ),
        ("many distinct", lambda t: many(t, 200_000 if q else 10_000_000)),
        ("workbook", lambda t: workbook(t, 20_000 if q else 200_000)),
        ("two hosts", lambda t: hosts(t, 2_000 if q else 20_000)),
        ("many distinct, not cached", lambda t: uncached(t, 300_000 if q else 10_000_000)),
    ]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="isrc-bench-") as tmp:
        for name, scenario in scenarios:
            if args.only and args.only not in name:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += scenario(Path(tmp))
    print(
        f"\nisrc-resolver benchmarks{' (--quick)' if q else ''} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    widths = [
        max(len(r.scenario) for r in rows),
        max(len(r.figure) for r in rows),
        max(len(r.target) for r in rows),
    ]
    names = ("scenario", "figure", "target")
    header = "  ".join(f"{n:<{w}}" for n, w in zip(names, widths, strict=True)) + "  result  detail"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.scenario:<{widths[0]}}  {r.figure:<{widths[1]}}  {r.target:<{widths[2]}}  "
            f"{'pass' if r.ok else 'FAIL':<6}  {r.detail}"
        )
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
