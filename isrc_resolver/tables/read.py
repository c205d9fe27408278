"""Reading an input table in chunks, as many times as needed: CSV and TSV as text exactly
as written (no ``NA`` or ``null`` guessing, leading zeros kept), Parquet with its types."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..errors import EnvironmentFailure, InputError
from ..overrides import Override, parse_overrides
from ..provider import catalogues
from ..schema import OUTPUT_COLUMNS, SHARED_COLUMNS
from . import dataset
from .advice import not_utf8, not_utf8_file
from .formats import detect_format
from .source import InputSource, opened
from .workbook import Sheet

__all__ = [
    "REVIEW_MARK",
    "CsvSource",
    "InputSource",
    "ParquetSource",
    "TsvSource",
    "find_result_columns",
    "open_input",
    "read_output",
    "read_overrides",
]


class ParquetSource(InputSource):
    """A Parquet file, read in row batches with its own types."""

    format = "parquet"

    def _open(self) -> None:
        try:
            # A native file, as for CSV (see CsvSource._parse): nothing of Python's is
            # left for Arrow's threads to release at shutdown.
            self._native = self.native()
            self._parquet = pq.ParquetFile(self._native)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{self.display} is not a readable Parquet file: {exc}") from None
        self.schema = self._parquet.schema_arrow
        self.columns = [str(name) for name in self.schema.names]

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        yield from self._parquet.iter_batches(self.chunk_rows, columns=columns)

    def close(self) -> None:
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()
        super().close()


class ParquetDataset(InputSource):
    """A folder of Parquet files (see :mod:`.dataset`), read in row batches with their own
    types. Each file is opened for each pass; a change between passes shows in the
    fingerprint of every file and of the list of files."""

    format = "parquet"

    def _hold(self) -> IO[bytes]:
        return io.BytesIO()  # nothing to hold open

    def _fingerprint(self) -> object:
        return dataset.fingerprint(self.path, self.display)

    def _open(self) -> None:
        self._dataset = dataset.discover(self.path, self.display)
        self.schema = self._dataset.schema
        self.columns = [str(name) for name in self.schema.names]

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        yield from dataset.batches(self._dataset, columns, self.chunk_rows, self.display)


class CsvSource(InputSource):
    """A CSV file (the delimiter sniffed: comma, semicolon or tab), every cell as text."""

    format = "csv"

    def _open(self) -> None:
        self.delimiter = "\t" if self.format == "tsv" else _sniff_delimiter(self.path, self.display)
        self.columns = self._csv_header()
        self.schema = pa.schema([(name, pa.string()) for name in self.columns])

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

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        """Every data row, exactly as written, as text: no type guessing, no NA, no blank
        line skipped (in a table of several columns it is a row of empty cells). The same
        reader reads the file both times, so the rows written are the rows whose ISRCs were
        asked. A row with more or fewer cells than the header is refused.

        Arrow parses a block at a time and a row must fit in one: a row longer than the
        block (a cell of megabytes is valid CSV) makes the read start again with a block
        eight times larger, from the row it had reached."""
        block, done = _CSV_BLOCK, 0
        while True:
            try:
                for batch in self._parse(columns, block, skip=done):
                    done += batch.num_rows
                    yield batch
                return
            except _RowTooLong:
                block *= 8
                self._file.seek(0)

    def _parse(
        self, columns: list[str] | None, block: int, *, skip: int
    ) -> Iterator[pa.RecordBatch]:
        """The rows after the first ``skip``, parsed ``block`` bytes at a time.

        Arrow is given a native file and no Python callback: Arrow's own threads may drop
        the last reference to its reader, and if a Python object hung from it then, at
        interpreter shutdown, freeing it would need the GIL and abort the process
        ("terminate called without an active exception"; see apache/arrow#34314)."""
        parse = pa_csv.ParseOptions(
            delimiter=self.delimiter,
            newlines_in_values=True,
            ignore_empty_lines=False,
        )
        convert = pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in self.columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            include_columns=columns,
        )
        read = pa_csv.ReadOptions(block_size=block, use_threads=False)
        try:
            with (
                self.native() as file,
                pa_csv.open_csv(
                    file,
                    read_options=read,
                    parse_options=parse,
                    convert_options=convert,
                    # The system allocator gives memory back between blocks; Arrow's default
                    # pool keeps it, which over millions of rows shows as tens of MB more peak.
                    memory_pool=pa.system_memory_pool(),
                ) as reader,
            ):
                if reader.schema.names != (columns or self.columns):
                    raise InputError(f"{self.display}: the header row could not be read back")
                for batch in reader:
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    batch = _no_nulls(batch.slice(skip))
                    skip = 0
                    for start in range(0, batch.num_rows, self.chunk_rows):
                        yield batch.slice(start, self.chunk_rows)
        except pa.ArrowInvalid as exc:
            ragged = _RAGGED.search(str(exc))
            if "straddl" in str(exc) and not ragged:
                raise _RowTooLong() from None
            raise InputError(self._explain(exc, ragged)) from None

    def _explain(self, exc: pa.ArrowInvalid, ragged: re.Match[str] | None) -> str:
        if ragged:
            cells, text = ragged["got"], ragged["text"]
            line = self._first_ragged_line()
            where = f"ending on line {line}" if line else f"{text[:60]!r}"
            return (
                f"{self.display}: the row {where} has {cells} cells where the header has "
                f"{len(self.columns)}; every row needs one cell per column (quote cells that "
                "contain the delimiter), so fix that row and run again"
            )
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            return not_utf8_file(self.display, self.path)
        return f"{self.display} is not valid CSV ({exc})"

    def _first_ragged_line(self) -> int:
        """The line the first ragged row ends on (read again with Python's csv module,
        only when there is one: the fast reader does not count lines)."""
        width = len(self.columns)
        with (
            contextlib.suppress(csv.Error, UnicodeDecodeError),
            _text(self.path, self.display) as fh,
        ):
            reader = csv.reader(fh, delimiter=self.delimiter)
            next(reader, None)
            for record in reader:
                if record and len(record) != width:
                    return reader.line_num
        return 0


