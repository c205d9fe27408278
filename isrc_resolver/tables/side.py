"""Files written beside the output (the summary, the report, the candidates, the review
list, the changes, an export): whole or not at all, through a temporary file moved into
place; a device (``/dev/null``) written in place, never replaced."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..paths import is_special
from ..schema import Kind
from .atomic import temporary_beside, umask
from .escape import escape_formula
from .formats import frame_format
from .lines import has_carriage_return
from .target import ARROW_TYPES, Target, failed

__all__ = ["check_file", "write_frames", "write_text"]


def check_file(target: str | os.PathLike[str], flag: str) -> str:
    """A file another option writes (``flag`` names it in messages): its folder exists
    and is writable, and it is not a folder. Returns the real path."""
    display = str(target)
    real = os.path.realpath(display)
    if display == "-" or os.path.isdir(real):
        raise InputError(f"cannot write {display} ({flag}): name a file")
    if is_special(real):
        if not os.access(real, os.W_OK):
            raise InputError(f"cannot write {display} ({flag}): permission denied")
        return real  # a device or a FIFO: written in place
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {display} ({flag}): folder {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {display} ({flag}): folder {directory} is not writable")
    return real


@contextlib.contextmanager
def _atomic(target: str | os.PathLike[str], real: str, fmt: str) -> Iterator[str]:
    """A temporary file beside ``real`` to write; moved into place if all went well,
    removed otherwise. A device or a FIFO (``/dev/null``) is written in place, never
    replaced. The machine's refusals name ``target``."""
    checked = Target(str(target), fmt, real, is_special(real))
    tmp: str | None = None
    if checked.direct:
        try:
            yield real
        except OSError as exc:
            raise failed(exc, checked) from None
        return
    try:
        tmp = temporary_beside(real)
        yield tmp
        os.chmod(tmp, 0o644 & ~umask())
        os.replace(tmp, real)
        tmp = None
    except OSError as exc:
        raise failed(exc, checked) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_text(target: str | os.PathLike[str], text: str, flag: str) -> None:
    """``text`` into ``target`` whole or not at all (a temporary file moved into place)."""
    real = check_file(target, flag)
    with _atomic(target, real, "text") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)


def _frame(chunk: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, Kind]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            name: pd.array([r.get(name) for r in chunk], dtype=kind.pandas_dtype)  # type: ignore[call-overload]
            for name, kind in columns
        }
    )


def write_frames(
    target: str | os.PathLike[str],
    chunks: Iterable[Sequence[Mapping[str, Any]]],
    columns: Sequence[tuple[str, Kind]],
    flag: str,
    *,
    escape: Sequence[str] = (),
) -> int:
    """Chunks of records with ``columns`` (name, type) to ``target``, CSV/TSV or Parquet
    by its suffix, whole or not at all; the text columns named in ``escape`` (from the
    network) made inert for spreadsheets in CSV and TSV. Returns the rows written."""
    real = check_file(target, flag)
    fmt = frame_format(target, flag)
    empty = pd.DataFrame({n: pd.Series([], dtype=k.pandas_dtype) for n, k in columns})
    metadata = pa.Schema.from_pandas(empty, preserve_index=False).metadata  # pandas reads back
    fields = [pa.field(name, ARROW_TYPES[kind]) for name, kind in columns]
    schema = pa.schema(fields, metadata=metadata)
    sep = "\t" if fmt == "tsv" else ","
    rows = 0
    with _atomic(target, real, fmt) as tmp, contextlib.ExitStack() as stack:
        if fmt == "parquet":
            parquet = stack.enter_context(pq.ParquetWriter(tmp, schema, compression="zstd"))
            for chunk in chunks:
                parquet.write_table(
                    pa.Table.from_pandas(
                        _frame(chunk, columns), schema=schema, preserve_index=False
                    )
                )
                rows += len(chunk)
            return rows
        fh = stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
        for chunk in chunks:
            if not chunk:
                continue  # an empty chunk writes nothing (the header comes once, below)
            frame = _frame(chunk, columns)
            for name in escape:
                frame[name] = frame[name].map(escape_formula)
            frame.to_csv(
                fh,
                sep=sep,
                header=rows == 0,
                index=False,
                lineterminator="\n",
                quoting=csv.QUOTE_ALL if has_carriage_return(frame) else csv.QUOTE_MINIMAL,
            )
            rows += len(frame)
        if rows == 0:
            fh.write(sep.join(name for name, _ in columns) + "\n")
    return rows
