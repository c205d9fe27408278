"""``isrc-resolve``: parse arguments, build a Resolver, run it, turn errors into exit codes.

Behaviour lives in the library; this module only wires it to a terminal and a scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__
from ._logging import configure_logging, redact
from .cache import default_cache_path
from .errors import CacheError, ConfigurationError, InputError, ResolverError, format_time
from .models import Enrichment, FallbackSearch, MatchPreference, Status
from .schema import FORMATS
from .settings import (
    DAY,
    DEFAULT_API_URL,
    DEFAULT_TOKEN_URL,
    ENV_API_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    Settings,
    default,
)

if TYPE_CHECKING:
    from .models import RunReport
    from .plan import Forecast
    from .resolver import Resolver

__all__ = ["EXIT_CODES", "build_parser", "main"]

log = logging.getLogger("isrc_resolver")

EXIT_CODES = {
    0: "every row settled (found, not_found or invalid)",
    1: "some rows ended in error (see the error column), or no access token could be had; "
    "rerun to retry",
    2: "usage, configuration or input error: nothing was resolved",
    3: "stopped by Spotify's rate limit or daily quota, or by --max-requests; output written, "
    "run again later",
    70: "internal error: a bug, not a flaky night (sysexits EX_SOFTWARE); please report it",
    130: "interrupted (SIGINT); output written with unattempted rows 'pending'",
    143: "terminated (SIGTERM); output written with unattempted rows 'pending'",
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
"""
)


class _Options(Protocol):
    """What the argument builders need of a parser or an argument group."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


def _number(
    kind: type[float] | type[int],
    *,
    least: float = 0,
    open_: bool = True,
    most: float = math.inf,
) -> Any:
    """A parser for a finite number above ``least`` (or at least ``least``), and at most
    ``most``."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < least or (open_ and value == least):
            relation = "greater than" if open_ else "at least"
            raise argparse.ArgumentTypeError(f"must be {relation} {least:g}, got {text}")
        if value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:g}, got {text}")
        return value

    return parse


_positive_float = _number(float)
_positive_int = _number(int)


_score = _number(float, open_=False, most=100)  # a similarity, 0 to 100


def _market(text: str) -> str:
    if len(text) != 2 or not (text.isascii() and text.isalpha()):
        raise argparse.ArgumentTypeError(
            f"expected a 2-letter country code (ISO 3166-1 alpha-2) such as US or GB, got {text!r}"
        )
    return text.upper()


_USAGE = """
  isrc-resolve INPUT -o OUTPUT [options]
  isrc-resolve --demo [INPUT] -o OUTPUT [options]
  isrc-resolve plan INPUT [options] [--format {text,json}]
  isrc-resolve cache {info,clear} [--cache PATH]
  (an input file called 'cache' or 'plan' is ./cache or ./plan)"""


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
    if plan:
        _plan_arguments(p)
    else:
        _files_arguments(p)
    _spotify_arguments(p.add_argument_group("Spotify"))
    _match_arguments(p.add_argument_group("which match"))
    _pace_arguments(p.add_argument_group("pace and retries"))
    _cache_arguments(p.add_argument_group("cache (nightly runs)"))
    _output_arguments(p.add_argument_group("output and logs"))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _files_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        nargs="?",
        help="CSV, TSV or Parquet file to read, or - for standard input "
        "(with --demo, default: a small bundled sample)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="file to write (.csv, .tsv or .parquet), or - for CSV on standard output",
    )
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix)")
    p.add_argument(
        "--input-format",
        choices=FORMATS,
        help="input format (default: from the input's suffix; CSV for standard input)",
    )
    p.add_argument(
        "--column",
        metavar="NAME",
        help="the ISRC column (default: the one column named 'isrc', any case)",
    )
    _hint_arguments(p)


def _hint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--title-column",
        metavar="NAME",
        help="the title column (default: title, track, track_name or song, any case), for "
        "the title/artist search and match_check",
    )
    p.add_argument(
        "--artist-column",
        metavar="NAME",
        help="the artist column (default: artist, artist_name or artists, any case)",
    )


