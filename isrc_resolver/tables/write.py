"""Writing the output: every input row with the output columns, to a temporary file beside
the target, moved into place only when complete, so an existing output is replaced by a
whole one or not at all."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError
from ..models import Status
from ..schema import Row, output_columns
from .atomic import temporary_beside, umask
from .columns import Table, output_names
from .formats import written_format
from .lines import csv_lines, has_carriage_return, holds
from .rows import BuiltRows, fill_checks, series
from .stdout import Utf8Stdout, utf8_stdout
from .target import ARROW_TYPES, Target, failed
from .workbook_out import EXCEL_ROWS, WorkbookSink

__all__ = ["OutputSink", "check_output", "open_output", "rows_fit", "write_output"]


def check_output(target: str | os.PathLike[str], output_format: str | None = None) -> Target:
    """Check that ``target`` can be written in a known format; follow a symlink to the file
    it names (the link stays). Raises :class:`InputError` naming the fix."""
    display = str(target)
    if display == "-":
        fmt = written_format("-", output_format or "csv")
        if fmt in ("parquet", "xlsx"):
            said = "Parquet" if fmt == "parquet" else "An .xlsx workbook"
            raise InputError(f"{said} cannot be written to standard output; use -o FILE.{fmt}")
        return Target(display, fmt, None, True)
    fmt = written_format(display, output_format)
    real = os.path.realpath(display)
    if os.path.isdir(real):
        raise InputError(f"cannot write {display}: it is a folder; name a file in it")
    if os.path.exists(real) and not stat.S_ISREG(os.stat(real).st_mode):
        if not os.access(real, os.W_OK):
            raise InputError(f"cannot write {display}: permission denied")
        return Target(display, fmt, real, True)  # /dev/null, a FIFO: written as a stream
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise InputError(f"cannot write {display}: folder {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot write {display}: folder {directory} is not writable; choose another -o"
        )
    return Target(display, fmt, real, False)


class OutputSink:
    """Writes chunks with the output columns added, to a temporary file until complete."""

    def __init__(self, target: Target, source: Table, kinds: Sequence[str] = ()):
        self.target = target
        self.format = target.format
        self.source = source
        self.columns = output_columns(kinds)
        self.names = output_names(source.columns, [c.name for c in self.columns])
        self._tmp: str | None = None
        self._fh: IO[str] | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._header_written = False
        destination = target.path
        if target.path is not None and not target.direct:
            self._tmp = destination = temporary_beside(target.path)
        if self.format == "parquet":
            self.schema = self._parquet_schema()
            self._parquet = pq.ParquetWriter(destination, self.schema, compression="zstd")
        elif destination is None:
            self._fh = utf8_stdout()
        else:
            self._fh = open(destination, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()

    def _parquet_schema(self) -> pa.Schema:
        """The input's columns and ours, typed, with pandas metadata, so that pandas reads
        ``Int64`` and ``boolean`` back (polars and duckdb read the Arrow types)."""
        fields = list(self.source.schema)
        fields += [
            pa.field(n, ARROW_TYPES[c.kind]) for c, n in zip(self.columns, self.names, strict=True)
        ]
        empty = self.source.schema.empty_table().to_pandas()
        for column, name in zip(self.columns, self.names, strict=True):
            empty[name] = pd.Series([], dtype=column.kind.pandas_dtype)
        metadata = pa.Schema.from_pandas(empty, preserve_index=False).metadata
        return pa.schema(fields, metadata=metadata)

    def write(
        self, chunk: pd.DataFrame, rows: BuiltRows, min_score: float = 90.0
    ) -> Counter[Status]:
        """Append ``chunk`` with its results; returns the rows' statuses."""
        data, statuses = values_of(chunk, rows, self.source, min_score)
        # Only text output cares, and only the input's cells need a look: our own values
        # were checked once per ISRC as they were built (rows.carriage_return).
        quote_all = self._parquet is None and (rows.carriage_return or has_carriage_return(chunk))
        # The chunk was read for this write alone: adding columns to it in place is safe.
        for column, name, values in zip(self.columns, self.names, data, strict=True):
            chunk[name] = series(values, column, chunk.index)
        try:
            self._write_frame(chunk, quote_all=quote_all)
        except OSError as exc:
            raise failed(exc, self.target) from None
        return statuses

    @property
    def sep(self) -> str:
        """The delimiter of a text output."""
        return "\t" if self.format == "tsv" else ","

    @property
    def types(self) -> list[pa.DataType] | None:
        """Parquet's types of our columns (None: a text output, which writes text)."""
        return None if self._parquet is None else [ARROW_TYPES[c.kind] for c in self.columns]

    @property
    def writes_arrow(self) -> bool:
        """Parquet out: :meth:`write_arrow` writes the input's batches with our columns
        added by Arrow."""
        return self._parquet is not None

    def write_arrow(
        self, batch: pa.RecordBatch, rows: BuiltRows, min_score: float = 90.0
    ) -> Counter[Status]:
        """Append the rows of ``batch`` (the input's own columns, as read), with their
        results; returns their statuses. The values are :meth:`write`'s, in the same
        schema; Python sees each distinct ISRC of the chunk once (and each row's title
        and artist, for the match check)."""
        assert self._parquet is not None
        at, statuses, stale = rows.numbers(batch.column(self._at))
        ours = rows.parts_of(at)
        if self.source.hint_columns.usable:
            verdicts, scores = self._checks(batch, rows, at, min_score)
            ours[rows.checked_at] = pa.array(verdicts, pa.string())
            ours[rows.checked_at + 1] = pa.array(scores, pa.float64())
        names = [*self.source.columns, *self.names]
        table = pa.Table.from_arrays([*batch.columns, *ours], names=names).cast(self.schema)
        try:
            self._parquet.write_table(table)
        except OSError as exc:
            raise failed(exc, self.target) from None
        rows.stale += stale
        return statuses

    def _checks(
        self, batch: pa.RecordBatch, rows: BuiltRows, at: list[int], min_score: float
    ) -> tuple[list[str | None], list[float | None]]:
        """The match check of each row of ``batch`` (numbered ``at``): its title and
        artist against its track's."""
        h = self.source.hint_columns
        assert h.title is not None and h.artist is not None
        titles = batch.column(self.source.columns.index(h.title)).to_pylist()
        by = batch.column(self.source.columns.index(h.artist)).to_pylist()
        return rows.checks_of(at, titles, by, min_score)

    @property
    def _at(self) -> int:
        return self.source.columns.index(self.source.column)

    @property
    def writes_lines(self) -> bool:
        """Text out from text in: :meth:`write_lines` writes what pandas would, a line per
        row from text built once per ISRC."""
        return self._parquet is None and self.source.format in ("csv", "tsv")

    def write_lines(
        self, batch: pa.RecordBatch, rows: BuiltRows, min_score: float = 90.0
    ) -> Counter[Status]:
        """Append the rows of ``batch`` (the input's text columns), with their results;
        returns their statuses. The bytes are those :meth:`write` writes: each input cell
        quoted as the csv module quotes it, then our values as text built once per ISRC
        (:meth:`BuiltRows.parts_of`), with each row's match check between its pieces when
        the input has titles and artists. Python sees each distinct spelling of an ISRC
        once (and each row's title and artist); Arrow quotes and joins the rows. A chunk
        with a carriage return anywhere goes through :meth:`write` (quoted whole)."""
        sep = self.sep
        at, statuses, stale = rows.numbers(batch.column(self._at))
        if rows.carriage_return or any(holds(column, "\r") for column in batch.columns):
            frame = pd.DataFrame(
                {n: column.to_pylist() for n, column in enumerate(batch.columns)}, dtype=object
            )
            frame.columns = pd.Index(self.source.columns)
            return self.write(frame, rows, min_score)
        rows.stale += stale
        ours = rows.parts_of(at)
        if self.source.hint_columns.usable:
            verdicts, scores = self._checks(batch, rows, at, min_score)
            checked = [
                pa.array(["" if v is None else v for v in verdicts], pa.string()),
                pa.array(["" if v is None else repr(v) for v in scores], pa.string()),
            ]
            ours = [ours[0], *checked, ours[1]]
        text = csv_lines(batch.columns, ours, sep)
        if not self._header_written:
            head = io.StringIO()
            csv.writer(head, delimiter=sep, lineterminator="\n").writerow(
                [*self.source.columns, *self.names]
            )
            text = head.getvalue() + text
        try:
            self._put(text)
        except OSError as exc:
            raise failed(exc, self.target) from None
        self._header_written = True
        return statuses

    def _put(self, text: str) -> None:
        """Text to the output file (every CSV and TSV byte goes through here), a piece at
        a time: one write of megabytes into a pipe whose reader has gone can end part-way
        without an error, where the next piece's write is refused (EPIPE), as it must be."""
        assert self._fh is not None
        for start in range(0, len(text), _PIECE):
            self._fh.write(text[start : start + _PIECE])

    def _write_frame(self, frame: pd.DataFrame, *, quote_all: bool = False) -> None:
        if self._parquet is not None:
            table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
            self._parquet.write_table(table)
            return
        text = frame.to_csv(
            None,
            sep=self.sep,
            header=not self._header_written,
            index=False,
            lineterminator="\n",
            # The csv writer quotes a cell with a line feed but not one with a lone carriage
            # return, which readers take for a line break: such a chunk is quoted whole.
            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        )
        self._put(text)
        self._header_written = True

    def close(self, *, complete: bool) -> None:
        try:
            if complete and not self._header_written and self._parquet is None:
                empty = pd.DataFrame(columns=[*self.source.columns, *self.names])
                self._write_frame(empty)
            if self._parquet is not None:
                self._parquet.close()
            if self._fh is sys.stdout or isinstance(self._fh, Utf8Stdout):
                self._fh.flush()
            elif self._fh is not None:
                self._fh.close()
            if self._tmp is not None and complete:
                os.chmod(self._tmp, 0o644 & ~umask())
                os.replace(self._tmp, self.target.path or "")
                self._tmp = None
        except OSError:
            if complete:
                raise
            # Giving up already (an earlier error is on its way): closing a file on a full
            # disk fails again, and must not hide why.
        finally:
            if self._tmp is not None:  # incomplete, or the move failed: leave nothing behind
                with contextlib.suppress(OSError):
                    os.unlink(self._tmp)


