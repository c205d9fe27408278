"""Tables in and out: CSV, TSV and Parquet, streamed in chunks. The only pandas import.

Input cells are read as text, exactly as written (no ``NA`` or ``null`` guessing, leading
zeros kept). Output is written to a temporary file beside the target and moved into place
only when complete, so an existing output is replaced by a whole one or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError
from .isrc import is_valid_isrc
from .models import Enrichment, Result, Status
from .plan import normalize_value
from .schema import FORMATS, Column, Kind, Resolved, output_columns, values_by_column

__all__ = [
    "InputSource",
    "OutputSink",
    "check_output",
    "column_values",
    "detect_format",
    "find_isrc_column",
    "open_input",
    "open_output",
    "output_names",
    "with_results",
    "write_output",
]

_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_ARROW_TYPES = {
    Kind.TEXT: pa.string(),
    Kind.INTEGER: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
}


def detect_format(path: str | os.PathLike[str], explicit: str | None = None) -> str:
    """``csv``, ``tsv`` or ``parquet``: ``explicit`` if given, else from the file suffix."""
    if explicit:
        if explicit not in FORMATS:
            raise InputError(f"unknown format {explicit!r}; use one of: {', '.join(FORMATS)}")
        return explicit
    suffix = Path(str(path)).suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    if suffix in {".tsv", ".tab"}:
        return "tsv"
    return "csv"


# -- columns ---------------------------------------------------------------------------


def find_isrc_column(columns: Sequence[str], wanted: str | None, display: str) -> str:
    """The ISRC column: ``wanted`` if given, else the one column named ``isrc`` in any
    case. The CLI and the library share this rule and its messages."""
    listing = ", ".join(columns) or "(none)"
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise InputError(f"column {wanted!r} not found in {display}; columns are: {listing}")
    named = [c for c in columns if c.strip().lower() == "isrc"]
    if len(named) == 1:
        return named[0]
    if named:
        raise InputError(
            f"{display} has several ISRC columns ({', '.join(named)}); choose one with "
            "--column (column= in the library)"
        )
    raise InputError(
        f"no column named 'isrc' in {display}; columns are: {listing}. "
        "Use --column NAME (column= in the library)"
    )


def output_names(input_columns: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Output column names: ``spotify_`` is put before a name until it is free, so no
    input column is ever overwritten."""
    taken = set(input_columns)
    names = []
    for column in columns:
        name = column
        while name in taken:
            name = f"spotify_{name}"
        taken.add(name)
        names.append(name)
    return names


def _series(values: list[Any], column: Column, index: pd.Index) -> pd.Series:
    return pd.Series(pd.array(values, dtype=column.kind.pandas_dtype), index=index)  # type: ignore[call-overload]


def _resolve_rows(values: Sequence[object], resolved: Mapping[str, Resolved]) -> list[Resolved]:
    """One :class:`Resolved` per input value (invalid values get theirs here)."""
    rows = []
    for value in values:
        isrc = normalize_value(value)
        row = resolved.get(isrc)
        if row is None:
            result = (
                Result.invalid(isrc)
                if not is_valid_isrc(isrc)
                else Result(isrc, Status.PENDING, error="not attempted")
            )
            row = Resolved(result)
        rows.append(row)
    return rows


# -- DataFrames (library) ----------------------------------------------------------------


