"""``isrc-resolve INPUT -o OUTPUT``: the run, from its options to its summary line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, EnvironmentFailure, InputError, format_time
from ..models import Status
from ..overrides import Override
from ..report import RunReport, package_version
from ..schema import FORMATS, WRITTEN
from ..settings import Settings
from .options import (
    as_flags,
    cache_path,
    env_file,
    hint_arguments,
    overrides_argument,
    settings_from,
    sheet_argument,
)

if TYPE_CHECKING:
    from ..resolver import Resolver

__all__ = ["Outcome", "add_arguments", "demo_sample", "run", "summary_target", "write_summary"]

log = logging.getLogger("isrc_resolver")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        nargs="?",
        help="CSV, TSV, Parquet or workbook (.xlsx, .ods) file (or a folder of Parquet files) "
        "to read, or - for "
        "standard input "
        "(with --demo, default: a small bundled sample)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="file to write (.csv, .tsv, .parquet or .xlsx), or - for CSV on standard output",
    )
    p.add_argument("--format", choices=WRITTEN, help="output format (default: from -o's suffix)")
    p.add_argument(
        "--input-format",
        choices=FORMATS,
        help="input format (default: from the input's suffix; CSV for standard input)",
    )
    sheet_argument(p)
    p.add_argument(
        "--column",
        metavar="NAME",
        help="the ISRC column (default: the one column named 'isrc', any case)",
    )
    hint_arguments(p)
    checking = p.add_argument_group("checking and correcting answers")
    overrides_argument(checking)
    checking.add_argument(
        "--candidates",
        metavar="PATH",
        help="also write every track Spotify returned for each found ISRC, with the chosen "
        "one marked and why (.csv, .tsv or .parquet; needs the cache)",
    )
    checking.add_argument(
        "--report",
        metavar="PATH.html",
        help="also write a report to open in a browser: counts, charts, the rows to "
        "review, requests per day (one self-contained file)",
    )
    checking.add_argument(
        "--changes",
        metavar="PATH",
        help="also write what changed since the cache's answers, one row per ISRC and store: "
        "gone, appeared, id_changed, names_changed (.csv, .tsv or .parquet; written, with "
        "its header, on every run that names it)",
    )
    checking.add_argument(
        "--summary-json",
        metavar="PATH",
        help="also write the run's summary as one JSON document (for schedulers)",
    )


@contextlib.asynccontextmanager
async def _endpoints(args: argparse.Namespace, settings: Settings) -> AsyncIterator[Settings]:
    """``settings``, pointed at the bundled local server for the length of a --demo run
    (every store's URL, its own credentials, the demo's paces unless given)."""
    if not args.demo:
        yield settings
        return
    from ..fake.server import FakeSpotify

    async with FakeSpotify.demo() as server:
        log.info("demo: local Spotify at %s with demo credentials", server.base_url)
        with tempfile.TemporaryDirectory(prefix="isrc-resolver-demo-") as folder:
            credentials, rates = server.demo_credentials(Path(folder)), server.demo_rates
            yield settings.evolve(
                api_url=server.api_url,
                token_url=server.token_url,
                endpoints={**settings.endpoints, **server.endpoints},
                credentials={**settings.credentials, **credentials},
                rates={**rates, **settings.rates},
            )


@dataclass
class Outcome:
    """What the command knows of its run when it ends, however it ends."""

    report: RunReport | None = None
    cache: str | None = None  # the cache the run used, a database's URL masked


def _places(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The files this run reads and those it writes besides -o, by option."""
    reads = {"overrides=": args.overrides, "env_file=": env_file(args)}
    written = {"candidates=": args.candidates, "report=": args.report}
    written["summary_json="] = args.summary_json
    written["changes="] = args.changes
    return reads, written


def summary_target(args: argparse.Namespace) -> str | None:
    """Where this run's summary goes, when it may be written there whatever happens (a
    file, or a device written in place, that the run neither reads nor writes otherwise).
    An earlier run's summary, report, candidates and changes there are removed now: each
    file is this run's, or there is none (a failed night leaves no earlier night's news to
    be sent again). None: no --summary-json, or one the checks will refuse."""
    from .. import tables
    from ..paths import Place, clashes_with, file_places, remove_earlier

    if args.input is None:  # --demo
        args.input = str(demo_sample())
    reads, written = _places(args)
    safe: dict[str, str] = {}
    for option, target in written.items():
        if target is None:
            continue
        rest = {o: t for o, t in written.items() if o != option}
        others = file_places(args.input, args.output, cache_path(args), rest, reads)
        try:
            tables.check_file(target, option)
        except InputError:
            continue  # the run refuses it, naming it, before any request
        if clashes_with(Place(option, target, writes=True), others):
            continue
        remove_earlier(target)
        safe[option] = str(target)
    return safe.get("summary_json=")