def _plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="CSV, TSV or Parquet file to read, or - for standard input")
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: one object (rows, unique, invalid, duplicates, fresh, stale, new, "
        "requests, requests_max, nights, ...)",
    )
    p.add_argument("--input-format", choices=FORMATS, help="input format (default: its suffix)")
    p.add_argument("--column", metavar="NAME", help="the ISRC column (default: 'isrc')")
    _hint_arguments(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="not used: accepted so that 'plan' can go in front of a run's own command",
    )


def _spotify_arguments(api: _Options) -> None:
    api.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="read credentials from this file (default: ./.env if present)",
    )
    api.add_argument(
        "--api-url", metavar="URL", help=f"API base URL (env SPOTIFY_API_URL; {DEFAULT_API_URL})"
    )
    api.add_argument(
        "--token-url",
        metavar="URL",
        help=f"token endpoint (env SPOTIFY_TOKEN_URL; {DEFAULT_TOKEN_URL})",
    )
    api.add_argument(
        "--market",
        type=_market,
        metavar="CC",
        help="search in this market (ISO country code); default: Spotify's own",
    )
    api.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=[],
        choices=[e.value for e in Enrichment],
        help="add columns: 'album' (label, UPC, total tracks, genres) or 'audio-features'; "
        "repeat for both. Costs extra requests, batched",
    )
    api.add_argument(
        "--allow-per-album",
        action="store_true",
        help="with --with album: if the batch endpoint answers 403, fetch albums one at a "
        "time, one request each",
    )
    api.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// --api-url or --token-url on another machine (the "
        "credentials then cross the network unencrypted); loopback needs no flag",
    )
    api.add_argument(
        "--demo",
        action="store_true",
        help="run against the bundled local Spotify with demo credentials; with no INPUT, "
        "resolve the bundled sample",
    )


def _match_arguments(match: _Options) -> None:
    match.add_argument(
        "--prefer",
        choices=[m.value for m in MatchPreference],
        default=default("prefer").value,
        help="which of several matches to keep (default: %(default)s; see README)",
    )
    match.add_argument(
        "--fallback-markets",
        metavar="SPEC",
        default=",".join(default("fallback_markets")),
        help="after a miss in the first market, search these markets in order until found: "
        "market codes and 'isrc' (the ISRC's own country, when a Spotify market); 'none' "
        "for no fallback (default: %(default)s)",
    )
    match.add_argument(
        "--fallback-search",
        choices=[f.value for f in FallbackSearch],
        default=default("fallback_search").value,
        help="a miss in every market gets one title/artist search when the input has title "
        "and artist columns: 'verified' accepts only a track carrying the ISRC, 'fuzzy' also "
        "the best match scoring --min-score or more, 'off' none (default: %(default)s)",
    )
    match.add_argument(
        "--min-score",
        type=_score,
        default=default("min_score"),
        metavar="N",
        help="title/artist similarity, 0-100, for 'fuzzy' and for match_check (default: "
        "%(default)g)",
    )


def _pace_arguments(pace: _Options) -> None:
    pace.add_argument(
        "--rate",
        type=_positive_float,
        default=default("rate"),
        metavar="N",
        help="ceiling in requests per second (default: %(default)g)",
    )
    pace.add_argument(
        "--no-adaptive",
        action="store_true",
        help="hold --rate instead of backing off after 429s and probing back up",
    )
    pace.add_argument(
        "--concurrency",
        type=_positive_int,
        default=default("concurrency"),
        metavar="N",
        help="requests in flight at once (default: %(default)s)",
    )
    pace.add_argument(
        "--max-retries",
        type=_number(int, open_=False),
        default=default("max_retries"),
        metavar="N",
        help="retries of a failed request: 5xx, timeouts, resets, non-JSON bodies "
        "(default: %(default)s)",
    )
    pace.add_argument(
        "--max-wait",
        type=_positive_float,
        default=default("max_wait"),
        metavar="SECONDS",
        help="longest Retry-After to sit out; longer ones stop the run with exit 3 "
        "(default: %(default)g)",
    )
    pace.add_argument(
        "--timeout",
        type=_positive_float,
        default=default("timeout"),
        metavar="SECONDS",
        help="per-request timeout (default: %(default)g)",
    )


