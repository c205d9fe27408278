"""The options the run and ``plan`` share, and the way from flags to :class:`Settings`.

Each option of :class:`~isrc_resolver.settings.Settings` is named once here, with its
Settings field as its ``dest``: :func:`settings_from` hands every such field the parser
has to :meth:`Settings.build`, which owns the defaults and the rules. :func:`as_flags`
turns the library's words for a parameter (``token_url=``) into the flag (``--token-url``)
in messages shown on the command line.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

from ..models import Enrichment, FallbackSearch, MatchPreference
from ..provider import catalogues
from ..settings import (
    DAY,
    DEFAULT_API_URL,
    DEFAULT_TOKEN_URL,
    Settings,
    default,
    store_options,
)
from .sources import (
    cache_argument,
    cache_exists,
    cache_option,
    cache_path,
    credentials,
    env_file,
)

__all__ = [
    "add_settings_arguments",
    "as_flags",
    "cache_argument",
    "cache_exists",
    "cache_path",
    "credentials",
    "env_file",
    "hint_arguments",
    "number",
    "settings_from",
    "sheet_argument",
]

# Messages of the library name parameters (``token_url=``, ``cache=None``); here they are
# flags. Most flags are their parameter's name with dashes; these are not.
_SPOKEN = {
    "cache=None": "--no-cache",
    "adaptive=False": "--no-adaptive",
    "escape_formulas=False": "--no-escape-formulas",
    "with_=": "--with",
    "output_format=": "--format",
    "output=": "-o",
    "input=": "the input",
    "client_id=": "SPOTIFY_CLIENT_ID",
    "client_secret=": "SPOTIFY_CLIENT_SECRET",
}
_PARAMETER = re.compile(r"\b([a-z][a-z_]*)=(True|False|None)?")
_SETTINGS = frozenset(f.name for f in fields(Settings)) | frozenset(store_options())
_FLAGGED = _SETTINGS | {"column", "input_format", "title_column", "artist_column"}
_FLAGGED |= {"overrides", "candidates", "report", "summary_json", "env_file", "changes", "sheet"}


class _Options(Protocol):
    """What the argument builders need of a parser or an argument group."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


def as_flags(message: str) -> str:
    """``message`` with each parameter the CLI has a flag for named by that flag."""

    def flag(match: re.Match[str]) -> str:
        spoken = _SPOKEN.get(match[0]) or _SPOKEN.get(f"{match[1]}=")
        if spoken is not None:
            return spoken
        if match[1] in _FLAGGED and match[2] in (None, "True"):
            return "--" + match[1].replace("_", "-")
        return match[0]

    return _PARAMETER.sub(flag, message)