class WorkbookSource(InputSource):
    """One sheet of an .xlsx or .ods workbook (see :mod:`.workbook`), read whole."""

    format = "xlsx"

    def __init__(self, *args: Any, sheet: str | int | None = None, **kwargs: Any) -> None:
        self.sheet = sheet
        super().__init__(*args, **kwargs)

    def _open(self) -> None:
        self._file.seek(0)
        self._sheet = Sheet(self._file.read(), self.display, self.sheet, self._column_wanted)
        self.sheet_name, self.preamble = self._sheet.name, self._sheet.preamble
        self.columns = self._sheet.columns
        self.schema = pa.schema([(c, pa.string()) for c in self.columns])

    def typed(self, start: int, stop: int) -> list[list[Any]] | None:
        """The data rows ``start`` to ``stop``, each cell in its own type (text, a whole
        number as an integer, a float, a date, a boolean; None for an empty cell)."""
        return self._sheet.rows[start:stop]

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        yield from self._sheet.batches(columns or self.columns, self.chunk_rows)


class TsvSource(CsvSource):
    """A tab-separated file."""

    format = "tsv"


_SOURCES: dict[str, type[InputSource]] = {
    "csv": CsvSource,
    "tsv": TsvSource,
    "parquet": ParquetSource,
    "xlsx": WorkbookSource,
    "ods": WorkbookSource,
}


# Arrow's words for a row with more or fewer cells than the header.
_RAGGED = re.compile(r"Expected \d+ columns, got (?P<got>\d+): ?(?P<text>.*)", re.DOTALL)


class _RowTooLong(Exception):
    """A row did not fit in Arrow's parse block."""


_CSV_BLOCK = 256 * 1024  # bytes of CSV parsed at a time (then cut to chunk_rows)


