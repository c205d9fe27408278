"""``isrc-resolve cache {info,clear,backup,history,copy}``: look into the cache, back it
up, empty it, tell one ISRC's answers over time, or copy one cache into another (a file
into a team's PostgreSQL)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .._logging import printable
from ..database import DatabaseURL
from ..errors import CacheError, ConfigurationError, format_time
from ..settings import cache_location
from .sources import cache_exists, cache_option, chosen_cache

if TYPE_CHECKING:
    from ..store.cache import CacheInfo
    from ..store.history import Entry

__all__ = ["build_parser", "cache_command"]

log = logging.getLogger("isrc_resolver")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isrc-resolve cache",
        description="Inspect, back up or clear the cache, show one ISRC's history, or copy "
        "one cache into another.",
    )
    p.add_argument("action", choices=["info", "clear", "backup", "history", "copy"])
    p.add_argument(
        "target",
        nargs="?",
        help="with backup: the file to write the copy to; with history: the ISRC; with "
        "copy: the cache to copy from (SRC)",
    )
    p.add_argument(
        "destination",
        nargs="?",
        metavar="DST",
        help="with copy: the cache to copy into (a file or a postgresql:// URL); what it "
        "holds is kept, newer answers win, and the ledger keeps the larger count",
    )
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="with info: json for monitoring (requests per day over 30 days, the cooldown, "
        "answers by status and age)",
    )
    p.add_argument(
        "--cooldown",
        action="store_true",
        help="with clear: end only the quota stops' cooldowns; keep the answers and the ledger",
    )
    cache_option(p, "the cache")
    return p


def cache_command(args: argparse.Namespace) -> int:
    if args.action == "copy":
        return _copy(args.target, args.destination)
    path = chosen_cache(args.cache)
    if args.action == "backup":
        args.target = None if args.target is None else Path(args.target)
        _check_backup(args.target, path)
    if args.action == "history":
        args.target = _isrc(args.target)
    if not cache_exists(path):
        _say(f"no cache at {path}")
        return 0
    from ..store.cache import Cache, set_aside

    try:
        cache = Cache(path)
    except CacheError as exc:
        # Only a SQLite file that does not read back is replaced, and it is kept aside;
        # anything else (not a cache, a newer one, locked, read-only) is said and left be.
        if args.action != "clear" or exc.reason != "damaged" or not isinstance(path, Path):
            raise
        kept = set_aside(path, time.time())
        Cache(path).close()
        _say(f"the cache at {path} did not read back; moved it to {kept}, made an empty one")
        return 0
    try:
        if args.action == "clear" and args.cooldown:
            ended = cache.clear_cooldowns()
            _say(f"ended {ended} cooldown(s) in {path}; the answers and the ledger are kept")
            return 0
        if args.action == "clear":
            removed = cache.clear()
            _say(f"cleared {removed} cached results and the cooldown from {path}")
            return 0
        if args.action == "backup":
            cache.backup(args.target)
            _say(f"backed up {path} to {args.target}")
            return 0
        if args.action == "history":
            _print_history(args.target, cache.history.of(args.target))
            return 0
        if args.format == "json":
            print(json.dumps(cache.report()))
            return 0
        info = cache.info()
    finally:
        cache.close()

    _print_info(info)
    return 0


def _isrc(given: str | None) -> str:
    from ..isrc import is_valid_isrc, normalize_isrc

    if given is None:
        raise ConfigurationError("cache history needs the ISRC: cache history ISRC")
    isrc = normalize_isrc(given)
    if not is_valid_isrc(isrc):
        raise ConfigurationError(
            f"cache history {printable(given)}: not an ISRC (2 letters, 3 letters or digits, "
            "7 digits, as GBAYE0601498)"
        )
    return isrc


def _print_history(isrc: str, entries: list[Entry]) -> None:
    """Every store's answer now, then the answers they replaced, newest first."""

    def when(ts: float | None) -> str:
        return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def said(e: Entry) -> str:
        named = " ".join(printable(v) for v in (e.id, f'"{e.title}"' if e.title else None) if v)
        return f"{e.source:<8} {e.status:<10} {named}".rstrip()

    now = [e for e in entries if e.replaced_at is None]
    past = [e for e in entries if e.replaced_at is not None]
    _say(f"{isrc}: {'nothing in the cache' if not entries else ''}".rstrip(": "))
    for e in now:
        _say(f"  now      {said(e)}  (answered {when(e.fetched_at)})")
    for e in past:
        _say(
            f"  before   {said(e)}  (answered {when(e.fetched_at)}, replaced {when(e.replaced_at)})"
        )


def _copy(source: str | None, destination: str | None) -> int:
    """``cache copy SRC DST``: SRC's answers, ledger, history and cooldowns merged into DST
    (created if need be). SRC is only read."""
    from ..paths import Place, check_places
    from ..store.cache import Cache

    if source is None or destination is None:
        raise ConfigurationError(
            "cache copy needs the cache to copy from and the one to copy into: cache copy "
            "SRC DST (each a file or a postgresql:// URL)"
        )
    src, dst = cache_location(source), cache_location(destination)
    if not cache_exists(src):
        raise ConfigurationError(f"cache copy: there is no cache at {src}; name an existing one")
    if src == dst or (
        isinstance(src, Path) and isinstance(dst, Path) and src.resolve() == dst.resolve()
    ):
        raise ConfigurationError(f"cache copy: {src} is both SRC and DST; name two caches")
    if isinstance(src, Path) and isinstance(dst, Path):
        check_places([Place("cache copy SRC", src, False), Place("cache copy DST", dst, True)])
    with Cache(src) as source_cache, Cache(dst) as target:
        copied = target.copy_from(source_cache)
    _say(
        f"copied {src} into {dst}: {copied.answers} answers, {copied.details} store and "
        f"detail answers, {copied.requests} requests in {copied.ledger_seconds} ledger "
        f"seconds, {copied.history} replaced answers, {copied.cooldowns} cooldown(s)"
    )
    return 0


def _check_backup(target: Path | None, cache: Path | DatabaseURL) -> None:
    """A backup is a new regular file, none of the cache's own."""
    from ..paths import Place, cache_places, check_places, is_special

    if target is None:
        raise ConfigurationError("cache backup needs the file to write: cache backup PATH")
    if is_special(target) or target.is_dir():
        raise ConfigurationError(f"cache backup {target}: name a file (the copy is a database)")
    check_places([Place("cache backup PATH", target, writes=True), *cache_places(cache)])


def _say(line: str) -> None:
    """A line on standard output, with the paths and names in it made printable."""
    print(printable(line))


def _print_info(info: CacheInfo) -> None:
    def when(ts: float | None) -> str:
        return format_time(datetime.fromtimestamp(ts, UTC)) if ts else "-"

    _say(f"cache:     {info.path} ({info.size_bytes / 1e6:.1f} MB)")
    _say(f"entries:   {info.entries} ({info.found} found, {info.not_found} not found)")
    _say(f"oldest:    {when(info.oldest)}")
    _say(f"newest:    {when(info.newest)}")
    _say(f"cooldown:  {'until ' + when(info.cooldown_until) if info.cooldown_until else 'none'}")
    for account in info.accounts:
        # One line per account: what the --daily-quota check counts, and when room frees up.
        cooldown = (
            f"; cooldown until {when(account.cooldown_until)}" if account.cooldown_until else ""
        )
        _say(
            f"account:   {account.account}: {account.requests} requests in the last 24 h"
            + (
                f", the oldest leaves the window at {when(account.oldest)}"
                if account.oldest
                else ""
            )
            + cooldown
        )
