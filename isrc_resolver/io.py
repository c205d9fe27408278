"""Tables in and out: CSV, TSV and Parquet, streamed in chunks. The only pandas import.

Input cells are read as text, exactly as written (no ``NA`` or ``null`` guessing, leading
zeros kept). Output is written to a temporary file beside the target and moved into place
only when complete, so an existing output is replaced by a whole one or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import os
import shutil
import stat
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import InputError
from .isrc import is_valid_isrc
from .matching import Check, check
from .models import Enrichment, Result, Status
from .plan import normalize_value
from .schema import FORMATS, Column, Kind, Row, enriched, output_columns, row_of
from .search import Hint

__all__ = [
    "InputSource",
    "OutputSink",
    "check_output",
    "column_values",
    "detect_format",
    "escape_formula",
    "find_isrc_column",
    "open_input",
    "open_output",
    "output_names",
    "with_results",
    "write_output",
]

_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
}
_ARROW_TYPES = {
    Kind.TEXT: pa.string(),
    Kind.INTEGER: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
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


_TITLE_NAMES = ("title", "track", "track_name", "song")
_ARTIST_NAMES = ("artist", "artist_name", "artists")
_DURATION_NAMES = ("duration_ms",)


@dataclass(frozen=True, slots=True)
class HintColumns:
    """The input's title, artist and duration columns (None: not there)."""

    title: str | None = None
    artist: str | None = None
    duration: str | None = None

    @property
    def usable(self) -> bool:
        """Title and artist both: the title/artist search and the match check need both."""
        return self.title is not None and self.artist is not None


def find_hint_columns(
    columns: Sequence[str],
    display: str,
    title: str | None = None,
    artist: str | None = None,
) -> HintColumns:
    """The title and artist columns: as named, else the first column called ``title``,
    ``track``, ``track_name`` or ``song`` (``artist``, ``artist_name``, ``artists``), in
    any case; and a ``duration_ms`` column, if any."""
    listing = ", ".join(columns) or "(none)"
    for wanted, flag in ((title, "--title-column"), (artist, "--artist-column")):
        if wanted is not None and wanted not in columns:
            raise InputError(
                f"{flag} {wanted!r} is not a column of {display}; columns are: {listing}"
            )

    def auto(names: Sequence[str]) -> str | None:
        by_name = {c.strip().lower(): c for c in reversed(columns)}
        return next((by_name[n] for n in names if n in by_name), None)

    return HintColumns(
        title or auto(_TITLE_NAMES), artist or auto(_ARTIST_NAMES), auto(_DURATION_NAMES)
    )


def _duration(value: object) -> int | None:
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if 0 < number < 10**8 else None


def hints_of(
    isrcs: Sequence[object],
    titles: Sequence[object],
    artists: Sequence[object],
    durations: Sequence[object] | None,
    wanted: set[str],
) -> dict[str, Hint]:
    """The first title/artist/duration given for each ISRC of ``wanted``."""
    out: dict[str, Hint] = {}
    for n, value in enumerate(isrcs):
        isrc = normalize_value(value)
        if isrc in wanted and isrc not in out:
            out[isrc] = Hint(
                _cell(titles[n]),
                _cell(artists[n]),
                _duration(durations[n]) if durations is not None else None,
            )
    return out


def _first_durations(
    isrcs: Sequence[object], durations: Sequence[object], out: dict[str, int]
) -> None:
    for value, duration in zip(isrcs, durations, strict=True):
        isrc = normalize_value(value)
        if isrc not in out and (ms := _duration(duration)) is not None:
            out[isrc] = ms


def _cell(value: object) -> str:
    return value if isinstance(value, str) else ""


def checks(
    titles: Sequence[object],
    artists: Sequence[object],
    tracks: Sequence[object],
    track_artists: Sequence[object],
    threshold: float,
) -> tuple[list[str | None], list[float | None]]:
    """``match_check`` and ``match_score`` for rows: the input's title and artist against
    the found track's (rows without a track, or without a title and artist, get none)."""
    verdicts: list[str | None] = []
    scores: list[float | None] = []
    for title, artist, track, names in zip(titles, artists, tracks, track_artists, strict=True):
        if not (isinstance(track, str) and _cell(title).strip() and _cell(artist).strip()):
            verdicts.append(None)
            scores.append(None)
            continue
        result = _check(
            _cell(title), _cell(artist), track.lstrip("'"), str(names or "").lstrip("'"), threshold
        )
        verdicts.append(result.verdict.value)
        scores.append(result.score)
    return verdicts, scores