def _no_nulls(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A blank line in a table of several columns comes back as nulls: empty cells."""
    if all(column.null_count == 0 for column in batch.columns):
        return batch
    filled = [pc.fill_null(column, "") for column in batch.columns]
    return pa.RecordBatch.from_arrays(filled, schema=batch.schema)


def _sniff_delimiter(path: Path, display: str) -> str:
    with _text(path, display) as fh:
        try:
            sample = fh.read(64 * 1024)
        except UnicodeDecodeError as exc:
            raise InputError(not_utf8(display, exc, path)) from None
    first_line = sample.split("\n", 1)[0]
    try:
        return str(csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter)
    except csv.Error:
        return ","  # one column, or nothing to tell by: commas it is


@contextlib.contextmanager
def _text(path: Path, display: str) -> Iterator[IO[str]]:
    with opened(path, display, "r", encoding="utf-8-sig", newline="") as fh:
        yield fh


@contextlib.contextmanager
def open_input(
    path: str | os.PathLike[str],
    *,
    column: str | Callable[[list[str]], str] | None = None,
    input_format: str | None = None,
    chunk_rows: int = 20_000,
    title_column: str | None = None,
    artist_column: str | None = None,
    sheet: str | int | None = None,
) -> Iterator[InputSource]:
    """Open ``path`` (or ``-`` for standard input, spooled to a temporary file).
    ``column``: the ISRC column's name, or a function that picks it from the columns.
    ``sheet``: a workbook's sheet, by name or 0-based index (default: the first sheet
    with an ISRC column)."""
    hints = {"title_column": title_column, "artist_column": artist_column}
    if str(path) == "-":
        with tempfile.NamedTemporaryFile(prefix="isrc-stdin-", suffix=".csv") as spool:
            try:
                shutil.copyfileobj(sys.stdin.buffer, spool)
                spool.flush()
            except OSError as exc:
                doing = "cannot keep standard input in the temporary file"
                raise EnvironmentFailure.from_os(exc, doing, spool.name) from None
            kind = _SOURCES[detect_format("-", input_format)]
            spooled = Path(spool.name)
            source = (
                WorkbookSource(spooled, "standard input", column, chunk_rows, sheet=sheet, **hints)
                if kind is WorkbookSource
                else kind(spooled, "standard input", column, chunk_rows, **hints)
            )
            with contextlib.closing(source):
                yield source
        return
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} not found; check the path")
    if p.is_dir():
        if input_format not in (None, "parquet"):
            raise InputError(f"{p} is a folder: only a folder of Parquet files can be read")
        with contextlib.closing(ParquetDataset(p, str(p), column, chunk_rows, **hints)) as data:
            yield data
        return
    fmt = detect_format(p, input_format)
    if input_format is None and fmt in ("csv", "tsv"):
        fmt = _by_content(p) or fmt  # a Parquet file or a workbook named .csv
    kind = _SOURCES[fmt]
    if kind is WorkbookSource:
        book = WorkbookSource(p, str(p), column, chunk_rows, sheet=sheet, **hints)
        book.format = fmt
        with contextlib.closing(book):
            yield book
        return
    if sheet is not None:
        raise InputError(f"--sheet is for a workbook (.xlsx, .ods); {p} is {fmt}")
    with contextlib.closing(kind(p, str(p), column, chunk_rows, **hints)) as source:
        yield source


def _by_content(path: Path) -> str | None:
    """The format a file's first bytes name, when they name one that is not text."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return None  # opening it again says why, naming it
    return {b"PAR1": "parquet", b"PK\x03\x04": "xlsx"}.get(head)


REVIEW_MARK = "review_reason"  # a column only review files have: their empty ids are undecided
_ID_COLUMN = "spotify_track_id"


