"""``isrc-resolve cache export PATH``: the cache's answers as one table, for the run's
scope (API, market, match preference, search strategy), to join in another engine."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError
from .options import add_settings_arguments, cache_exists, overrides_argument
from .plan import plan_settings

__all__ = ["build_parser", "export"]

log = logging.getLogger("isrc_resolver")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isrc-resolve cache export",
        description="Write every answer in the cache for the scope a run with these options "
        "would use (API, --market, --prefer, the search options) as one table: one row per "
        "ISRC with the answer columns and resolved_at. Parquet, or CSV/TSV by the suffix. "
        "Streams: memory does not grow with the cache. Sends nothing.",
    )
    p.add_argument("target", type=Path, help="the file to write (.parquet, .csv or .tsv)")
    overrides_argument(p)
    add_settings_arguments(p)
    return p


def export(args: argparse.Namespace) -> int:
    from ..export import export_cache
    from ..store.cache import Cache

    settings, _ = plan_settings(args)
    if settings.cache is None or not cache_exists(settings.cache):
        why = "--no-cache" if args.no_cache else "--demo keeps none unless told"
        where = settings.cache or f"(none: {why})"
        raise InputError(f"no cache to export at {where}; name it with --cache PATH")
    overrides = None
    if args.overrides is not None:
        from .. import tables
        from ..paths import Place, check_places

        check_places(
            [
                Place("cache export PATH", args.target, True),
                Place("overrides=", args.overrides, False),
            ]
        )
        overrides = tables.read_overrides(args.overrides)
    with Cache(settings.cache) as cache:
        rows = export_cache(cache, settings, args.target, overrides)
    log.info("cache export: %d answers written to %s", rows, args.target)
    return 0