@functools.lru_cache(maxsize=65_536)
def _check(title: str, artist: str, track: str, names: str, threshold: float) -> Check:
    return check(title, artist, track, names.split("; "), threshold)


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


class _Rows:
    """The output values of each distinct ISRC as the output format wants them (text from
    the network escaped for CSV/TSV), built once per ISRC, not once per row."""

    def __init__(
        self,
        rows: dict[str, Row],
        columns: Sequence[Column],
        kinds: Sequence[Enrichment],
        *,
        escape: bool,
        consume: bool = False,
    ) -> None:
        self._rows = rows
        self._kinds = kinds
        self._escaped = [
            i for i, c in enumerate(columns) if escape and c.from_network and c.kind is Kind.TEXT
        ]
        self._width = len(columns)
        # A file's run hands its rows over: each is replaced by its built values in the
        # same table (no second table of every ISRC); otherwise they are kept apart.
        self._memo: dict[str, Any] = cast(dict[str, Any], rows) if consume else {}
        self.carriage_return = False  # does any value built so far hold a "\r"?
        self.stale = 0  # rows written so far with a stale answer

    def get(self, value: object) -> tuple[Status, bool, tuple[Any, ...]]:
        isrc = normalize_value(value)
        known = self._memo.get(isrc)
        if known is None or isinstance(known, Row):
            known = self._memo[isrc] = self._build(isrc)
        return known

    def _build(self, isrc: str) -> tuple[Status, bool, tuple[Any, ...]]:
        row = self._rows.get(isrc)
        if row is None:  # invalid values get their result here; valid ones are all known
            result = (
                Result.invalid(isrc)
                if not is_valid_isrc(isrc)
                else Result(isrc, Status.PENDING, error="not attempted")
            )
            row = enriched(row_of(result), self._kinds)
        values = list(row.values)
        for i in self._escaped:
            values[i] = escape_formula(values[i])
        if any(isinstance(v, str) and "\r" in v for v in values):
            self.carriage_return = True
        assert len(values) == self._width, "a row built for other columns"
        return row.status, row.stale, tuple(values)

    def columns(self, values: Sequence[object]) -> tuple[list[list[Any]], Counter[Status]]:
        """For each output column, its values for ``values`` (one per row); the statuses.
        Rows written with a stale answer are counted in :attr:`stale`."""
        built = [self.get(v) for v in values]
        statuses = Counter(status for status, _, _ in built)
        self.stale += sum(stale for _, stale, _ in built)
        if not built:
            return [[] for _ in range(self._width)], statuses
        rows = (row for _, _, row in built)
        return [list(column) for column in zip(*rows, strict=True)], statuses


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
    rows: dict[str, Row],
    kinds: Sequence[Enrichment] = (),
    hints: HintColumns | None = None,
    min_score: float = 90.0,
) -> pd.DataFrame:
    """A copy of ``df`` with the output columns added (one row per value of ``values``)."""
    columns = output_columns(kinds)
    names = output_names(list(map(str, df.columns)), [c.name for c in columns])
    data, _ = _Rows(rows, columns, kinds, escape=False).columns(values)
    if hints is not None and hints.usable:
        assert hints.title is not None and hints.artist is not None
        _fill_checks(data, df[hints.title].tolist(), df[hints.artist].tolist(), min_score)
    out = df.copy()
    for column, name, column_values in zip(columns, names, data, strict=True):
        out[name] = _series(column_values, column, df.index)
    return out


_AT = {c.name: i for i, c in enumerate(output_columns())}


def _fill_checks(
    data: list[list[Any]], titles: list[Any], artists: list[Any], min_score: float
) -> None:
    """Put each row's match_check and match_score into ``data`` (columns of values)."""
    verdicts, scores = checks(titles, artists, data[_AT["track"]], data[_AT["artists"]], min_score)
    data[_AT["match_check"]] = verdicts
    data[_AT["match_score"]] = scores


