"""``isrc-resolve``: pick the command, parse its arguments, run it, turn errors into exit
codes. Each command lives beside its options: :mod:`.run`, :mod:`.plan`, :mod:`.cache`.

Behaviour lives in the library; this package only wires it to a terminal and a scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from .._logging import configure_logging, redact
from ..errors import (
    ConfigurationError,
    EnvironmentFailure,
    InputError,
    ResolverError,
    is_environment,
)
from . import cache as cache_command
from . import export as export_command
from . import plan as plan_command
from . import review as review_command
from . import run as run_command
from .options import AsFlags, add_settings_arguments, as_flags

__all__ = ["EXIT_CODES", "build_parser", "main"]

log = logging.getLogger("isrc_resolver")

EXIT_CODES = {
    0: "every row settled (found, not_found or invalid)",
    1: "some rows ended in error (see the error column), no access token could be had, or "
    "the machine refused (a full disk, a read-only file, no permission, a lock, a closed "
    "pipe; the message names the path): rerun once fixed, it continues",
    2: "usage, configuration, input or cache error found before any request: nothing was resolved",
    3: "stopped by Spotify's rate limit or daily quota, or by --max-requests; output written, "
    "run again later",
    70: "internal error: a bug, not a flaky night (sysexits EX_SOFTWARE); please report it",
    130: "interrupted (SIGINT); output written with unattempted rows 'pending'",
    143: "terminated (SIGTERM); output written with unattempted rows 'pending'",
    129: "hung up (SIGHUP: the terminal or session closed); output written with unattempted "
    "rows 'pending'",
}
EXIT_INTERNAL = 70

_EPILOG = (
    """\
exit codes:
"""
    + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
    + """

credentials come from SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET, in the environment or
a .env file (see --env-file). Try it without any: isrc-resolve --demo INPUT -o OUTPUT