def _cache_arguments(cache: _Options) -> None:
    cache.add_argument(
        "--cache", type=Path, metavar="PATH", help=f"cache file (default: {default_cache_path()})"
    )
    cache.add_argument(
        "--no-cache",
        action="store_true",
        help="use no cache and keep nothing on disk (no token file either)",
    )
    cache.add_argument(
        "--max-age",
        type=_positive_float,
        default=default("max_age") / DAY,
        metavar="DAYS",
        help="ask again for hits older than this (default: %(default)g)",
    )
    cache.add_argument(
        "--not-found-max-age",
        type=_positive_float,
        default=default("not_found_max_age") / DAY,
        metavar="DAYS",
        help="ask again for misses older than this (default: %(default)g)",
    )
    cache.add_argument(
        "--max-requests",
        type=_number(int, open_=False),
        metavar="N",
        help="send at most N API requests in this run (token requests aside); rows not "
        "reached keep a cached answer or are 'deferred' (exit 3)",
    )
    cache.add_argument(
        "--daily-quota",
        type=_positive_int,
        metavar="N",
        help="the account's allowance in any 24 hours: stop before the request that would "
        "exceed it, counting every run's requests in the cache's ledger; rows not reached "
        "are kept or 'deferred' (exit 3)",
    )
    cache.add_argument(
        "--account",
        metavar="NAME",
        help="the name the ledger and the cooldown are kept under (default: the client "
        "id at the API URL); give apps of one developer account the same name",
    )
    cache.add_argument(
        "--refresh",
        action="store_true",
        help="ignore cached results (still writes fresh ones)",
    )
    cache.add_argument(
        "--ignore-cooldown",
        action="store_true",
        help="send requests even before a quota stop's resume time",
    )


def _output_arguments(out: _Options) -> None:
    out.add_argument(
        "--no-escape-formulas",
        action="store_true",
        help="write text from Spotify into CSV/TSV as it is, even when it starts with = + - @ "
        "(by default such cells get a leading ' so spreadsheets do not run them)",
    )
    out.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar; warnings, errors and the summary line only (the summary is "
        "logged at info level, for schedulers)",
    )
    out.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logs: each request's ISRC, status and wait (never a secret)",
    )
    out.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="json: one JSON object per line, for schedulers",
    )


