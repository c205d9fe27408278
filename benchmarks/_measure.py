"""Run the isrc-resolve CLI in this process and report its exit code, wall time and peak RSS.

Used by run.py: ``python benchmarks/_measure.py REPORT.json -- ARGS...``. Imports happen
before the clock starts, so the figure is the run itself, not interpreter start-up.
"""

import json
import resource
import sys
import time

# The package imports its heavy parts on first use (so that --help starts fast); load
# them here, so the timed part is the run, as it was before the imports became lazy.
import isrc_resolver.resolver
import isrc_resolver.tables  # noqa: F401
from isrc_resolver.cli import main

report, args = sys.argv[1], sys.argv[3:]
started = time.perf_counter()
code = main(args)
elapsed = time.perf_counter() - started
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
with open(report, "w") as fh:
    json.dump({"exit": code, "elapsed": elapsed, "peak_rss_mb": peak_kb / 1024}, fh)
