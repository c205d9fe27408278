"""The input table's base: one table, readable in chunks as many times as needed, and
held so that every pass reads the same rows (:mod:`.read` has the formats)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..isrc import ISRC_PATTERN
from ..matching import Hint
from .columns import find_hint_columns, find_isrc_column, first_durations, hints_of
from .text import as_text

__all__ = ["InputSource", "fingerprint", "open_binary", "opened"]


class InputSource:
    """One input table, readable in chunks as many times as needed. The format's own
    reading is :meth:`_batches` (:class:`CsvSource`, :class:`ParquetSource`)."""

    format = ""
    schema: pa.Schema
    columns: list[str]
    preamble: list[list[Any]] = []  # noqa: RUF012 - a workbook's own list replaces it
    sheet_name: str | None = None

    def __init__(
        self,
        path: Path,
        display: str,
        column: str | Callable[[list[str]], str] | None,
        chunk_rows: int,
        title_column: str | None = None,
        artist_column: str | None = None,
    ):
        self.path = path
        self.display = display
        self.chunk_rows = chunk_rows
        self._column_wanted = column if isinstance(column, str) else None
        # The file is held open from here to the end: each pass reads the same file, even
        # when a new one is moved into its place meanwhile (a late nightly export).
        self._file = self._hold()
        self._seen = self._fingerprint()
        try:
            self._open()
            self.column = (
                column(self.columns)
                if callable(column)
                else find_isrc_column(self.columns, column, display)
            )
            self.hint_columns = find_hint_columns(
                self.columns, display, title_column, artist_column
            )
            self._as_text = self._binary_isrc()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._file.close()

    def _hold(self) -> IO[bytes]:
        """What stays open from the start to the end of the run (the file itself)."""
        return open_binary(self.path, self.display)

    def _fingerprint(self) -> object:
        """What changes when the input is written to: compared before and after each pass."""
        return fingerprint(self._file)

    def _open(self) -> None:
        """Read the header: set :attr:`columns` and :attr:`schema`."""
        raise NotImplementedError

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        """Rows of ``columns`` (None: all), ``chunk_rows`` at most at a time."""
        raise NotImplementedError

    def _read(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        """:meth:`_batches`, from the start of the file, which must not change between or
        during passes: rows written must be the rows whose ISRCs were asked."""
        self._unchanged()
        self._file.seek(0)
        for batch in self._batches(columns):
            yield self._text_isrcs(batch) if self._as_text else batch
        self._unchanged()

    def _binary_isrc(self) -> bool:
        """Whether the ISRC column holds bytes (a Parquet ``binary`` column): then it is
        read as UTF-8 text, and :attr:`schema` says so."""
        index = self.schema.get_field_index(self.column)
        kind = self.schema.field(index).type
        if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
            return False
        self.schema = self.schema.set(index, pa.field(self.column, pa.string()))
        return True

    def _text_isrcs(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with its ISRC column's bytes as text (bytes that are not UTF-8 are
        shown with U+FFFD: such a cell is an invalid ISRC, said in its row)."""
        index = batch.schema.get_field_index(self.column)
        if index < 0:
            return batch
        cells = batch.column(index).to_pylist()
        text = [None if v is None else bytes(v).decode("utf-8", "replace") for v in cells]
        field = pa.field(self.column, pa.string())
        return batch.set_column(index, field, pa.array(text, pa.string()))

    def _unchanged(self) -> None:
        if self._fingerprint() != self._seen:
            raise self._changed("written to in place: its size or modification time moved")

    def _changed(self, how: str) -> InputError:
        return InputError(
            f"{self.display} changed while the run was reading it ({how}); nothing was "
            "written. Run again once the file is complete: the answers already asked are "
            "in the cache"
        )

    def native(self) -> pa.NativeFile:
        """The held file opened again by Arrow itself (``pyarrow.OSFile``), for Arrow's
        readers: they must hold no Python file object (see ``CsvSource._parse``). It is
        the held file even when another was moved into its place since (opened through
        the process's own descriptor where the system has them: ``/proc/self/fd``)."""
        fd = self._file.fileno()
        held = os.fstat(fd)
        for name in (f"/proc/self/fd/{fd}", f"/dev/fd/{fd}", str(self.path)):
            try:
                native = pa.OSFile(name)
            except OSError:
                continue
            now = os.fstat(native.fileno())
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                return native
            native.close()
        raise self._changed("another file was moved into its place")

    def typed(self, start: int, stop: int) -> list[list[Any]] | None:
        """See :class:`.columns.Table`: a CSV's or Parquet's chunks hold its cells."""
        return None

    def durations(self) -> dict[str, int]:
        """Each ISRC's first ``duration_ms`` (empty without that column: nothing is read)."""
        column = self.hint_columns.duration
        if column is None:
            return {}
        out: dict[str, int] = {}
        for batch in self._read([self.column, column]):
            data = batch.to_pydict()
            first_durations(data[self.column], data[column], out)
        return out

    def hints(self, wanted: Sequence[str]) -> dict[str, Hint]:
        """The input's title, artist and duration of ``wanted`` ISRCs (one more read of
        those columns; only what the title/artist search needs is kept)."""
        h = self.hint_columns
        if not h.usable:
            return {}
        names = [self.column, h.title, h.artist] + ([h.duration] if h.duration else [])
        left, out = set(wanted), {}
        for batch in self._read([n for n in names if n is not None]):
            data = batch.to_pydict()
            found = hints_of(
                data[self.column],
                data[h.title],
                data[h.artist],
                data[h.duration] if h.duration else None,
                left,
            )
            out.update(found)
            left -= found.keys()
            if not left:
                break
        return out

    def isrc_chunks(self) -> Iterator[list[str]]:
        """The ISRC column, chunk by chunk, as strings."""
        for batch in self._read([self.column]):
            yield ["" if v is None else str(v) for v in batch.column(0).to_pylist()]

    def isrc_spellings(self) -> Iterator[tuple[int, list[str], bool]]:
        """The ISRC column chunk by chunk, for the pass that collects a run's ISRCs: the
        chunk's row count, its distinct cells as strings in the order they first appear,
        and whether every cell is an ISRC as written (nothing to normalise)."""
        for batch in self._read([self.column]):
            column = batch.column(0)
            if pa.types.is_string(column.type) and column.null_count == 0:
                canonical = pc.all(pc.match_substring_regex(column, ISRC_PATTERN)).as_py()
                yield batch.num_rows, pc.unique(column).to_pylist(), bool(canonical)
            else:
                cells = pc.unique(column).to_pylist()
                yield batch.num_rows, ["" if v is None else str(v) for v in cells], False

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Whole rows, chunk by chunk, as Arrow batches (no Python object per cell): for a
        CSV or TSV input, every column is its text as read; Parquet's are typed."""
        yield from self._read(None)

    def chunks(self, *, text: bool = False) -> Iterator[pd.DataFrame]:
        """Whole rows, chunk by chunk (text columns for CSV, typed for Parquet). ``text``:
        for a text output, each value as its text (see :func:`as_text`)."""
        for batch in self._read(None):
            yield as_text(batch) if text else batch.to_pandas()


def open_binary(path: Path, display: str) -> IO[bytes]:
    return cast(IO[bytes], opened(path, display, "rb"))


def opened(path: Path, display: str, mode: str, **options: Any) -> IO[Any]:
    """``path`` opened, or an :class:`InputError` that says why it cannot be."""
    try:
        return path.open(mode, **options)
    except FileNotFoundError:
        raise InputError(f"{display} not found; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{display} is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{display} cannot be read (permission denied)") from None


def fingerprint(file: IO[bytes]) -> tuple[int, int]:
    """What changes when a file is written to in place: its size and modification time."""
    status = os.fstat(file.fileno())
    return status.st_size, status.st_mtime_ns


# -- files a person reads and edits beside a run: overrides in, a run's output read back