def build_cache_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isrc-resolve cache", description="Inspect or clear the cache."
    )
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument(
        "--cache", type=Path, metavar="PATH", help=f"cache file (default: {default_cache_path()})"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cache"]:
        return _cache_command(build_cache_parser().parse_args(argv[1:]))
    if argv[:1] == ["plan"]:
        return _plan_command(build_parser(plan=True).parse_args(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input is None and not args.demo:
        parser.error("the input file is required (or - for standard input; --demo has one)")
    configure_logging(verbose=args.verbose, quiet=args.quiet, json_format=args.log_format == "json")
    try:
        return asyncio.run(_run(args))
    except (ConfigurationError, InputError) as exc:
        log.error("%s", exc)
        return 2
    except ResolverError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:
        log.error(
            "internal error (a bug; please report it with the -v output): %s: %s",
            type(exc).__name__,
            redact(str(exc)),
            exc_info=args.verbose,
        )
        return EXIT_INTERNAL


def _environment(env_file: Path | None) -> tuple[dict[str, str], str]:
    """The environment, over the values of the .env file; and where that looked."""
    if env_file is not None and not env_file.is_file():
        raise ConfigurationError(f"--env-file {env_file} not found")
    from dotenv import dotenv_values

    path = env_file or Path(".env")
    from_file = {k: v for k, v in dotenv_values(path).items() if v} if path.is_file() else {}
    environ = {**from_file, **{k: v for k, v in os.environ.items() if v}}
    return environ, f"the environment and {path.resolve()}"


def _credentials(args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """Where credentials come from: the demo's, or the environment and .env file."""
    if args.demo:
        from .fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

        return {
            ENV_CLIENT_ID[0]: DEMO_CLIENT_ID,
            ENV_CLIENT_SECRET[0]: DEMO_CLIENT_SECRET,
        }, "the demo"
    return _environment(args.env_file)


def _settings(
    args: argparse.Namespace, credentials: tuple[dict[str, str], str] | None = None
) -> Settings:
    """One Settings from the flags, the environment and the .env file."""
    environ, looked_in = credentials or _credentials(args)
    # The demo keeps its made-up answers out of the real cache unless told otherwise.
    cache = None if args.no_cache or (args.demo and args.cache is None) else (args.cache or True)
    return Settings.build(
        environ=environ,
        looked_in=looked_in,
        remedy="set it there, pass --env-file PATH, or try --demo",
        api_url=args.api_url,
        token_url=args.token_url,
        market=args.market,
        prefer=args.prefer,
        rate=args.rate,
        adaptive=not args.no_adaptive,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        max_wait=args.max_wait,
        timeout=args.timeout,
        cache=cache,
        max_age=args.max_age * DAY,
        not_found_max_age=args.not_found_max_age * DAY,
        refresh=args.refresh,
        ignore_cooldown=args.ignore_cooldown,
        progress=not args.quiet and sys.stderr.isatty(),
        with_=args.with_,
        allow_per_album=args.allow_per_album,
        escape_formulas=not args.no_escape_formulas,
        allow_insecure_http=args.allow_insecure_http,
        max_requests=args.max_requests,
        daily_quota=args.daily_quota,
        account=args.account,
        fallback_markets=args.fallback_markets,
        fallback_search=args.fallback_search,
        min_score=args.min_score,
    )


@contextlib.asynccontextmanager
async def _endpoints(args: argparse.Namespace, settings: Settings) -> AsyncIterator[Settings]:
    """``settings``, pointed at the bundled local Spotify for the length of a --demo run."""
    if not args.demo:
        yield settings
        return
    from .fake import FakeSpotify

    async with FakeSpotify() as server:
        log.info("demo: local Spotify at %s with demo credentials", server.base_url)
        yield settings.evolve(api_url=server.api_url, token_url=server.token_url)


async def _run(args: argparse.Namespace) -> int:
    from .resolver import Resolver

    settings = _settings(args)
    if args.input is None:  # --demo (main() checked)
        args.input = str(demo_sample())
        log.info("demo: resolving the bundled sample %s", args.input)
    async with _endpoints(args, settings) as settings, Resolver(settings=settings) as resolver:
        _install_signal_handlers(resolver)
        report = await resolver.resolve_file(
            args.input,
            args.output,
            column=args.column,
            output_format=args.format,
            input_format=args.input_format,
            title_column=args.title_column,
            artist_column=args.artist_column,
        )
    _report(report, args)
    return report.exit_code


def demo_sample() -> Path:
    """The small catalogue that ships inside the package, for ``--demo`` with no input."""
    return Path(__file__).resolve().parent / "data" / "sample.csv"


def _install_signal_handlers(resolver: Resolver) -> None:
    loop = asyncio.get_running_loop()

    def handler(sig: signal.Signals) -> None:
        log.warning("%s received: stopping, writing what is done", sig.name)
        resolver.interrupt(sig.name)
        # A second signal falls through to the default: Ctrl-C twice exits at once.
        loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler, sig)


def _report(report: RunReport, args: argparse.Namespace) -> None:
    fields = report.as_dict()
    if report.stop is not None:
        log.warning(
            "stopped by %s: rows not resolved are marked rate_limited; run again after %s",
            "the daily quota" if report.stop.quota else "a long Retry-After",
            format_time(report.stop.resume_at),
            extra={"event": "stopped", "fields": {"resume_at": fields["resume_at"]}},
        )
    if report.spent is not None:
        log.warning(
            "%s reached: %d rows deferred to the next run, %d kept their earlier answer",
            "--daily-quota" if report.spent.daily else "--max-requests",
            report.statuses[Status.DEFERRED],
            report.stale,
        )
    if report.interrupted:
        log.warning("interrupted: rows not attempted are marked pending; run again to finish")
    # Schedulers read the summary, so -q keeps it (at info level; see configure_logging).
    log.info("summary: %s", report.summary(), extra={"event": "summary", "fields": fields})


def _plan_command(args: argparse.Namespace) -> int:
    """``isrc-resolve plan``: read the input and the cache, print what a run would send."""
    configure_logging(verbose=args.verbose, quiet=args.quiet, json_format=args.log_format == "json")
    try:
        forecast = _forecast(args)
    except (ConfigurationError, InputError) as exc:
        log.error("%s", exc)
        return 2
    if args.format == "json":
        print(json.dumps(forecast.as_dict()))
        return 0
    f = forecast
    lines = [
        ("rows", f"{f.rows}"),
        ("unique", f"{f.unique} valid ISRCs ({f.invalid} invalid, {f.duplicates} duplicates)"),
        ("fresh", f"{f.fresh} cached answers within their age: no request"),
        ("stale", f"{f.stale} cached answers past their age: asked again (kept if not)"),
        ("new", f"{f.new} never asked"),
        ("requests", f"{f.requests} for a full run ({f.requests_max} at most)"),
    ]
    if f.daily_quota is not None:
        used = (
            "the ledger was not read (no credentials)"
            if f.used_24h is None
            else f"{f.used_24h} sent in the last 24 h"
        )
        lines.append(("quota", f"{f.daily_quota} a day; {used}"))
    if f.room_tonight is not None:
        lines.append(("tonight", f"room for {f.room_tonight} requests"))
    nights = "never, with --max-requests 0" if f.nights is None else str(f.nights)
    lines.append(("nights", nights))
    for label, text in lines:
        print(f"{label + ':':<10} {text}")
    return 0


def _forecast(args: argparse.Namespace) -> Forecast:
    from . import io
    from .cache import Cache
    from .plan import forecast

    settings, known = _plan_settings(args)
    with io.open_input(
        args.input,
        column=args.column,
        input_format=args.input_format,
        title_column=args.title_column,
        artist_column=args.artist_column,
    ) as source:
        cache = Cache(settings.cache) if settings.cache and settings.cache.exists() else None
        try:
            titles = source.hint_columns.usable
            return forecast(source.isrc_chunks(), cache, settings, ledger=known, titles=titles)
        finally:
            if cache is not None:
                cache.close()


def _plan_settings(args: argparse.Namespace) -> tuple[Settings, bool]:
    """The run's settings for a plan, and whether the account is known. Without
    credentials the plan still counts everything but the account's ledger."""
    environ, looked_in = _credentials(args)
    known = all(any(environ.get(n) for n in names) for names in (ENV_CLIENT_ID, ENV_CLIENT_SECRET))
    if not known:
        environ = {**environ, ENV_CLIENT_ID[0]: "-", ENV_CLIENT_SECRET[0]: "-"}
        log.info("plan: no credentials in %s, so the quota ledger is not read", looked_in)
    if args.demo:
        environ[ENV_API_URL] = "http://127.0.0.1/v1"  # the local server's, as cache keys see it
    return _settings(args, (environ, looked_in)), known


def _cache_command(args: argparse.Namespace) -> int:
    configure_logging(verbose=False, quiet=False, json_format=False)
    path = args.cache or default_cache_path()
    if not path.exists():
        print(f"no cache at {path}")
        return 0
    from .cache import Cache, remove_cache

    try:
        cache = Cache(path)
    except CacheError as exc:
        if args.action != "clear":
            log.error("%s", exc)
            return 2
        try:
            remove_cache(path)
            Cache(path).close()
        except CacheError as again:
            log.error("%s", again)
            return 2
        print(f"the cache at {path} could not be read; replaced it with an empty one")
        return 0
    try:
        if args.action == "clear":
            removed = cache.clear()
            print(f"cleared {removed} cached results and the cooldown from {path}")
            return 0
        info = cache.info()
    finally:
        cache.close()

    def when(ts: float | None) -> str:
        return format_time(datetime.fromtimestamp(ts, UTC)) if ts else "-"

    print(f"cache:     {info.path} ({info.size_bytes / 1e6:.1f} MB)")
    print(f"entries:   {info.entries} ({info.found} found, {info.not_found} not found)")
    print(f"oldest:    {when(info.oldest)}")
    print(f"newest:    {when(info.newest)}")
    print(f"cooldown:  {'until ' + when(info.cooldown_until) if info.cooldown_until else 'none'}")
    for account in info.accounts:
        # One line per account: what the --daily-quota check counts, and when room frees up.
        cooldown = (
            f"; cooldown until {when(account.cooldown_until)}" if account.cooldown_until else ""
        )
        print(
            f"account:   {account.account}: {account.requests} requests in the last 24 h"
            + (
                f", the oldest leaves the window at {when(account.oldest)}"
                if account.oldest
                else ""
            )
            + cooldown
        )
    return 0