def frame_hints(
    df: pd.DataFrame, values: list[object], columns: HintColumns
) -> Callable[[list[str]], dict[str, Hint]]:
    """The title/artist/duration of a DataFrame's ISRCs, for the title/artist search."""

    def read(wanted: list[str]) -> dict[str, Hint]:
        if not columns.usable:
            return {}
        assert columns.title is not None and columns.artist is not None
        durations = df[columns.duration].tolist() if columns.duration else None
        return hints_of(
            values, df[columns.title].tolist(), df[columns.artist].tolist(), durations, set(wanted)
        )

    return read


def frame_durations(df: pd.DataFrame, values: list[object], columns: HintColumns) -> dict[str, int]:
    """Each ISRC's first ``duration_ms`` in a DataFrame (empty without that column)."""
    out: dict[str, int] = {}
    if columns.duration is not None:
        _first_durations(values, df[columns.duration].tolist(), out)
    return out


def _missing(value: object) -> bool:
    if value is None or isinstance(value, str):
        return value is None
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))  # type: ignore[call-overload]


# -- input -------------------------------------------------------------------------------


class InputSource:
    """One input table, readable in chunks as many times as needed."""

    def __init__(
        self,
        path: Path,
        display: str,
        fmt: str,
        column: str | None,
        chunk_rows: int,
        title_column: str | None = None,
        artist_column: str | None = None,
    ):
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
        self.hint_columns = find_hint_columns(self.columns, display, title_column, artist_column)

    def durations(self) -> dict[str, int]:
        """Each ISRC's first ``duration_ms`` (empty without that column: nothing is read)."""
        column = self.hint_columns.duration
        if column is None:
            return {}
        out: dict[str, int] = {}
        for batch in self._batches([self.column, column]):
            data = batch.to_pydict()
            _first_durations(data[self.column], data[column], out)
        return out

    def hints(self, wanted: Sequence[str]) -> dict[str, Hint]:
        """The input's title, artist and duration of ``wanted`` ISRCs (one more read of
        those columns; only what the title/artist search needs is kept)."""
        h = self.hint_columns
        if not h.usable:
            return {}
        names = [self.column, h.title, h.artist] + ([h.duration] if h.duration else [])
        left, out = set(wanted), {}
        for batch in self._batches([n for n in names if n is not None]):
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
        for batch in self._batches([self.column]):
            yield ["" if v is None else str(v) for v in batch.column(0).to_pylist()]

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Whole rows, chunk by chunk (text columns for CSV, typed for Parquet)."""
        for batch in self._batches(None):
            yield batch.to_pandas()

    def _batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            yield from self._parquet.iter_batches(self.chunk_rows, columns=columns)
            return
        yield from self._csv_batches(columns)

    def _csv_batches(self, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        """Every data row, exactly as written, as text: no type guessing, no NA, no blank
        line skipped (in a table of several columns it is a row of empty cells). The same
        reader reads the file both times, so the rows written are the rows whose ISRCs were
        asked. A row with more or fewer cells than the header is refused."""
        ragged: list[tuple[int, str]] = []

        def refuse(row: pa_csv.InvalidRow) -> str:
            ragged.append((row.actual_columns, row.text or ""))
            return "error"

        parse = pa_csv.ParseOptions(
            delimiter=self.delimiter,
            newlines_in_values=True,
            ignore_empty_lines=False,
            invalid_row_handler=refuse,
        )
        convert = pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in self.columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            include_columns=columns,
        )
        read = pa_csv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False)
        try:
            with pa_csv.open_csv(
                self.path,
                read_options=read,
                parse_options=parse,
                convert_options=convert,
                # The system allocator gives memory back between blocks; Arrow's default
                # pool keeps it, which over millions of rows shows as tens of MB more peak.
                memory_pool=pa.system_memory_pool(),
            ) as reader:
                if reader.schema.names != (columns or self.columns):
                    raise InputError(f"{self.display}: the header row could not be read back")
                for batch in reader:
                    batch = _no_nulls(batch)
                    for start in range(0, batch.num_rows, self.chunk_rows):
                        yield batch.slice(start, self.chunk_rows)
        except pa.ArrowInvalid as exc:
            raise InputError(self._explain(exc, ragged)) from None

    def _explain(self, exc: pa.ArrowInvalid, ragged: list[tuple[int, str]]) -> str:
        if ragged:
            cells, text = ragged[0]
            line = self._first_ragged_line()
            where = f"ending on line {line}" if line else f"{text[:60]!r}"
            return (
                f"{self.display}: the row {where} has {cells} cells where the header has "
                f"{len(self.columns)}; every row needs one cell per column (quote cells that "
                "contain the delimiter), so fix that row and run again"
            )
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            return _not_utf8_file(self.display, self.path)
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


_CSV_BLOCK = 256 * 1024  # bytes of CSV parsed at a time (then cut to chunk_rows)


def _no_nulls(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A blank line in a table of several columns comes back as nulls: empty cells."""
    if all(column.null_count == 0 for column in batch.columns):
        return batch
    filled = [pc.fill_null(column, "") for column in batch.columns]
    return pa.RecordBatch.from_arrays(filled, schema=batch.schema)


