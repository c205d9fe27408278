"""``isrc-resolve``: parse arguments, build a Resolver, run it, turn errors into exit codes.

Behaviour lives in the library; this module only wires it to a terminal and a scheduler.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from . import __version__
from ._logging import configure_logging, redact
from .cache import Cache, default_cache_path
from .client import DEFAULT_API_URL, DEFAULT_TOKEN_URL
from .enrich import Enrichment
from .errors import ConfigurationError, InputError, ResolverError, format_time
from .io import FORMATS
from .models import MatchPreference
from .resolver import DAY, DEFAULT_CONCURRENCY, DEFAULT_RATE, Resolver, RunReport

__all__ = ["EXIT_CODES", "build_parser", "main"]

log = logging.getLogger("isrc_resolver")

EXIT_CODES = {
    0: "every row settled (found, not_found or invalid)",
    1: "some rows ended in error (see the error column), or no access token could be had; "
    "rerun to retry",
    2: "usage, configuration or input error: nothing was resolved",
    3: "stopped by Spotify's rate limit or daily quota; output written, run again later",
    130: "interrupted (SIGINT); output written with unattempted rows 'pending'",
    143: "terminated (SIGTERM); output written with unattempted rows 'pending'",
}

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


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _market(text: str) -> str:
    if len(text) != 2 or not text.isalpha():
        raise argparse.ArgumentTypeError(
            f"expected a 2-letter country code (ISO 3166-1 alpha-2) such as US or GB, got {text!r}"
        )
    return text.upper()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isrc-resolve",
        description="Resolve the ISRCs in a CSV or Parquet file to Spotify tracks, albums "
        "and artists. Every input row is written back with the new columns and a status.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="CSV, TSV or Parquet file to read, or - for standard input")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write (.csv, .tsv or .parquet), or - for CSV on standard output",
    )
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix)")
    p.add_argument(
        "--input-format", choices=FORMATS, help="input format (default: from the input's suffix)"
    )
    p.add_argument(
        "--column",
        metavar="NAME",
        help="the ISRC column (default: the one column named 'isrc', any case)",
    )

    api = p.add_argument_group("Spotify")
    api.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="read credentials from this file (default: ./.env if present)",
    )
    api.add_argument("--api-url", help=f"API base URL (env SPOTIFY_API_URL; {DEFAULT_API_URL})")
    api.add_argument(
        "--token-url", help=f"token endpoint (env SPOTIFY_TOKEN_URL; {DEFAULT_TOKEN_URL})"
    )
    api.add_argument(
        "--market",
        type=_market,
        metavar="CC",
        help="search in this market (ISO country code); default: Spotify's own",
    )
    api.add_argument(
        "--prefer",
        choices=[m.value for m in MatchPreference],
        default="exact",
        help="which of several matches to keep (default: %(default)s; see README)",
    )
    api.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=[],
        metavar="WHAT",
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
        "--demo",
        action="store_true",
        help="run against the bundled local Spotify with demo credentials",
    )

    pace = p.add_argument_group("pace and retries")
    pace.add_argument(
        "--rate",
        type=_positive(float),
        default=DEFAULT_RATE,
        help="ceiling in requests per second (default: %(default)s)",
    )
    pace.add_argument(
        "--no-adaptive",
        action="store_true",
        help="hold --rate instead of backing off after 429s and probing back up",
    )
    pace.add_argument(
        "--concurrency",
        type=_positive(int),
        default=DEFAULT_CONCURRENCY,
        help="requests in flight at once (default: %(default)s)",
    )
    pace.add_argument(
        "--max-retries",
        type=int,
        default=5,
        help="retries of a failed request: 5xx, timeouts, resets (default: %(default)s)",
    )
    pace.add_argument(
        "--max-wait",
        type=_positive(float),
        default=120.0,
        metavar="SECONDS",
        help="longest Retry-After to sit out; longer ones stop the run with exit 3 "
        "(default: %(default)s)",
    )
    pace.add_argument(
        "--timeout",
        type=_positive(float),
        default=30.0,
        metavar="SECONDS",
        help="per-request timeout (default: %(default)s)",
    )

    cache = p.add_argument_group("cache (nightly runs)")
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
        type=_positive(float),
        default=30.0,
        metavar="DAYS",
        help="ask again for hits older than this (default: %(default)s)",
    )
    cache.add_argument(
        "--not-found-max-age",
        type=_positive(float),
        default=7.0,
        metavar="DAYS",
        help="ask again for misses older than this (default: %(default)s)",
    )
    cache.add_argument("--refresh", action="store_true", help="ignore cached results")
    cache.add_argument(
        "--ignore-cooldown",
        action="store_true",
        help="send requests even before a quota stop's resume time",
    )

    out = p.add_argument_group("output and logs")
    out.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar, no summary; warnings and errors only",
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
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


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
    args = build_parser().parse_args(argv)
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
            "internal error: %s: %s", type(exc).__name__, redact(str(exc)), exc_info=args.verbose
        )
        return 1


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Credentials and endpoints from flags, the environment and the .env file."""
    env_file = args.env_file
    if env_file is not None and not env_file.is_file():
        raise ConfigurationError(f"--env-file {env_file} not found")
    env_path = env_file or Path(".env")
    from_file = (
        {k: v for k, v in dotenv_values(env_path).items() if v} if env_path.is_file() else {}
    )

    def lookup(name: str) -> str | None:
        return os.environ.get(name) or from_file.get(name)

    where = f"the environment and {env_path.resolve()}"
    settings: dict[str, Any] = {}
    for name, key in (
        ("SPOTIFY_CLIENT_ID", "client_id"),
        ("SPOTIFY_CLIENT_SECRET", "client_secret"),
    ):
        value = lookup(name)
        if not value:
            raise ConfigurationError(
                f"{name} is not set (looked in {where}); set it there, pass --env-file PATH, "
                "or try --demo"
            )
        settings[key] = value
    settings["api_url"] = args.api_url or lookup("SPOTIFY_API_URL") or DEFAULT_API_URL
    settings["token_url"] = args.token_url or lookup("SPOTIFY_TOKEN_URL") or DEFAULT_TOKEN_URL
    return settings


