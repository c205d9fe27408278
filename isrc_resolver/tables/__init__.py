"""Tables in and out: CSV, TSV and Parquet files streamed in chunks, and DataFrames.

The only folder that imports pandas and pyarrow. It knows nothing of Spotify, the cache or
the pipeline: it reads ISRCs and hints, and writes rows built from :mod:`..schema`.
"""

from .columns import HintColumns, find_hint_columns, find_isrc_column
from .escape import escape_formula
from .formats import FORMATS, detect_format, frame_format
from .frames import column_values, frame_durations, frame_hints, with_results
from .notes import column_notes
from .read import (
    REVIEW_MARK,
    InputSource,
    find_result_columns,
    open_input,
    read_output,
    read_overrides,
)
from .side import check_file, write_frames, write_text
from .target import Target
from .write import check_output, open_output, rows_fit, write_output

__all__ = [
    "FORMATS",
    "REVIEW_MARK",
    "HintColumns",
    "InputSource",
    "Target",
    "check_file",
    "check_output",
    "column_notes",
    "column_values",
    "detect_format",
    "escape_formula",
    "find_hint_columns",
    "find_isrc_column",
    "find_result_columns",
    "frame_durations",
    "frame_format",
    "frame_hints",
    "open_input",
    "open_output",
    "read_output",
    "read_overrides",
    "rows_fit",
    "with_results",
    "write_frames",
    "write_output",
    "write_text",
]