def _not_utf8_file(display: str, path: Path) -> str:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return _not_utf8(display, exc)
    return f"{display} is not UTF-8 text; save it as 'CSV UTF-8' or convert it"


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
    title_column: str | None = None,
    artist_column: str | None = None,
) -> Iterator[InputSource]:
    """Open ``path`` (or ``-`` for standard input, spooled to a temporary file)."""
    hints = {"title_column": title_column, "artist_column": artist_column}
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
                **hints,
            )
        return
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} not found; check the path")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a file")
    yield InputSource(p, str(p), detect_format(p, input_format), column, chunk_rows, **hints)


# -- output ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where the output goes, checked before anything is asked of Spotify."""

    display: str
    format: str
    path: str | None  # None: standard output
    direct: bool  # write straight into it (a device or a FIFO): no temporary file


def check_output(target: str | os.PathLike[str], output_format: str | None = None) -> Target:
    """Check that ``target`` can be written in a known format; follow a symlink to the file
    it names (the link stays). Raises :class:`InputError` naming the fix."""
    display = str(target)
    if display == "-":
        fmt = output_format or "csv"
        if fmt == "parquet":
            raise InputError("Parquet cannot be written to standard output; use -o FILE.parquet")
        return Target(display, detect_format("-", fmt), None, True)
    fmt = detect_format(display, output_format)
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

    def __init__(self, target: Target, source: InputSource, kinds: Sequence[Enrichment] = ()):
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
            self._tmp = destination = _temporary_beside(target.path)
        if self.format == "parquet":
            self.schema = self._parquet_schema()
            self._parquet = pq.ParquetWriter(destination, self.schema, compression="zstd")
        elif destination is None:
            self._fh = sys.stdout
        else:
            self._fh = open(destination, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()

    def _parquet_schema(self) -> pa.Schema:
        """The input's columns and ours, typed, with pandas metadata, so that pandas reads
        ``Int64`` and ``boolean`` back (polars and duckdb read the Arrow types)."""
        fields = list(self.source.schema)
        fields += [
            pa.field(n, _ARROW_TYPES[c.kind]) for c, n in zip(self.columns, self.names, strict=True)
        ]
        empty = self.source.schema.empty_table().to_pandas()
        for column, name in zip(self.columns, self.names, strict=True):
            empty[name] = pd.Series([], dtype=column.kind.pandas_dtype)
        metadata = pa.Schema.from_pandas(empty, preserve_index=False).metadata
        return pa.schema(fields, metadata=metadata)

    def write(self, chunk: pd.DataFrame, rows: _Rows, min_score: float = 90.0) -> Counter[Status]:
        """Append ``chunk`` with its results; returns the rows' statuses."""
        data, statuses = rows.columns(chunk[self.source.column].tolist())
        h = self.source.hint_columns
        if h.usable:
            assert h.title is not None and h.artist is not None
            _fill_checks(data, chunk[h.title].tolist(), chunk[h.artist].tolist(), min_score)
        # Only text output cares, and only the input's cells need a look: our own values
        # were checked once per ISRC as they were built (rows.carriage_return).
        quote_all = self._parquet is None and (rows.carriage_return or _has_carriage_return(chunk))
        # The chunk was read for this write alone: adding columns to it in place is safe.
        for column, name, values in zip(self.columns, self.names, data, strict=True):
            chunk[name] = _series(values, column, chunk.index)
        self._write_frame(chunk, quote_all=quote_all)
        return statuses

    def _write_frame(self, frame: pd.DataFrame, *, quote_all: bool = False) -> None:
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
            # The csv writer quotes a cell with a line feed but not one with a lone carriage
            # return, which readers take for a line break: such a chunk is quoted whole.
            quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
        )
        self._header_written = True

    def close(self, *, complete: bool) -> None:
        try:
            if complete and not self._header_written and self._parquet is None:
                empty = pd.DataFrame(columns=[*self.source.columns, *self.names])
                self._write_frame(empty)
            if self._parquet is not None:
                self._parquet.close()
            if self._fh is sys.stdout:
                self._fh.flush()
            elif self._fh is not None:
                self._fh.close()
            if self._tmp is not None and complete:
                os.chmod(self._tmp, 0o644 & ~_umask())
                os.replace(self._tmp, self.target.path or "")
                self._tmp = None
        finally:
            if self._tmp is not None:  # incomplete, or the move failed: leave nothing behind
                with contextlib.suppress(OSError):
                    os.unlink(self._tmp)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """``value`` made inert for a spreadsheet: text that starts like a formula gets a
    leading apostrophe (OWASP, "CSV Injection"); anything else is returned as it is."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


_PARTIAL = ".partial"


def _temporary_beside(path: str) -> str:
    """A new temporary file next to ``path``, named for this process; the leftovers of
    processes that died (``kill -9``) are swept first."""
    directory, name = os.path.split(path)
    for stale in Path(directory).glob(f".{glob.escape(name)}.*{_PARTIAL}"):
        pid = stale.name[len(name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=_PARTIAL, dir=directory)
    os.close(fd)
    return tmp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _has_carriage_return(frame: pd.DataFrame) -> bool:
    """Does any input cell (or column name) of ``frame`` hold a carriage return?"""
    if any("\r" in str(name) for name in frame.columns):
        return True
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
            if column.str.contains("\r", regex=False).fillna(False).any():
                return True
        elif column.dtype == object and any(
            isinstance(v, str) and "\r" in v for v in column.tolist()
        ):
            return True
    return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def open_output(
    target: str | os.PathLike[str],
    source: InputSource,
    *,
    output_format: str | None = None,
    kinds: Sequence[Enrichment] = (),
) -> Iterator[OutputSink]:
    """A sink for ``target`` (``-``: CSV on standard output). Moved into place on success."""
    sink = OutputSink(check_output(target, output_format), source, kinds)
    try:
        yield sink
    except BaseException:
        sink.close(complete=False)
        raise
    sink.close(complete=True)


def write_output(
    target: str | os.PathLike[str],
    source: InputSource,
    rows: dict[str, Row],
    kinds: Sequence[Enrichment] = (),
    output_format: str | None = None,
    written: Callable[[int], None] = lambda rows: None,
    escape_formulas: bool = True,
    min_score: float = 90.0,
) -> tuple[Counter[Status], int]:
    """Every row of ``source`` with its results, to ``target``; returns the rows' statuses
    and how many rows got a stale answer.
    ``rows`` is used up on the way: each entry is replaced by its values for the format.
    ``written`` hears how many rows each chunk had (for a progress bar)."""
    statuses: Counter[Status] = Counter()
    with open_output(target, source, output_format=output_format, kinds=kinds) as sink:
        # Spreadsheets run a cell that starts with = + - @ as a formula: text from the
        # network is escaped in CSV and TSV (OWASP), never in Parquet or input columns.
        escape = escape_formulas and sink.format != "parquet"
        built = _Rows(rows, sink.columns, kinds, escape=escape, consume=True)
        for chunk in source.chunks():
            statuses.update(sink.write(chunk, built, min_score))
            written(len(chunk))
    return statuses, built.stale
