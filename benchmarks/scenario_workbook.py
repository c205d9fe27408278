"""The workbook scenario of issue 32: a 200,000-row, 8-column catalogue workbook in and out
(every ISRC cached, so the run sends nothing), against a baseline that reads the same
workbook with pandas' calamine engine and writes the same frame with xlsxwriter in
constant-memory mode (a whole process; the frame it writes is the run's output, read
beforehand and not timed: the input's 8 columns and the 24 the run adds). Figures: the
ratio of the wall times, the same against writing the input's 8 columns alone (the cells
the run adds cost their time), and the CLI's peak RSS."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent

from scenario_warm import codes, fill, measured  # noqa: E402

# argv: the workbook to read, the file to write, and (optional) the workbook whose frame
# is written instead of the one read (read before the clock starts).
_BASELINE = """
import sys, time
import pandas as pd
import xlsxwriter
given = sys.argv[3] if len(sys.argv) > 3 else None
written = pd.read_excel(given, header=2, dtype=object, engine="calamine") if given else None
started = time.perf_counter()
frame = pd.read_excel(sys.argv[1], header=2, dtype=object, engine="calamine")
frame = frame if written is None else written
book = xlsxwriter.Workbook(sys.argv[2], {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
sheet = book.add_worksheet()
sheet.write_row(0, 0, list(frame.columns))
for n, row in enumerate(frame.itertuples(index=False, name=None), start=1):
    sheet.write_row(n, 0, [None if v != v else v for v in row])
book.close()
print(time.perf_counter() - started)
"""


def catalogue(path: Path, isrcs: list[str], seed: int) -> None:
    """A label's sheet: a title and a period line, then the header and ``len(isrcs)``
    rows of 8 columns (text, a 13-digit UPC number, a date, a code with leading zeros)."""
    rng = random.Random(seed)
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("Catalogue")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_string(0, 0, "Label catalogue")
    sheet.write_string(1, 0, "Period: 2026")
    header = ["Title", "Artist", "UPC", "ISRC", "Released", "Code", "Territory", "Plays"]
    sheet.write_row(2, 0, header)
    day = dt.datetime(2020, 1, 1)
    for n, isrc in enumerate(isrcs, start=3):
        sheet.write_string(n, 0, f"Song {n}")
        sheet.write_string(n, 1, f"Artist {n % 5000}")
        sheet.write_number(n, 2, 5_000_000_000_000 + n)
        sheet.write_string(n, 3, isrc)
        sheet.write_datetime(n, 4, day + dt.timedelta(days=n % 2000), date)
        sheet.write_string(n, 5, f"{n % 100_000:06d}")
        sheet.write_string(n, 6, rng.choice(("GB", "US", "DE", "SE", "JP")))
        sheet.write_number(n, 7, rng.randrange(1, 10_000))
    book.close()


def workbook_round_trip(tmp: Path, rows: int) -> list[tuple[str, str, str, bool, str]]:
    folder = tmp / f"workbook-{rows}"
    folder.mkdir(exist_ok=True)
    isrcs = codes(rows, seed=32)
    cache = folder / "cache.sqlite3"
    fill(cache, isrcs)
    catalogue(folder / "in.xlsx", isrcs, seed=32)
    args = ["in.xlsx", "-o", "out.xlsx", "--cache", str(cache), "--fallback-markets", "none"]
    ours, peak, code = measured([sys.executable, "-m", "isrc_resolver", *args, "-q"], folder)
    same = _baseline(folder, "in.xlsx", "base.xlsx", "out.xlsx")
    narrow = _baseline(folder, "in.xlsx", "narrow.xlsx")
    label = f"{rows:,} rows x 8 columns, xlsx in and out"
    detail = f"cli {ours:.1f} s (exit {code}); pandas calamine + xlsxwriter"
    return [
        (
            "workbook",
            f"{label}: {ours / same:.2f}x baseline (the output's frame)",
            "<= 2.5x",
            code == 0 and ours / same <= 2.5,
            f"{detail}, the output's 32 columns {same:.1f} s",
        ),
        (
            "workbook",
            f"{label}: {ours / narrow:.2f}x writing the input's 8 columns",
            "(informative)",
            code == 0,
            f"{detail}, the input's 8 columns {narrow:.1f} s",
        ),
        ("workbook", f"{label}: peak RSS {peak:.0f} MB", "<= 1,500 MB", peak <= 1500, ""),
    ]


def _baseline(folder: Path, source: str, target: str, frame: str | None = None) -> float:
    """The baseline's own timing (it leaves out reading ``frame``), in seconds."""
    done = subprocess.run(
        [sys.executable, "-c", _BASELINE, source, target, *([frame] if frame else [])],
        cwd=folder, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout.split()[-1])
