"""The table fronts: a file or a DataFrame in, the same rows with the output columns out.

:class:`~isrc_resolver.resolver.Resolver` works on ISRC strings and results; these two
functions (behind ``Resolver.resolve_file`` and ``Resolver.resolve_dataframe``) read the
table through :mod:`isrc_resolver.io`, hand its distinct ISRCs to the resolver together
with a way to read the titles and artists of the misses, and write every row back with
its results and its match check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypedDict

from . import io
from .fetch import Hints
from .models import Enrichment, RunReport
from .plan import distinct_isrcs
from .progress import Progress
from .search import Hint

if TYPE_CHECKING:
    import pandas as pd

    from .resolver import Resolver

__all__ = ["FileOptions", "resolve_dataframe", "resolve_file"]


class FileOptions(TypedDict, total=False):
    """What :func:`resolve_file` takes besides the paths."""

    column: str | None  # the ISRC column (default: the one named isrc, any case)
    output_format: str | None  # csv, tsv or parquet (default: the output's suffix)
    input_format: str | None  # csv, tsv or parquet (default: the input's suffix)
    title_column: str | None  # default: title, track, track_name or song, any case
    artist_column: str | None  # default: artist, artist_name or artists, any case
    chunk_rows: int  # rows read and written at a time (default 20,000)


async def resolve_dataframe(
    resolver: Resolver,
    df: pd.DataFrame,
    column: str | None = None,
    *,
    with_: Iterable[Enrichment | str] | None = None,
    title_column: str | None = None,
    artist_column: str | None = None,
) -> pd.DataFrame:
    """``df`` with the output columns added (see ``Resolver.resolve_dataframe``)."""
    s = resolver.settings
    kinds = s.with_ if with_ is None else s.evolve(with_=with_).with_
    values = io.column_values(df, column)
    names = list(map(str, df.columns))
    hint_columns = io.find_hint_columns(names, "the DataFrame", title_column, artist_column)
    read = io.frame_hints(df, values, hint_columns)
    hints = Hints(_in_thread(read), io.frame_durations(df, values, hint_columns))
    with contextlib.closing(Progress(enabled=s.progress)) as progress:
        rows = await resolver.resolve_rows(values, kinds=kinds, progress=progress, hints=hints)
    return io.with_results(df, values, rows, kinds, hint_columns, s.min_score)


async def resolve_file(
    resolver: Resolver,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    column: str | None = None,
    output_format: str | None = None,
    input_format: str | None = None,
    title_column: str | None = None,
    artist_column: str | None = None,
    chunk_rows: int = 20_000,
) -> RunReport:
    """Read ``input`` (CSV, TSV, Parquet or ``-``), resolve, write ``output`` atomically.

    Rows are streamed in chunks twice (to collect the ISRCs, then to write), so memory
    grows with the number of distinct ISRCs, not with the rows; the titles and artists are
    read a third time only for the ISRCs missed in every market.
    """
    s = resolver.settings
    started = time.perf_counter()
    report = RunReport()
    before = _count(RunReport(), resolver, (0, 0, 0))
    with (
        io.open_input(
            input,
            column=column,
            input_format=input_format,
            chunk_rows=chunk_rows,
            title_column=title_column,
            artist_column=artist_column,
        ) as source,
        contextlib.closing(Progress(enabled=s.progress)) as progress,
    ):
        io.check_output(output, output_format)
        report.rows, unique = distinct_isrcs(source.isrc_chunks())
        report.unique = len(unique)
        try:
            rows = await resolver.resolve_rows(
                unique,
                kinds=s.with_,
                progress=progress,
                distinct=True,
                hints=Hints(_in_thread(source.hints), source.durations()),
            )
        finally:
            unique.clear()
            _count(report, resolver, before)
        progress.phase("writing", report.rows, "row")
        report.statuses, report.stale = io.write_output(
            output, source, rows, s.with_, output_format, progress.advance, s.escape_formulas,
            s.min_score,
        )  # fmt: skip
    report.elapsed = time.perf_counter() - started
    return report


def _in_thread(
    read: Callable[[list[str]], Mapping[str, Hint]],
) -> Callable[[list[str]], Awaitable[Mapping[str, Hint]]]:
    """``read`` (blocking: it may read the input file again) off the event loop."""

    async def hints(wanted: list[str]) -> Mapping[str, Hint]:
        return await asyncio.to_thread(read, wanted)

    return hints


Counts = tuple[int, int, int]  # requests, 429s, cache hits


def _count(report: RunReport, resolver: Resolver, before: Counts) -> Counts:
    """Fill ``report`` with what the resolver did since ``before``; returns the totals."""
    stats, control = resolver.client.stats, resolver.control
    now = (stats.total_requests, stats.throttled, resolver.cache_hits)
    report.requests = now[0] - before[0]
    report.throttled = now[1] - before[1]
    report.cache_hits = now[2] - before[2]
    report.stop, report.interrupted, report.spent = (
        control.stopped,
        control.interrupted,
        control.spent,
    )
    return now