def column_values(df: pd.DataFrame, column: str | None) -> list[object]:
    """The ISRC column of ``df`` (text as it is; anything else is not an ISRC)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"expected a pandas DataFrame, got {type(df).__module__}.{type(df).__name__}; "
            "for polars, pass df.to_pandas() and convert the result back with "
            "polars.from_pandas()"
        )
    name = find_isrc_column(list(map(str, df.columns)), column, "the DataFrame")
    return [None if _missing(v) else v for v in df[name].tolist()]


def with_results(
    df: pd.DataFrame,
    values: Sequence[object],
    resolved: Mapping[str, Resolved],
    kinds: Sequence[Enrichment] = (),
) -> pd.DataFrame:
    """A copy of ``df`` with the output columns added (one row per value of ``values``)."""
    columns = output_columns(kinds)
    names = output_names(list(map(str, df.columns)), [c.name for c in columns])
    data = values_by_column(_resolve_rows(values, resolved), columns)
    out = df.copy()
    for column, name in zip(columns, names, strict=True):
        out[name] = _series(data[column.name], column, df.index)
    return out


def _missing(value: object) -> bool:
    if value is None or isinstance(value, str):
        return value is None
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))  # type: ignore[call-overload]


# -- input -------------------------------------------------------------------------------


class InputSource:
    """One input table, readable in chunks as many times as needed."""

    def __init__(self, path: Path, display: str, fmt: str, column: str | None, chunk_rows: int):
        self.path = path
        self.display = display
        self.format = fmt
        self.chunk_rows = chunk_rows
        self.delimiter = ","
        if fmt == "parquet":
            try:
                self._parquet = pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{display} is not a readable Parquet file: {exc}") from None
            self.schema: pa.Schema = self._parquet.schema_arrow
            self.columns: list[str] = [str(name) for name in self.schema.names]
        else:
            self.delimiter = "\t" if fmt == "tsv" else _sniff_delimiter(path, display)
            self.columns = self._csv_header()
            self.schema = pa.schema([(name, pa.string()) for name in self.columns])
        self.column = self._find_column(column)

    def _csv_header(self) -> list[str]:
        with _text(self.path, self.display) as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(
                    f"{self.display} is empty; it needs a header row naming its columns"
                ) from None
            except (csv.Error, UnicodeDecodeError) as exc:
                raise InputError(f"{self.display}: cannot read the header row ({exc})") from None
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise InputError(
                f"{self.display} has duplicate column names: {', '.join(dupes)}; "
                "rename them so each column has its own name"
            )
        return header

    def _find_column(self, wanted: str | None) -> str:
        return find_isrc_column(self.columns, wanted, self.display)

    def isrc_chunks(self) -> Iterator[list[str]]:
        """The ISRC column, chunk by chunk, as strings."""
        if self.format == "parquet":
            for batch in self._parquet.iter_batches(self.chunk_rows, columns=[self.column]):
                yield ["" if v is None else str(v) for v in batch.column(0).to_pylist()]
            return
        for chunk in self._read_csv(usecols=[self.column]):
            yield chunk[self.column].tolist()

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Whole rows, chunk by chunk (text columns for CSV, typed for Parquet)."""
        if self.format == "parquet":
            for batch in self._parquet.iter_batches(self.chunk_rows):
                yield batch.to_pandas()
            return
        yield from self._read_csv()

    def _read_csv(self, usecols: list[str] | None = None) -> Iterator[pd.DataFrame]:
        try:
            reader = pd.read_csv(
                self.path,
                sep=self.delimiter,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding="utf-8-sig",
                chunksize=self.chunk_rows,
                usecols=usecols,
                quoting=csv.QUOTE_MINIMAL,
                engine="c",
            )
            with reader:
                yield from reader
        except UnicodeDecodeError as exc:
            raise InputError(_not_utf8(self.display, exc)) from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise InputError(f"{self.display} is not valid CSV: {exc}") from None


def _sniff_delimiter(path: Path, display: str) -> str:
    with _text(path, display) as fh:
        try:
            sample = fh.read(64 * 1024)
        except UnicodeDecodeError as exc:
            raise InputError(_not_utf8(display, exc)) from None
    first_line = sample.split("\n", 1)[0]
    try:
        return str(csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter)
    except csv.Error:
        return ","  # one column, or nothing to tell by: commas it is


@contextlib.contextmanager
def _text(path: Path, display: str) -> Iterator[IO[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            yield fh
    except FileNotFoundError:
        raise InputError(f"{display} not found; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{display} is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{display} cannot be read (permission denied)") from None


def _not_utf8(display: str, exc: UnicodeDecodeError) -> str:
    return (
        f"{display} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at "
        f"offset {exc.start}); save it as 'CSV UTF-8' or convert it, e.g. with "
        "iconv -f latin1 -t utf-8"
    )


@contextlib.contextmanager
def open_input(
    path: str | os.PathLike[str],
    *,
    column: str | None = None,
    input_format: str | None = None,
    chunk_rows: int = 20_000,
) -> Iterator[InputSource]:
    """Open ``path`` (or ``-`` for standard input, spooled to a temporary file)."""
    if str(path) == "-":
        with tempfile.NamedTemporaryFile(prefix="isrc-stdin-", suffix=".csv") as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.flush()
            yield InputSource(
                Path(spool.name),
                "standard input",
                detect_format("-", input_format),
                column,
                chunk_rows,
            )
        return
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} not found; check the path")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a file")
    yield InputSource(p, str(p), detect_format(p, input_format), column, chunk_rows)


