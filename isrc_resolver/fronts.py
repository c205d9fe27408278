"""The table fronts: a file or a DataFrame in, the same rows with the output columns out,
and what a file's run writes besides (the candidates, the report, the summary file).

They drive any :class:`Engine` (the :class:`~isrc_resolver.resolver.Resolver`): read the
input through :mod:`isrc_resolver.tables`, hand its distinct ISRCs over, and write every
row back with its results and its match check.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from .changes import Change, ordered
from .errors import InputError, StoreLost
from .http.stats import ClientStats
from .isrc import normalize_value
from .matching import Hint, Hints
from .models import Enrichment, Status
from .paths import check_places, file_places, is_special, remove_earlier
from .pipeline.plan import Held, ask_streamed, distinct, write_pass_rows
from .pipeline.workers import RunControl
from .progress import Progress
from .report import RunReport
from .review.candidates import CANDIDATE_COLUMNS, Stores, candidate_records, stores_of
from .review.candidates import FROM_NETWORK as CANDIDATES_FROM_NETWORK
from .review.changed import CHANGE_COLUMNS, FROM_STORES, change_records
from .review.listing import FROM_NETWORK as REVIEW_FROM_NETWORK
from .review.listing import INPUT_TEXT, REVIEW_COLUMNS, Scan, review_records, scan_output
from .review.page import render_report
from .review.shown import Kept
from .schema import Row
from .settings import Settings
from .store.cache import AsyncCache

if TYPE_CHECKING:
    from .tables.frames import DataFrame
    from .tables.source import InputSource

__all__ = [
    "Engine",
    "FileOptions",
    "report_page",
    "resolve_dataframe",
    "resolve_file",
    "scan_file",
    "write_candidates",
    "write_review",
]

log = logging.getLogger("isrc_resolver")


class Engine(Protocol):
    """What the fronts need of a resolver."""

    settings: Settings
    control: RunControl
    cache_hits: int
    pinned: int  # distinct ISRCs answered by the overrides

    @property
    def stats(self) -> ClientStats: ...

    changes: list[Change]  # what changed since the cache's answers, every store's

    @property
    def second_counts(self) -> dict[str, dict[str, int]]: ...  # the second catalogues'

    @property
    def overrides(self) -> Mapping[str, Any]: ...  # pinned answers (none when streaming)

    @property
    def async_cache(self) -> AsyncCache | None: ...

    async def resolve_rows(
        self,
        values: Iterable[object] | list[str],
        *,
        kinds: Sequence[str] = (),
        progress: Progress | None = None,
        distinct: bool = False,
        hints: Hints | None = None,
    ) -> dict[str, Row]: ...


class FileOptions(TypedDict, total=False):
    """What :func:`resolve_file` takes besides the paths."""

    column: str | None  # the ISRC column (default: the one named isrc, any case)
    output_format: str | None  # csv, tsv, parquet or xlsx (default: the output's suffix)
    input_format: str | None  # csv, tsv, parquet, xlsx or ods (default: the input's suffix)
    sheet: str | int | None  # a workbook's sheet (default: the first with an ISRC column)
    title_column: str | None  # default: title, track, track_name or song, any case
    artist_column: str | None  # default: artist, artist_name or artists, any case
    chunk_rows: int  # rows read and written at a time (default 20,000)
    candidates: str | os.PathLike[str] | None  # every found ISRC's candidates (needs a cache)
    report: str | os.PathLike[str] | None  # the run's HTML report
    summary_json: str | os.PathLike[str] | None  # the run's summary as one JSON document
    changes: str | os.PathLike[str] | None  # what changed since the cache's answers
    reads: Mapping[str, str | os.PathLike[str] | None]  # other files read (option: path)


async def resolve_dataframe(
    resolver: Engine,
    df: DataFrame,
    column: str | None = None,
    *,
    with_: Iterable[Enrichment | str] | None = None,
    title_column: str | None = None,
    artist_column: str | None = None,
) -> DataFrame:
    """``df`` with the output columns added (see ``Resolver.resolve_dataframe``), and the
    run's summary in ``attrs["isrc_resolver"]`` (the keys of ``--summary-json``); a run
    that stopped early (the quota, a budget, a signal, the machine) warns as well."""
    from . import tables

    started, before = time.perf_counter(), _count(RunReport(), resolver, (0, 0, 0, 0, 0, 0))
    s = resolver.settings
    kinds = s.columns if with_ is None else s.evolve(with_=with_).columns
    values = tables.column_values(df, column)
    names = list(map(str, df.columns))
    hint_columns = tables.find_hint_columns(names, "the DataFrame", title_column, artist_column)
    for note in tables.column_notes(names, hint_columns, kinds, "the DataFrame"):
        log.info("%s", note)
    read = tables.frame_hints(df, values, hint_columns)
    durations = tables.frame_durations(df, values, hint_columns)
    hints = Hints(_in_thread(read), durations, titles=hint_columns.usable)
    with contextlib.closing(Progress(enabled=s.progress)) as progress:
        rows = await resolver.resolve_rows(values, kinds=kinds, progress=progress, hints=hints)
    report = RunReport(rows=len(values), elapsed=time.perf_counter() - started)
    _count(report, resolver, before)
    report.unique = sum(row.status is not Status.INVALID for row in rows.values())
    answers = [rows[normalize_value(v)] for v in values]
    report.statuses.update(row.status for row in answers)
    report.stale = sum(row.stale for row in answers)
    out = tables.with_results(df, values, rows, kinds, hint_columns, s.min_score)
    out.attrs["isrc_resolver"] = report.as_dict()
    if report.exit_code not in (0, 1):
        warnings.warn(f"the run stopped early: {report.summary()}", RuntimeWarning, stacklevel=3)
    return out


async def resolve_file(
    resolver: Engine,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    column: str | None = None,
    output_format: str | None = None,
    input_format: str | None = None,
    sheet: str | int | None = None,
    title_column: str | None = None,
    artist_column: str | None = None,
    chunk_rows: int = 20_000,
    candidates: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    summary_json: str | os.PathLike[str] | None = None,
    changes: str | os.PathLike[str] | None = None,
    reads: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> RunReport:
    """Read ``input`` (CSV, TSV, Parquet or ``-``), resolve, write ``output`` atomically.
    ``reads``: other files the run read, by option (the overrides, an env file), which no
    file it writes may be. ``changes``: a table of what changed since the cache's answers
    (see :mod:`.changes`), written on every run that names it.

    Rows are streamed in chunks twice (to collect the ISRCs, then to write): memory does
    not grow with the rows, nor past ``pipeline.plan.HELD_AT_MOST`` distinct ISRCs with the
    catalogue (kept on disk). Titles and artists are read again for the misses only."""
    from . import tables

    s = resolver.settings
    started = time.perf_counter()
    extras = _Extras(resolver, output, candidates, report, summary_json, changes)
    check_places(file_places(input, output, s.cache, extras.written(), reads or {}))
    extras.forget_earlier()
    run = RunReport()
    before = _count(RunReport(), resolver, (0, 0, 0, 0, 0, 0))
    reading = dict(column=column, input_format=input_format, chunk_rows=chunk_rows, sheet=sheet)
    hint_names = dict(title_column=title_column, artist_column=artist_column)
    with (
        tables.open_input(input, **reading, **hint_names) as source,  # type: ignore[arg-type]
        contextlib.closing(Progress(enabled=s.progress)) as progress,
        Held() as seen,  # a streamed run's ISRCs and outcomes, until the rows are written
    ):
        _preflight(output, output_format, source, s)
        extras.check()
        try:
            fits = tables.rows_fit(output, output_format, source)
            rows = await _resolve_all(resolver, source, run, progress, candidates, fits, seen)
        finally:
            _count(run, resolver, before)
        _unless_lost(run)
        await extras.before_writing(rows)
        progress.phase("writing", run.rows, "row")
        with write_pass_rows(seen, resolver.async_cache, s) as fill:
            run.statuses, run.stale = tables.write_output(
                output, source, rows, s.columns, output_format, progress.advance,
                s.escape_formulas, s.min_score, fill,
            )  # fmt: skip
    run.elapsed = time.perf_counter() - started
    await extras.after_writing(run)
    return run


async def _resolve_all(
    resolver: Engine,
    source: InputSource,
    run: RunReport,
    progress: Progress,
    candidates: object,
    fits: Callable[[int], None],
    seen: Held,
) -> dict[str, Row]:
    """The rows a file's run writes from memory; a catalogue past what a run holds keeps
    its ISRCs and outcomes on disk instead, in ``seen`` (see :mod:`.pipeline.plan`).
    ``fits``: the output can hold the input's rows (a sheet's rows are counted), before
    any request."""
    hints = _file_hints(source)
    run.rows, unique, seen.runset = distinct(
        source.isrc_spellings(), _streams(resolver, candidates)
    )
    fits(run.rows)
    if seen.runset is not None:
        run.unique = len(seen.runset)
        await _resolve_streaming(resolver, seen, progress, hints)
        return {}
    run.unique = len(unique)
    kinds = resolver.settings.columns
    rows = await resolver.resolve_rows(
        unique, kinds=kinds, progress=progress, distinct=True, hints=hints
    )
    unique.clear()
    return rows


def _unless_lost(run: RunReport) -> None:
    """A cache database lost during the run: its rows would come from it, so no output
    rather than a wrong one."""
    if isinstance(run.failed, StoreLost):
        raise run.failed


def _streams(resolver: Engine, candidates: object) -> bool:
    """May this run keep its distinct ISRCs on disk (see :mod:`.pipeline.plan`)? With a
    cache, and when nothing needs every answer at hand: no added columns (other
    stores, enrichment), no candidates file, no overrides."""
    s = resolver.settings
    return (
        resolver.async_cache is not None
        and not s.columns
        and candidates is None
        and not resolver.overrides
    )


async def _resolve_streaming(
    resolver: Engine, seen: Held, progress: Progress, hints: Hints
) -> None:
    """Ask what the cache does not answer; every outcome stays in the cache or in
    ``seen``, read again by the write pass, and the fresh answers are counted
    (``cache_hits``)."""
    cache, s = resolver.async_cache, resolver.settings
    assert cache is not None and seen.runset is not None

    async def resolve(batch: list[str]) -> dict[str, Row]:
        return await resolver.resolve_rows(
            batch, kinds=s.columns, progress=progress, distinct=True, hints=hints
        )

    ran = ask_streamed(seen.runset, cache, s, hints.titles, resolve, resolver.control)
    hits, seen.unreached = await ran
    resolver.cache_hits += hits


class _Extras:
    """What a file's run writes besides the output: the candidates table, the HTML
    report, the summary file; each target checked before the first request."""

    def __init__(
        self,
        resolver: Engine,
        output: str | os.PathLike[str],
        candidates: str | os.PathLike[str] | None,
        report: str | os.PathLike[str] | None,
        summary_json: str | os.PathLike[str] | None,
        changes: str | os.PathLike[str] | None = None,
    ) -> None:
        self.resolver, self.output = resolver, output
        self.candidates, self.report, self.summary_json = candidates, report, summary_json
        self.changes = changes
        self.per_day: dict[str, int] = {}

    def check(self) -> None:
        from . import tables

        if self.candidates is not None:
            tables.check_file(self.candidates, "candidates=")
            tables.frame_format(self.candidates, "candidates=")
            if self.resolver.async_cache is None:
                raise InputError(
                    "candidates= writes the candidates kept in the cache: run with a cache "
                    "(not cache=None)"
                )
        if self.report is not None:
            tables.check_file(self.report, "report=")
            if str(self.output) == "-" or is_special(self.output):
                raise InputError(
                    f"report= reads the output back, which {self.output} does not keep: "
                    "write the output to a file (not - for standard output, nor a device "
                    "such as /dev/null)"
                )
        if self.summary_json is not None:
            tables.check_file(self.summary_json, "summary_json=")
        if self.changes is not None:
            tables.check_file(self.changes, "changes=")
            tables.frame_format(self.changes, "changes=")

    async def before_writing(self, rows: dict[str, Row]) -> None:
        cache = self.resolver.async_cache
        if self.candidates is None or cache is None:
            return
        variant = self.resolver.settings.variant

        def lookup(isrcs: list[str]) -> Mapping[str, Any]:
            assert cache is not None
            return cache.cache.candidates(isrcs, variant)

        stores = stores_of(cache.cache, self.resolver.settings)  # on the cache's thread:
        count = await cache.call(write_candidates, self.candidates, rows, lookup, stores)
        log.info("candidates: %d rows written to %s", count, self.candidates)

    async def after_writing(self, run: RunReport) -> None:
        from . import tables

        cache, s = self.resolver.async_cache, self.resolver.settings
        if cache is not None:
            self.per_day = await cache.call(cache.cache.ledger.per_day, s.account_key)
        if str(self.output) != "-":
            run.html = functools.partial(_report_page, self.output, run, self.per_day, s)
        if self.changes is not None:  # every run that names it: empty when nothing changed
            count = write_changes(self.changes, run.changes)
            log.info("changes: %d written to %s", count, self.changes)
        if self.report is not None and run.html is not None:
            page = await asyncio.to_thread(run.html)
            tables.write_text(self.report, page, "report=")
            log.info("report: %s", self.report)
        if self.summary_json is not None:  # last: what it says has all happened
            text = json.dumps(run.as_dict(), indent=2) + "\n"
            tables.write_text(self.summary_json, text, "summary_json=")

    def written(self) -> dict[str, str | os.PathLike[str] | None]:
        """The files written besides the output, by option."""
        given = (self.candidates, self.report, self.summary_json, self.changes)
        return dict(
            zip(("candidates=", "report=", "summary_json=", "changes="), given, strict=True)
        )

    def forget_earlier(self) -> None:
        """Earlier runs' files here go: each is this run's, or there is none."""
        for target in self.written().values():
            if target is not None:
                remove_earlier(target)


def _report_page(
    output: str | os.PathLike[str], run: RunReport, days: Mapping[str, int], s: Settings
) -> str:
    return report_page(output, run.as_dict(), days, s.daily_quota, run.changes)


def _preflight(
    output: str | os.PathLike[str], output_format: str | None, source: InputSource, s: Settings
) -> None:
    """Before any request: the output can be written; and what a person should know of
    the columns."""
    from . import tables

    tables.check_output(output, output_format)
    for note in tables.column_notes(source.columns, source.hint_columns, s.columns, source.display):
        log.info("%s", note)


def _file_hints(source: InputSource) -> Hints:
    """What a file says of its ISRCs besides the codes (read again only for misses)."""
    titles = source.hint_columns.usable
    return Hints(_in_thread(source.hints), source.durations(), titles=titles)


def _in_thread(
    read: Callable[[list[str]], Mapping[str, Hint]],
) -> Callable[[list[str]], Awaitable[Mapping[str, Hint]]]:
    """``read`` (blocking: it may read the input file again) off the event loop."""

    async def hints(wanted: list[str]) -> Mapping[str, Hint]:
        return await asyncio.to_thread(read, wanted)

    return hints


# API requests, token requests, 429s, cache hits, pinned ISRCs, changes told
Counts = tuple[int, int, int, int, int, int]


def _count(report: RunReport, resolver: Engine, before: Counts) -> Counts:
    """Fill ``report`` with what the resolver did since ``before``; returns the totals."""
    stats, control = resolver.stats, resolver.control
    tokens = stats.requests["token"]
    told = len(resolver.changes)
    now = (stats.api_requests, tokens, stats.throttled, resolver.cache_hits, resolver.pinned, told)
    report.requests = now[0] - before[0]
    report.token_requests = now[1] - before[1]
    report.throttled = now[2] - before[2]
    report.cache_hits = now[3] - before[3]
    report.pinned = now[4] - before[4]
    report.changes = ordered(resolver.changes[before[5] : now[5]])
    report.second = {name: dict(counts) for name, counts in resolver.second_counts.items()}
    report.stop, report.interrupted, report.spent, report.failed = (
        control.stopped,
        control.interrupted,
        control.spent,
        control.failed,
    )
    return now


# -- what a person reads: candidates, the review list, the report

Lookup = Callable[[list[str]], Kept]


def scan_file(
    path: str | os.PathLike[str], title: str | None = None, artist: str | None = None
) -> Scan:
    """A run's output (CSV, TSV or Parquet) counted, with its doubtful rows. The input's
    title and artist columns are found as a run finds them (or named)."""
    from . import tables

    with tables.read_output(path) as (source, ours, chunks):
        first = source.columns.index(ours["isrc_normalized"])
        hints = tables.find_hint_columns(source.columns[:first], source.display, title, artist)
        return scan_output(chunks, ours, hints.title, hints.artist)


def write_review(scan: Scan, target: str | os.PathLike[str], lookup: Lookup | None = None) -> int:
    """The review list to ``target`` (CSV, TSV or Parquet); returns its rows."""
    from . import tables

    kept = lookup([str(i) for i in scan.items]) if lookup is not None and scan.items else None
    records = review_records(scan, kept)
    return tables.write_frames(
        target,
        [records],
        REVIEW_COLUMNS,
        "review -o",
        escape=(*REVIEW_FROM_NETWORK, *INPUT_TEXT),
    )


def write_changes(target: str | os.PathLike[str], changes: Sequence[Change]) -> int:
    """``changes`` to ``target``, CSV, TSV or Parquet by its suffix, with its header when
    there are none; returns the rows written."""
    from . import tables

    records = change_records(changes)
    return tables.write_frames(target, [records], CHANGE_COLUMNS, "changes=", escape=FROM_STORES)


def write_candidates(
    target: str | os.PathLike[str], rows: Mapping[str, Row], lookup: Lookup, stores: Stores
) -> int:
    """Every found ISRC's candidates to ``target``; returns the rows written."""
    from . import tables

    records = candidate_records(rows, lookup, stores)
    return tables.write_frames(
        target, records, CANDIDATE_COLUMNS, "--candidates", escape=CANDIDATES_FROM_NETWORK
    )


def report_page(
    output: str | os.PathLike[str],
    summary: Mapping[str, Any],
    per_day: Mapping[str, int] | None = None,
    daily_quota: int | None = None,
    changes: Sequence[Change] = (),
) -> str:
    """The HTML report of a run whose output is the file ``output``."""
    scan = scan_file(output)
    title = f"isrc-resolve: {output}"
    return render_report(summary, scan, per_day, daily_quota, title, changes)