def write_summary(target: str, outcome: Outcome, code: int, error: str | None) -> int:
    """The summary file, saying ``code``, the process's exit code; returns it (1 when the
    file itself cannot be written)."""
    from .. import tables

    summary = outcome.report.as_dict() if outcome.report is not None else {}
    summary["exit_code"] = code
    summary["cache"] = outcome.cache
    if error is not None:
        summary["error"] = error
    summary.setdefault("version", package_version())
    try:
        tables.write_text(target, json.dumps(summary, indent=2) + "\n", "summary_json=")
    except (InputError, EnvironmentFailure) as exc:
        log.error("%s", as_flags(str(exc)))
        return code or 1
    return code


async def run(args: argparse.Namespace, outcome: Outcome | None = None) -> int:
    from ..paths import check_places, file_places
    from ..resolver import Resolver

    if args.input is None:  # --demo (main() checked)
        args.input = str(demo_sample())
        log.info("demo: resolving the bundled sample %s", args.input)
    reads, written = _places(args)
    cache = cache_path(args)
    if outcome is not None:
        outcome.cache = None if cache is None else str(cache)
    # Before the cache is opened, the overrides read or anything sent.
    check_places(file_places(args.input, args.output, cache, written, reads))
    if args.summary_json is not None:  # written by the command at exit: checked here
        from .. import tables

        tables.check_file(args.summary_json, "summary_json=")
    _cache_needed(args)
    settings = settings_from(args)
    overrides = _overrides(args)  # read and checked before the local server or any request
    async with (
        _endpoints(args, settings) as settings,
        Resolver(settings=settings, overrides=overrides) as resolver,
    ):
        _install_signal_handlers(resolver)
        report = await resolver.resolve_file(
            args.input,
            args.output,
            column=args.column,
            output_format=args.format,
            input_format=args.input_format,
            sheet=args.sheet,
            title_column=args.title_column,
            artist_column=args.artist_column,
            candidates=args.candidates,
            report=args.report,
            changes=args.changes,
            reads=reads,
        )  # the summary file is the command's: written last, with the exit code
    if outcome is not None:
        outcome.report = report
    _report(report, args)
    return report.exit_code


def _cache_needed(args: argparse.Namespace) -> None:
    """Options that keep what they need in the cache, on a --demo run, which keeps none
    unless told: the advice says so (the library's would say to remove --no-cache)."""
    if cache_path(args) is not None or args.no_cache:
        return
    needs = [flag for flag, given in (("--candidates", args.candidates),
             ("--daily-quota", args.daily_quota)) if given is not None]  # fmt: skip
    if needs:
        verb = "keeps what it needs" if len(needs) == 1 else "keep what they need"
        raise ConfigurationError(
            f"{' and '.join(needs)} {verb} in the cache, and a --demo run keeps none unless "
            "told, so that its made-up answers stay apart: name one with --cache PATH"
        )


def _overrides(args: argparse.Namespace) -> dict[str, Override] | None:
    if args.overrides is None:
        return None
    from .. import tables

    found = tables.read_overrides(args.overrides)
    log.info(
        "overrides: %d ISRCs read from %s (the summary counts those in the input)",
        len(found),
        args.overrides,
    )
    return found


def demo_sample() -> Path:
    """The small catalogue that ships inside the package, for ``--demo`` with no input."""
    return Path(__file__).resolve().parent.parent / "data" / "sample.csv"


def _install_signal_handlers(resolver: Resolver) -> None:
    loop = asyncio.get_running_loop()

    def handler(sig: signal.Signals) -> None:
        log.warning("%s received: stopping, writing what is done", sig.name)
        resolver.interrupt(sig.name)
        # A second signal falls through to the default: Ctrl-C twice exits at once.
        loop.remove_signal_handler(sig)

    # SIGHUP: the terminal or the ssh session went away; the run ends as for SIGTERM.
    hangup = getattr(signal, "SIGHUP", None)
    for sig in (signal.SIGINT, signal.SIGTERM, *([hangup] if hangup else [])):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler, sig)


def _report(report: RunReport, args: argparse.Namespace) -> None:
    fields = report.as_dict()
    # Each message counts what the statuses and the summary count: they must agree.
    s = report.statuses
    if report.stop is not None:
        log.warning(
            "stopped by %s: %d rows rate_limited (not asked), %d kept their earlier answer "
            "(stale); run again after %s",
            "the daily quota" if report.stop.quota else "a long Retry-After",
            s[Status.RATE_LIMITED],
            report.stale,
            format_time(report.stop.resume_at),
            extra={"event": "stopped", "fields": {"resume_at": fields["resume_at"]}},
        )
    if report.spent is not None:
        log.warning(
            "%s reached: %d rows deferred to the next run, %d kept their earlier answer (stale)",
            "--daily-quota" if report.spent.daily else "--max-requests",
            s[Status.DEFERRED],
            report.stale,
        )
    if report.interrupted:
        log.warning(
            "interrupted: %d rows pending (not attempted), %d kept their earlier answer "
            "(stale); run again to finish",
            s[Status.PENDING],
            report.stale,
        )
    # Schedulers read the summary, so -q keeps it (at info level; see configure_logging).
    log.info("summary: %s", report.summary(), extra={"event": "summary", "fields": fields})
