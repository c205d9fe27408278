"""``isrc-resolve plan INPUT``: what a run would send, without sending anything."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import format_time
from ..schema import FORMATS
from ..settings import ENV_API_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET, Settings
from .options import (
    cache_exists,
    credentials,
    hint_arguments,
    overrides_argument,
    settings_from,
    sheet_argument,
)

if TYPE_CHECKING:
    from ..pipeline.plan import Forecast

__all__ = ["add_arguments", "plan", "plan_settings"]

log = logging.getLogger("isrc_resolver")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        help="CSV, TSV or Parquet file (or a folder of Parquet files), or - for standard input",
    )
    p.add_argument(
        "--format",
        choices=["text", "json", *FORMATS],
        default="text",
        help="json: one object (rows, unique, invalid, duplicates, fresh, stale, new, "
        "partial, needed, requests, requests_max, nights, cooldown_until, stores: per store "
        "beside Spotify its fresh, isrcs and requests); a run's "
        "own csv, tsv or parquet is taken and means text, so that 'plan' can go in front "
        "of any run's command",
    )
    p.add_argument("--input-format", choices=FORMATS, help="input format (default: its suffix)")
    sheet_argument(p)
    p.add_argument("--column", metavar="NAME", help="the ISRC column (default: 'isrc')")
    hint_arguments(p)
    overrides_argument(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="not used: accepted so that 'plan' can go in front of a run's own command",
    )


def plan(args: argparse.Namespace) -> int:
    """``isrc-resolve plan``: read the input and the cache, print what a run would send."""
    forecast, _ = _forecast(args)
    if args.format == "json":
        fields: dict[str, object] = dict(forecast.as_dict())
        fields["cooldown_until"] = _when(forecast.cooldown_until)
        print(json.dumps(fields))
        return 0
    f = forecast
    lines = [
        ("rows", f"{f.rows}"),
        ("unique", f"{f.unique} valid ISRCs ({f.invalid} invalid, {f.duplicates} duplicates)"),
        ("fresh", f"{f.fresh} cached answers within their age: no request"),
        ("stale", f"{f.stale} cached answers past their age: asked again (kept if not)"),
        ("new", f"{f.new} never asked"),
        ("partial", f"{f.partial} misses to go on with (markets or title/artist left)"),
        ("overrides", f"{f.overrides} pinned: no search ({f.override_lookups} tracks to look up)"),
        ("needed", f"{f.needed} for a full run ({f.needed_max} at most)"),
        ("requests", f"{f.requests} by a run now ({f.requests_max} at most)"),
    ]
    for name, store in f.stores.items():
        isrcs, fresh = store["isrcs"], store["fresh"]
        text = f"{store['requests']} requests for {isrcs} ISRCs ({fresh} cached); its own pace"
        lines.append((name, text))
    if f.cooldown_until is not None:
        lines.append(("cooldown", f"until {_when(f.cooldown_until)}: a run sends nothing before"))
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


def _when(moment: float | None) -> str | None:
    return format_time(datetime.fromtimestamp(moment, UTC)) if moment is not None else None


def _forecast(args: argparse.Namespace) -> tuple[Forecast, Settings]:
    from .. import tables
    from ..pipeline.plan import forecast
    from ..store.cache import Cache

    settings, known = plan_settings(args)
    overrides = tables.read_overrides(args.overrides) if args.overrides else None
    with tables.open_input(
        args.input,
        column=args.column,
        input_format=args.input_format,
        sheet=args.sheet,
        title_column=args.title_column,
        artist_column=args.artist_column,
    ) as source:
        cache = Cache(settings.cache) if settings.cache and cache_exists(settings.cache) else None
        try:
            titles = source.hint_columns.usable
            return forecast(
                source.isrc_chunks(),
                cache,
                settings,
                ledger=known,
                titles=titles,
                overrides=overrides,
            ), settings
        finally:
            if cache is not None:
                cache.close()


def plan_settings(args: argparse.Namespace) -> tuple[Settings, bool]:
    """The run's settings for a plan, and whether the account is known. Without
    credentials the plan still counts everything but the account's ledger."""
    environ, looked_in = credentials(args)
    known = all(any(environ.get(n) for n in names) for names in (ENV_CLIENT_ID, ENV_CLIENT_SECRET))
    if not known:
        environ = {**environ, ENV_CLIENT_ID[0]: "-", ENV_CLIENT_SECRET[0]: "-"}
        log.info("plan: no credentials in %s, so the quota ledger is not read", looked_in)
    if args.demo:
        environ[ENV_API_URL] = "http://127.0.0.1/v1"  # the local server's, as cache keys see it
    return settings_from(args, (environ, looked_in)), known
