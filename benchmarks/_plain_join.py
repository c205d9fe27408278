"""The baseline of the "warm join" scenario: what a person would write by hand to add the
cached answers to a CSV. pyarrow reads the CSV, the distinct ISRCs are looked up in the
cache's ``results`` table in batches (sqlite3), the answer columns are added with a take,
and pyarrow writes the CSV. No normalising, no checks, no escaping: a floor, not a rival.

    python benchmarks/_plain_join.py IN.csv CACHE.sqlite3 VARIANT OUT.csv
"""

import json
import sqlite3
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

source, cache, variant, target = sys.argv[1:5]
table = pa_csv.read_csv(
    source, convert_options=pa_csv.ConvertOptions(column_types={"isrc": pa.string()})
)
distinct = pc.unique(table["isrc"]).to_pylist()
db = sqlite3.connect(cache)
found: dict[str, tuple[object, ...]] = {}
for start in range(0, len(distinct), 900):
    batch = distinct[start : start + 900]
    marks = ",".join("?" * len(batch))
    rows = db.execute(
        f"SELECT isrc, status, track, match_count FROM results "
        f"WHERE variant = ? AND isrc IN ({marks})",
        (variant, *batch),
    )
    for isrc, status, track, count in rows:
        t = json.loads(track) if track else None
        found[isrc] = (
            status,
            t and t["name"],
            t and t["album"][1],
            t and (t["artists"][0][1] if t["artists"] else None),
            t and t["id"],
            t and t["url"],
            t and t["duration_ms"],
            count,
        )
names = ["status", "track", "album", "artist", "spotify_track_id", "spotify_url",
         "duration_ms", "match_count"]  # fmt: skip
keys = list(found)
positions = pc.index_in(table["isrc"], value_set=pa.array(keys, pa.string()))
for n, name in enumerate(names):
    values = pa.array([found[k][n] for k in keys])
    table = table.append_column(name, values.take(positions))
pa_csv.write_csv(table, target)
