"""Which table format a path is: CSV, TSV or Parquet, by its suffix or as named."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..schema import FORMATS

__all__ = ["FORMATS", "detect_format"]

_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
}


def detect_format(path: str | os.PathLike[str], explicit: str | None = None) -> str:
    """``csv``, ``tsv`` or ``parquet``: ``explicit`` if given, else from the file suffix
    (none at all is CSV; one that names another format is refused)."""
    if explicit:
        if explicit not in FORMATS:
            raise InputError(f"unknown format {explicit!r}; use one of: {', '.join(FORMATS)}")
        return explicit
    suffix = Path(str(path)).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if not suffix or not suffix[1:].isalpha():
        return "csv"
    raise InputError(
        f"cannot write or read {path} as {suffix[1:]}: the formats are csv (.csv), tsv (.tsv) "
        "and parquet (.parquet); rename the file, or name its format with --format "
        "(--input-format for the input)"
    )