_PIECE = 1 << 16  # characters written at a time


@contextlib.contextmanager
def open_output(
    target: str | os.PathLike[str],
    source: Table,
    *,
    output_format: str | None = None,
    kinds: Sequence[str] = (),
) -> Iterator[OutputSink | WorkbookSink]:
    """A sink for ``target`` (``-``: CSV on standard output). Moved into place on success."""
    checked = check_output(target, output_format)
    try:
        sink: OutputSink | WorkbookSink
        if checked.format == "xlsx":
            assert checked.path is not None
            sink = WorkbookSink(checked.path, checked.direct, source, kinds)
        else:
            sink = OutputSink(checked, source, kinds)
    except OSError as exc:
        raise failed(exc, checked) from None
    try:
        yield sink
    except BaseException:
        sink.close(complete=False)
        raise
    try:
        sink.close(complete=True)
    except OSError as exc:
        raise failed(exc, checked) from None


def rows_fit(
    target: str | os.PathLike[str], output_format: str | None, source: Table
) -> Callable[[int], None]:
    """A check that ``target`` can hold so many data rows of ``source``: a sheet holds
    1,048,576 rows, less its header and the preamble. Raises :class:`InputError`."""
    fmt = None if str(target) == "-" else written_format(target, output_format)
    most = EXCEL_ROWS - 1 - len(source.preamble)

    def check(rows: int) -> None:
        if fmt == "xlsx" and rows > most:
            raise InputError(
                f"{source.display} has {rows:,} rows, more than one sheet of an .xlsx holds "
                f"({most:,} under its header); write the output as .csv or .parquet"
            )

    return check