cache commands:
  isrc-resolve cache info [--cache PATH]    entries, hits and misses, ages, cooldown
  isrc-resolve cache clear [--cache PATH]   delete every cached result and the cooldown
  isrc-resolve cache clear --cooldown       end the cooldowns only (answers and ledger kept)
  isrc-resolve cache info --format json     for monitoring: requests per day, cooldown, ages
  isrc-resolve cache backup PATH            a consistent copy of a live cache
  isrc-resolve cache history ISRC           every store's answer for one ISRC, now and before
  isrc-resolve cache export PATH [options]  every answer as one table (Parquet or CSV), for
                                            the scope a run with those options uses
  isrc-resolve cache copy SRC DST           merge one cache into another (a file into a
                                            team's postgresql:// database, say)

the cache is a file, or a PostgreSQL database several hosts share: --cache or
ISRC_RESOLVER_CACHE=postgresql://USER:PASSWORD@HOST:PORT/DB (its password is never shown)
"""
)


_USAGE = """
  isrc-resolve INPUT -o OUTPUT [options]
  isrc-resolve --demo [INPUT] -o OUTPUT [options]
  isrc-resolve plan INPUT [options] [--format {text,json}]
  isrc-resolve cache {info,clear,backup,history,copy} [PATH|ISRC|SRC DST] [--cache PATH|URL]
  isrc-resolve review OUTPUT [-o REVIEW.csv]
  (an input file called 'cache', 'plan' or 'review' is ./cache, ./plan or ./review)"""


def build_parser(*, plan: bool = False) -> argparse.ArgumentParser:
    """The main command's parser; ``plan``: the same options for ``isrc-resolve plan``,
    which reads the input and the cache and prints what a run would send."""
    p = argparse.ArgumentParser(
        prog="isrc-resolve plan" if plan else "isrc-resolve",
        usage=_USAGE,
        description=(
            "Say what a run over INPUT would do: rows, ISRCs, cache hits, the requests it "
            "needs and, with --daily-quota, the nights. Sends nothing, not even for a token."
            if plan
            else "Resolve the ISRCs in a CSV or Parquet file to Spotify tracks, albums "
            "and artists. Every input row is written back with the new columns and a status."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    (plan_command.add_arguments if plan else run_command.add_arguments)(p)
    add_settings_arguments(p)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A run makes millions of small objects that live until it ends (answers, rows, the
    # texts written) and almost no reference cycles: at the collector's default pace (a
    # pass every 700 new objects) a warm run over 200,000 cached answers spent a fifth of
    # its time walking them. A process-wide setting, so the command sets it, not the
    # library.
    gc.set_threshold(50_000, 20, 20)
    if argv[:2] == ["cache", "export"]:
        args = export_command.build_parser().parse_args(argv[2:])
        _logs(verbose=args.verbose, quiet=args.quiet, json_format=args.log_format == "json")
        return _exit_code(lambda: export_command.export(args), verbose=args.verbose)
    if argv[:1] == ["cache"]:
        args = cache_command.build_parser().parse_args(argv[1:])
        _logs(verbose=False, quiet=False, json_format=False)
        return _exit_code(lambda: cache_command.cache_command(args), verbose=False)
    if argv[:1] == ["review"]:
        args = review_command.build_parser().parse_args(argv[1:])
        _logs(verbose=False, quiet=False, json_format=False)
        return _exit_code(lambda: review_command.review(args), verbose=False)
    if argv[:1] == ["plan"]:
        args = build_parser(plan=True).parse_args(argv[1:])
        _logs(verbose=args.verbose, quiet=args.quiet, json_format=args.log_format == "json")
        return _exit_code(lambda: plan_command.plan(args), verbose=args.verbose)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input is None and not args.demo:
        parser.error("the input file is required (or - for standard input; --demo has one)")
    _logs(verbose=args.verbose, quiet=args.quiet, json_format=args.log_format == "json")
    # The summary file is written on every exit, with the process's exit code.
    outcome, said = run_command.Outcome(), _Said()
    summary = _summary_target(args, said)
    code = said.code
    if code is None:
        command = lambda: asyncio.run(run_command.run(args, outcome))  # noqa: E731
        code = _exit_code(command, verbose=args.verbose, said=said)
    if summary is None:
        return code
    return run_command.write_summary(summary, outcome, code, said.error)


class _Said(logging.Handler):
    """The last error the command logged, and an exit code decided early."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.error: str | None = None
        self.code: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.error = as_flags(record.getMessage())


def _summary_target(args: argparse.Namespace, said: _Said) -> str | None:
    """The summary file to write at exit (see ``run.summary_target``, which also removes
    an earlier run's files); a folder that will not let them be removed ends the command
    here (``said.code``)."""
    found: list[str | None] = []

    def find() -> int:
        found.append(run_command.summary_target(args))
        return 0

    code = _exit_code(find, verbose=args.verbose, said=said)
    if code:
        said.code = code
    return found[0] if found else None


def _logs(*, verbose: bool, quiet: bool, json_format: bool) -> None:
    logger = configure_logging(verbose=verbose, quiet=quiet, json_format=json_format)
    for handler in logger.handlers:  # the library names parameters; here they are flags
        if not any(isinstance(f, AsFlags) for f in handler.filters):
            handler.addFilter(AsFlags())


def _exit_code(
    command: Callable[[], int], *, verbose: bool, said: logging.Handler | None = None
) -> int:
    """Run ``command``; its errors become a message and an exit code (``said`` hears the
    command's errors as they are logged)."""
    if said is not None:
        log.addHandler(said)
    try:
        return _run(command, verbose)
    finally:
        if said is not None:
            log.removeHandler(said)


def _run(command: Callable[[], int], verbose: bool) -> int:
    try:
        return command()
    except (ConfigurationError, InputError) as exc:
        log.error("%s", as_flags(str(exc)))
        return 2
    except EnvironmentFailure as exc:
        return _environment_failed(exc)
    except OSError as exc:
        if not is_environment(exc):
            return _internal_error(exc, verbose)
        doing = "the machine refused what the run needed"
        return _environment_failed(EnvironmentFailure.from_os(exc, doing, None))
    except ResolverError as exc:
        log.error("%s", as_flags(str(exc)))
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:
        return _internal_error(exc, verbose)


def _environment_failed(exc: EnvironmentFailure) -> int:
    """Exit 1: the machine's failure, told in one line (a closed pipe in none: the reader
    of standard output went away, as ``| head`` does, and that is no news)."""
    if exc.errno == errno.EPIPE and exc.path == "standard output":
        # Python would try to flush the dead pipe again at exit and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        log.debug("%s", exc)
        return 1
    log.error("%s", as_flags(str(exc)))
    return 1


def _internal_error(exc: BaseException, verbose: bool) -> int:
    log.error(
        "internal error (a bug; please report it with the -v output): %s: %s",
        type(exc).__name__,
        redact(str(exc)),
        exc_info=verbose,
    )
    return EXIT_INTERNAL
