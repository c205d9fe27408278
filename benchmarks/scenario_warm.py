"""The warm-run scenarios of issue 22: a run whose every answer is cached, at the size of
royalty statements and of large catalogues.

* warm join: the CLI (CSV in and out, a whole process) against a hand-written pyarrow +
  sqlite3 join over the same cache (``_plain_join.py``, a whole process), for 1,000,000
  and 3,000,000 rows of 200,000 distinct ISRCs: the ratio of their wall times, and the
  CLI's peak RSS.
* many distinct: the CLI's peak RSS and wall time on 10,000,000 distinct ISRCs, all
  cached (the cache is filled through its own API, not the network).

Both fill the cache directly, so they need no server: a warm run sends nothing.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

HERE = Path(__file__).resolve().parent

from isrc_resolver.models import Album, Artist, MatchMethod, Result, Status, Track  # noqa: E402
from isrc_resolver.settings import Settings  # noqa: E402
from isrc_resolver.store.cache import Cache  # noqa: E402

API = "http://127.0.0.1:9/v1"  # nothing listens there: a request would fail the run
ENV = {
    "SPOTIFY_CLIENT_ID": "bench",
    "SPOTIFY_CLIENT_SECRET": "bench-secret",
    "SPOTIFY_API_URL": API,
    "SPOTIFY_TOKEN_URL": "http://127.0.0.1:9/api/token",
}
FLAGS = ["--fallback-markets", "none", "-q"]


def variant(cache: Path) -> str:
    settings = Settings.build(
        ENV["SPOTIFY_CLIENT_ID"], ENV["SPOTIFY_CLIENT_SECRET"], api_url=API,
        token_url=ENV["SPOTIFY_TOKEN_URL"], cache=cache, fallback_markets="none",
    )  # fmt: skip
    return settings.variant


def codes(count: int, seed: int) -> list[str]:
    """``count`` distinct valid ISRCs."""
    rng = random.Random(seed)
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    out: dict[str, None] = {}
    while len(out) < count:
        registrant = "".join(rng.choice(alnum) for _ in range(3))
        out[f"{rng.choice(('GB', 'US', 'SE', 'DE'))}{registrant}{rng.randrange(10**7):07d}"] = None
    return list(out)


def fill(cache: Path, isrcs: list[str]) -> None:
    """An answer for every ISRC, stored through the cache's own API, 50,000 at a time."""
    now, key = time.time(), variant(cache)
    with Cache(cache) as store:
        for start in range(0, len(isrcs), 50_000):
            batch = []
            for n, isrc in enumerate(isrcs[start : start + 50_000], start=start):
                tid = f"{n:022d}"
                track = Track(
                    id=tid, name=f"Song {n}", isrc=isrc,
                    url=f"https://open.spotify.com/track/{tid}", duration_ms=180_000 + n % 9_000,
                    explicit=n % 7 == 0, track_number=1, disc_number=1,
                    artists=(Artist(f"{n % 5000:022d}", f"Artist {n % 5000}"),),
                    album=Album(f"{n:021d}a", f"Album {n}", "album", "2020-01-01", "day", 12),
                )  # fmt: skip
                batch.append(
                    Result(isrc, Status.FOUND, track=track, match_count=1, resolved_at=now,
                           method=MatchMethod.ISRC, searched=("US",), conflict=False)
                )  # fmt: skip
            store.store(batch, key)


def statement(path: Path, isrcs: list[str], rows: int, seed: int) -> None:
    """A royalty statement: ``rows`` rows of the ISRCs (each at least once), with plays and
    a territory, written with pyarrow."""
    rng = random.Random(seed)
    column = isrcs + [rng.choice(isrcs) for _ in range(rows - len(isrcs))]
    rng.shuffle(column)
    table = pa.table(
        {
            "isrc": column,
            "plays": [rng.randrange(1, 10_000) for _ in range(rows)],
            "territory": [rng.choice(("GB", "US", "DE", "SE", "JP")) for _ in range(rows)],
        }
    )
    pa_csv.write_csv(table, path)


def measured(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of ``args`` as a whole process."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
        "print(time.perf_counter() - t, peak, code)"
    )
    env = {**ENV, "PATH": "/usr/bin:/bin", "HOME": str(cwd), "XDG_STATE_HOME": str(cwd)}
    out = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=cwd, env=env, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def cli(source: Path, target: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "isrc_resolver", str(source), "-o", str(target),
            "--cache", str(cache), *FLAGS]  # fmt: skip


def warm_join(tmp: Path, rows: int, distinct: int) -> list[tuple[str, str, str, bool, str]]:
    isrcs = codes(distinct, seed=22)
    cache = tmp / f"warm-{distinct}.sqlite3"
    if not cache.exists():
        fill(cache, isrcs)
    source = tmp / f"statement-{rows}.csv"
    statement(source, isrcs, rows, seed=rows)
    ours, rss, code = measured(cli(source, tmp / "ours.csv", cache), tmp)
    plain_args = [sys.executable, str(HERE / "_plain_join.py"), str(source), str(cache),
                  variant(cache), str(tmp / "plain.csv")]  # fmt: skip
    plain, plain_rss, _ = measured(plain_args, tmp)
    ratio = ours / plain
    label = f"warm join {rows // 1_000_000}M"
    return [
        (f"{label}: wall", f"{ratio:.1f} x plain join", "<= 3x", ratio <= 3,
         f"{ours:.1f} s vs {plain:.1f} s, {rows:,} rows, {distinct:,} distinct, exit {code}"),
        (f"{label}: peak RSS", f"{rss:.0f} MB", "<= 450 MB", rss <= 450,
         f"plain join {plain_rss:.0f} MB"),
    ]  # fmt: skip


def many_distinct(tmp: Path, distinct: int) -> list[tuple[str, str, str, bool, str]]:
    isrcs = codes(distinct, seed=23)
    cache = tmp / f"many-{distinct}.sqlite3"
    fill(cache, isrcs)
    source = tmp / f"catalogue-{distinct}.csv"
    statement(source, isrcs, distinct, seed=23)
    del isrcs
    wall, rss, code = measured(cli(source, tmp / "many.csv", cache), tmp)
    return [
        ("many distinct: peak RSS", f"{rss:.0f} MB", "<= 1024 MB", rss <= 1024,
         f"{distinct:,} distinct ISRCs, all cached; {wall:.0f} s wall, exit {code}"),
    ]  # fmt: skip
