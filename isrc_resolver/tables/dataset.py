"""A folder of Parquet files as one input: a dataset, possibly hive-partitioned
(``year=2024/month=01/part-0.parquet``), its partition keys read as columns. Files whose
name starts with ``.`` or ``_`` (``_SUCCESS``, temporary files) are not part of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from ..errors import InputError

__all__ = ["batches", "discover", "fingerprint"]


def discover(path: Path, display: str) -> ds.Dataset:
    """The dataset under ``path``; an :class:`InputError` when it has no Parquet file."""
    try:
        found = ds.dataset(path, format="parquet", partitioning="hive")
    except (pa.ArrowException, OSError) as exc:
        message = f"{display} is not a readable folder of Parquet files: {exc}"
        raise InputError(message) from None
    if not found.files:
        raise InputError(
            f"{display} is a folder with no Parquet file in it; name a file, or a folder of "
            ".parquet files"
        )
    # Arrow takes the columns of the first file it finds; parts written on other days may
    # have more. Every part's columns count (one missing from a part is empty there).
    try:
        parts = [fragment.physical_schema for fragment in found.get_fragments()]
        schema = pa.unify_schemas([found.schema, *parts])
    except (pa.ArrowException, OSError) as exc:
        message = f"{display}: its Parquet files' columns do not fit together ({exc})"
        raise InputError(message) from None
    if schema.equals(found.schema):
        return found
    return ds.dataset(path, schema=schema, format="parquet", partitioning="hive")


def fingerprint(path: Path, display: str) -> object:
    """Every file's path, size and modification time: what a write to the folder changes."""
    try:
        stats = [(f, os.stat(f)) for f in sorted(discover(path, display).files)]
        return [(f, st.st_size, st.st_mtime_ns) for f, st in stats]
    except (FileNotFoundError, InputError):
        return None  # a file went away while we looked: changed


def batches(
    data: ds.Dataset, columns: list[str] | None, rows: int, display: str
) -> Iterator[pa.RecordBatch]:
    """The rows of every file in the order of their paths (the same in every pass)."""
    fragments = sorted(data.get_fragments(), key=lambda f: str(f.path))
    try:
        for fragment in fragments:
            yield from fragment.to_batches(schema=data.schema, columns=columns, batch_size=rows)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{display}: a Parquet file could not be read: {exc}") from None
