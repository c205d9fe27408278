"""Which table format a path is: CSV, TSV, Parquet or a workbook (.xlsx, .ods), by its
suffix or as named."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..schema import FORMATS, FRAMES, WRITTEN

__all__ = ["FORMATS", "detect_format", "frame_format", "written_format"]

_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".ods": "ods",
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
    if suffix == ".xls":
        raise InputError(
            f"{path} is an old Excel 97-2003 file (.xls): save it as .xlsx (or CSV UTF-8)"
        )
    raise InputError(
        f"cannot write or read {path} as {suffix[1:]}: the formats are csv (.csv), tsv (.tsv), "
        "parquet (.parquet), xlsx (.xlsx) and, to read, ods (.ods); rename the file, or name "
        "its format with --format (--input-format for the input)"
    )


def written_format(path: str | os.PathLike[str], explicit: str | None = None) -> str:
    """:func:`detect_format` for an output: an .ods is read, never written."""
    fmt = detect_format(path, explicit)
    if fmt not in WRITTEN:
        raise InputError(f"{path}: {fmt} is read, not written; write .xlsx, .csv or .parquet")
    return fmt


def frame_format(path: str | os.PathLike[str], flag: str) -> str:
    """:func:`detect_format` for a side table (``flag``: the option naming it): CSV, TSV or
    Parquet, which other tools read (a workbook is for the main output)."""
    fmt = detect_format(path)
    if fmt not in FRAMES:
        raise InputError(f"{path} ({flag}): write it as .csv, .tsv or .parquet, not {fmt}")
    return fmt