# -- output ------------------------------------------------------------------------------


class OutputSink:
    """Writes chunks with the output columns added, to a temporary file until complete."""

    def __init__(
        self,
        target: str,
        source: InputSource,
        fmt: str,
        stream: IO[str] | None,
        kinds: Sequence[Enrichment] = (),
    ):
        self.target = target
        self.format = fmt
        self.source = source
        self.columns = output_columns(kinds)
        self.names = output_names(source.columns, [c.name for c in self.columns])
        self._stream = stream
        self._tmp: str | None = None
        self._fh: IO[str] | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._header_written = False
        if stream is None:
            directory = os.path.dirname(os.path.abspath(target))
            fd, self._tmp = tempfile.mkstemp(
                prefix=f".{os.path.basename(target)}.", suffix=".partial", dir=directory
            )
            os.close(fd)
        if fmt == "parquet":
            fields = list(source.schema)
            fields += [
                pa.field(n, _ARROW_TYPES[c.kind])
                for c, n in zip(self.columns, self.names, strict=True)
            ]
            self.schema = pa.schema(fields)
            self._parquet = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        else:
            self._fh = stream or open(  # noqa: SIM115 - closed in close()
                self._tmp or "", "w", encoding="utf-8", newline=""
            )

    def write(self, chunk: pd.DataFrame, resolved: Mapping[str, Resolved]) -> Counter[Status]:
        """Append ``chunk`` with its results; returns the rows' statuses."""
        rows = _resolve_rows(chunk[self.source.column].tolist(), resolved)
        data = values_by_column(rows, self.columns)
        # The chunk was read for this write alone: adding columns to it in place is safe.
        for column, name in zip(self.columns, self.names, strict=True):
            chunk[name] = _series(data[column.name], column, chunk.index)
        self._write_frame(chunk)
        return Counter(r.result.status for r in rows)

    def _write_frame(self, frame: pd.DataFrame) -> None:
        if self._parquet is not None:
            table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
            self._parquet.write_table(table)
            return
        assert self._fh is not None
        frame.to_csv(
            self._fh,
            sep="\t" if self.format == "tsv" else ",",
            header=not self._header_written,
            index=False,
            lineterminator="\n",
        )
        self._header_written = True

    def close(self, *, complete: bool) -> None:
        if complete and not self._header_written and self._parquet is None:
            empty = pd.DataFrame(columns=[*self.source.columns, *self.names])
            self._write_frame(empty)
        if self._parquet is not None:
            self._parquet.close()
        if self._fh is not None:
            if self._stream is None:
                self._fh.close()
            else:
                self._fh.flush()
        if self._tmp is None:
            return
        if complete:
            os.chmod(self._tmp, 0o644 & ~_umask())
            os.replace(self._tmp, self.target)
        else:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output(target: str | os.PathLike[str], output_format: str | None = None) -> str:
    """Check that ``target`` can be written in a known format, before anything is asked of
    Spotify; returns the format."""
    target = str(target)
    if target == "-":
        fmt = output_format or "csv"
        if fmt == "parquet":
            raise InputError("Parquet cannot be written to standard output; use -o FILE.parquet")
        return fmt
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {target}: folder {directory} does not exist")
    return detect_format(target, output_format)


@contextlib.contextmanager
def open_output(
    target: str | os.PathLike[str],
    source: InputSource,
    *,
    output_format: str | None = None,
    kinds: Sequence[Enrichment] = (),
) -> Iterator[OutputSink]:
    """A sink for ``target`` (``-``: CSV on standard output). Moved into place on success."""
    fmt = check_output(target, output_format)
    stream = sys.stdout if str(target) == "-" else None
    sink = OutputSink(str(target), source, fmt, stream, kinds)
    try:
        yield sink
    except BaseException:
        sink.close(complete=False)
        raise
    sink.close(complete=True)


def write_output(
    target: str | os.PathLike[str],
    source: InputSource,
    resolved: Mapping[str, Resolved],
    kinds: Sequence[Enrichment] = (),
    output_format: str | None = None,
) -> Counter[Status]:
    """Every row of ``source`` with its results, to ``target``; returns the statuses."""
    statuses: Counter[Status] = Counter()
    with open_output(target, source, output_format=output_format, kinds=kinds) as sink:
        for chunk in source.chunks():
            statuses.update(sink.write(chunk, resolved))
    return statuses