class AsFlags(logging.Filter):
    """Log messages of the library, told in flags (see :func:`as_flags`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = record.getMessage(), None
        record.msg = as_flags(str(record.msg))
        return True


def number(
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


_positive_float = number(float)
_positive_int = number(int)


_score = number(float, open_=False, most=100)  # a similarity, 0 to 100


def _days(text: str) -> float:
    """A number of days (:meth:`Settings.build` keeps ages in seconds)."""
    return float(_positive_float(text))


def _market(text: str) -> str:
    if len(text) != 2 or not (text.isascii() and text.isalpha()):
        raise argparse.ArgumentTypeError(
            f"expected a 2-letter country code (ISO 3166-1 alpha-2) such as US or GB, got {text!r}"
        )
    return text.upper()


def hint_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--title-column",
        metavar="NAME",
        help="the title column (default: the first of Title, Track Title, Song Title, Track, "
        "Track Name, Song..., any case), for the title/artist search and match_check",
    )
    p.add_argument(
        "--artist-column",
        metavar="NAME",
        help="the artist column (default: the first of Artist, Main Artist, Primary Artist, "
        "Artist Name, Artists..., any case)",
    )


def _sheet(text: str) -> str | int:
    """A sheet by its 0-based index (digits) or its name."""
    return int(text) if text.isdigit() else text


def sheet_argument(p: _Options) -> None:
    p.add_argument(
        "--sheet",
        type=_sheet,
        metavar="NAME|INDEX",
        help="a workbook's sheet, by name or 0-based index (default: the first sheet with an "
        "ISRC column)",
    )


def overrides_argument(p: _Options) -> None:
    p.add_argument(
        "--overrides",
        metavar="PATH",
        help="answers you pinned: a CSV, TSV or Parquet file with isrc and spotify_track_id "
        "(an id, an open.spotify.com link, or none for not on Spotify) and an optional "
        "note; those ISRCs are not searched (a review file, once edited, is one)",
    )


def add_settings_arguments(p: argparse.ArgumentParser) -> None:
    """The options a run and ``plan`` share, in their groups."""
    _spotify_arguments(p.add_argument_group("Spotify"))
    _second_arguments(p.add_argument_group("the stores beside Spotify"))
    _match_arguments(p.add_argument_group("which match"))
    _pace_arguments(p.add_argument_group("pace and retries"))
    nightly = p.add_argument_group("cache (nightly runs)")
    _cache_arguments(nightly)
    _budget_arguments(nightly)
    _output_arguments(p.add_argument_group("output and logs"))


def _spotify_arguments(api: _Options) -> None:
    api.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="read credentials from this file (default: ./.env if present)",
    )
    api.add_argument(
        "--api-url",
        metavar="URL",
        help=f"API base URL (env SPOTIFY_API_URL; {DEFAULT_API_URL})",
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


def _second_arguments(second: _Options) -> None:
    stores = catalogues()
    second.add_argument(
        "--providers",
        metavar="LIST",
        help="the stores to ask, comma-separated, in the order their names are preferred: "
        f"any of spotify (the default), {', '.join(stores)}. The others go before Spotify "
        "(no daily quota): ids, links and a status per store, found_on, a cross-check, and "
        "titles for Spotify's title/artist search; without spotify, no Spotify credentials "
        "are needed and every row's status is not_asked",
    )
    for spec in stores.values():
        for e in spec.endpoints:
            second.add_argument(e.flag, metavar="URL", help=f"{e.what} (env {e.env}; {e.default})")
        second.add_argument(
            f"--{spec.name}-rate",
            dest=spec.rate_option,
            type=_positive_float,
            metavar="N",
            help=f"the most {spec.label} requests per second (default: {spec.rate:g}); {spec.note}",
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
        dest="adaptive",
        action="store_false",
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
        type=number(int, open_=False),
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
    cache_option(cache, "the cache")
    cache.add_argument(
        "--no-cache",
        action="store_true",
        help="use no cache and keep nothing on disk (no token file either)",
    )
    cache.add_argument(
        "--max-age",
        type=_days,
        default=default("max_age") / DAY,
        metavar="DAYS",
        help=f"ask again for hits older than this (default: {default('max_age') / DAY:g})",
    )
    cache.add_argument(
        "--not-found-max-age",
        type=_days,
        default=default("not_found_max_age") / DAY,
        metavar="DAYS",
        help="ask again for misses older than this "
        f"(default: {default('not_found_max_age') / DAY:g})",
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


def _budget_arguments(cache: _Options) -> None:
    cache.add_argument(
        "--max-requests",
        type=number(int, open_=False),
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


def _output_arguments(out: _Options) -> None:
    out.add_argument(
        "--no-escape-formulas",
        dest="escape_formulas",
        action="store_false",
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


def settings_from(
    args: argparse.Namespace, found: tuple[dict[str, str], str] | None = None
) -> Settings:
    """One Settings from the flags, the environment and the .env file (``found``: the
    credentials' place, when the caller looked already)."""
    environ, looked_in = found or credentials(args)
    given = {k: v for k, v in vars(args).items() if k in _SETTINGS and k != "cache"}
    cache = cache_path(args)
    return Settings.build(
        environ=environ,
        looked_in=looked_in,
        remedy="set it there, pass --env-file PATH, or try --demo",
        cache=cache,
        progress=not args.quiet and sys.stderr.isatty(),
        **given,
    )