def read_overrides(path: str | os.PathLike[str]) -> dict[str, Override]:
    """The overrides in a CSV, TSV or Parquet file (columns ``isrc``, ``spotify_track_id``,
    optionally ``note``), checked whole; rows are counted as a spreadsheet shows them (the
    header is row 1). A review file (it has a ``review_reason`` column) may leave ids
    empty: those rows are skipped, not taken for "not on Spotify"."""
    with open_input(path, chunk_rows=50_000) as source:
        columns = source.columns
        wanted = _named(columns, _ID_COLUMN)
        if wanted is None:
            raise InputError(
                f"the overrides file {source.display} has no {_ID_COLUMN} column; its "
                f"columns are: {', '.join(columns) or '(none)'}. It needs isrc and "
                f"{_ID_COLUMN} (and may have note)"
            )
        note = _named(columns, "note")
        review = _named(columns, REVIEW_MARK) is not None
        rows: list[tuple[int, object, object, object]] = []
        for chunk in source.chunks(text=True):  # row 1 is the header
            notes = _cells(chunk[note]) if note else [None] * len(chunk)
            lines = range(len(rows) + 2, len(rows) + 2 + len(chunk))
            isrcs, ids = _cells(chunk[source.column]), _cells(chunk[wanted])
            rows += zip(lines, isrcs, ids, notes, strict=True)
        return parse_overrides(rows, source.display, empty_means_none=not review)


def _cells(column: pd.Series) -> list[object]:
    """A column's cells, an empty one (a Parquet null, NaN) as empty text."""
    return ["" if _missing(v) else v for v in column.tolist()]


def _named(columns: Sequence[str], name: str) -> str | None:
    matches = [c for c in columns if c.strip().lower() == name]
    return matches[0] if matches else None


def find_result_columns(columns: Sequence[str]) -> dict[str, str] | None:
    """Where a run's output keeps its own columns: our name -> its name in the file (one
    made unique with ``spotify_`` prefixes); None when these are not a run's output."""
    width = len(OUTPUT_COLUMNS)
    for start in range(len(columns) - width, -1, -1):
        names = columns[start : start + width]
        if all(_bare(n) == ours for n, ours in zip(names, OUTPUT_COLUMNS, strict=True)):
            found = dict(zip(OUTPUT_COLUMNS, names, strict=True))
            # The other stores' columns come right after, when the run asked any.
            found.update(_store_columns(columns[start + width :]))
            return found
    return None


def _store_columns(after: Sequence[str]) -> dict[str, str]:
    """The stores' columns (three each), then the columns they share, at the start of
    ``after``: our name -> its name in the file; none when they are not there."""
    shared = [c.name for c in SHARED_COLUMNS]
    at, stores = 0, list[str]()
    while at + 3 <= len(after) and (name := _bare(after[at])).endswith("_id"):
        store = name.split("_", 1)[0]
        if store not in catalogues() or [_bare(n) for n in after[at : at + 3]] != list(
            catalogues()[store].columns
        ):
            break
        stores.extend(after[at : at + 3])
        at += 3
    if not stores or [_bare(n) for n in after[at : at + len(shared)]] != shared:
        return {}
    names = [*stores, *after[at : at + len(shared)]]
    return {_bare(n): n for n in names}


def _bare(name: str) -> str:
    while name.startswith("spotify_") and name != "spotify_track_id" and name != "spotify_url":
        name = name.removeprefix("spotify_")
    return name


@contextlib.contextmanager
def read_output(
    path: str | os.PathLike[str], chunk_rows: int = 50_000
) -> Iterator[tuple[InputSource, dict[str, str], Iterator[dict[str, list[Any]]]]]:
    """A run's output file (CSV, TSV or Parquet), its result columns, and its columns as
    lists of text, chunk by chunk (empty cells are None). An InputError when the file is
    not a run's output."""
    display = str(path)

    def ours(columns: Sequence[str]) -> dict[str, str]:
        found = find_result_columns(columns)
        if found is None:
            raise InputError(
                f"{display} is not an isrc-resolve output (its columns do not end with "
                f"{', '.join(OUTPUT_COLUMNS[:3])}, ...); give the file a run wrote with -o"
            )
        return found

    def pick(columns: list[str]) -> str:
        return ours(columns)["isrc_normalized"]

    with open_input(path, column=pick, chunk_rows=chunk_rows) as source:
        yield source, ours(source.columns), (_columns(c) for c in source.chunks(text=True))


def _columns(chunk: pd.DataFrame) -> dict[str, list[Any]]:
    """Each column's values, a missing one (None, NaN, pd.NA, empty text) as None."""
    return {
        str(name): [None if _missing(v) else v for v in chunk[name].tolist()]
        for name in chunk.columns
    }


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value == "" or value != value