@contextlib.asynccontextmanager
async def _endpoints(args: argparse.Namespace) -> AsyncIterator[dict[str, Any]]:
    if not args.demo:
        yield _settings(args)
        return
    from .fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeSpotify

    async with FakeSpotify() as server:
        log.info("demo: local Spotify at %s with demo credentials", server.base_url)
        yield {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "api_url": server.api_url,
            "token_url": server.token_url,
        }


async def _run(args: argparse.Namespace) -> int:
    # The demo keeps its made-up answers out of the real cache unless told otherwise.
    cache: Path | bool | None = (
        None if args.no_cache or (args.demo and args.cache is None) else (args.cache or True)
    )
    progress = not args.quiet and sys.stderr.isatty()
    async with _endpoints(args) as endpoints:
        resolver = Resolver(
            **endpoints,
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
            progress=progress,
            with_=args.with_,
            allow_per_album=args.allow_per_album,
        )
        async with resolver:
            _install_signal_handlers(resolver)
            report = await resolver.resolve_file(
                args.input, args.output, column=args.column, output_format=args.format
            )
    _report(report, args)
    return report.exit_code


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
    if report.interrupted:
        log.warning("interrupted: rows not attempted are marked pending; run again to finish")
    if not args.quiet or args.log_format == "json":
        log.log(
            logging.WARNING if args.quiet else logging.INFO,
            "summary: %s",
            report.summary(),
            extra={"event": "summary", "fields": fields},
        )


def _cache_command(args: argparse.Namespace) -> int:
    configure_logging(verbose=False, quiet=False, json_format=False)
    path = args.cache or default_cache_path()
    if not path.exists():
        print(f"no cache at {path}")
        return 0
    cache = Cache(path)
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
    return 0