def values_of(
    chunk: pd.DataFrame, rows: BuiltRows, source: Table, min_score: float
) -> tuple[list[list[Any]], Counter[Status]]:
    """The chunk's values of each output column, with its rows' match checks; and the
    rows' statuses."""
    data, statuses = rows.columns(chunk[source.column].tolist())
    h = source.hint_columns
    if h.usable:
        assert h.title is not None and h.artist is not None
        fill_checks(data, chunk[h.title].tolist(), chunk[h.artist].tolist(), min_score)
    return data, statuses


def write_output(
    target: str | os.PathLike[str],
    source: Table,
    rows: dict[str, Row],
    kinds: Sequence[str] = (),
    output_format: str | None = None,
    written: Callable[[int], None] = lambda rows: None,
    escape_formulas: bool = True,
    min_score: float = 90.0,
    fill: Callable[[list[str]], dict[str, Row]] | None = None,
) -> tuple[Counter[Status], int]:
    """Every row of ``source`` with its results, to ``target``; returns the rows' statuses
    and how many rows got a stale answer.
    ``rows`` is used up on the way: each entry is replaced by its values for the format.
    ``written`` hears how many rows each chunk had (for a progress bar). ``fill`` reads
    the rows ``rows`` does not hold, a chunk's ISRCs at a time (a streaming run)."""
    statuses: Counter[Status] = Counter()
    with open_output(target, source, output_format=output_format, kinds=kinds) as sink:
        # Spreadsheets run a cell that starts with = + - @ as a formula: text from the
        # network is escaped in CSV and TSV (OWASP), never in Parquet or input columns.
        escape = escape_formulas and sink.format not in ("parquet", "xlsx")
        built = BuiltRows(
            rows, sink.columns, kinds, escape=escape, consume=True, sep=sink.sep, fill=fill,
            types=sink.types, checked=source.hint_columns.usable,
        )  # fmt: skip
        at = source.columns.index(source.column)
        if isinstance(sink, OutputSink) and (sink.writes_lines or sink.writes_arrow):
            if fill is None:
                built.number_all()
            for batch in source.batches():
                if fill is not None:  # a streaming run: read this chunk's cached answers
                    built.prepare(pc.unique(batch.column(at)).to_pylist())
                if sink.writes_lines:
                    statuses.update(sink.write_lines(batch, built, min_score))
                else:
                    statuses.update(sink.write_arrow(batch, built, min_score))
                written(batch.num_rows)
            return statuses, built.stale
        for chunk in source.chunks(text=sink.format not in ("parquet", "xlsx")):
            if fill is not None:
                built.prepare(chunk[source.column].tolist())
            if isinstance(sink, WorkbookSink):
                data, counted = values_of(chunk, built, source, min_score)
                sink.write(chunk, data)
                statuses.update(counted)
            else:
                statuses.update(sink.write(chunk, built, min_score))
            written(len(chunk))
    return statuses, built.stale
