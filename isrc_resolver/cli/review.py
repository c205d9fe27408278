"""``isrc-resolve review OUTPUT``: the rows of a run's output a person should look at."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .sources import cache_exists, cache_option, chosen_cache

__all__ = ["build_parser", "review"]

log = logging.getLogger("isrc_resolver")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="isrc-resolve review",
        description="Write the rows of a run's output that need a person's look, most "
        "doubtful first (ISRC conflicts, title or artist that differ, fuzzy matches, "
        "misses with a title and artist), one per ISRC, with Spotify's candidates beside "
        "each and an empty spotify_track_id to fill. Fill it (an id, a link, or none) "
        "and pass the file to the next run with --overrides; rows left empty are skipped.",
    )
    p.add_argument("output", help="a run's output (.csv, .tsv or .parquet)")
    p.add_argument(
        "-o",
        "--to",
        metavar="PATH",
        help="the review file (.csv, .tsv or .parquet; default: OUTPUT.review.csv beside it)",
    )
    cache_option(p, "where the candidates are kept")
    p.add_argument("--no-cache", action="store_true", help="list without the candidates")
    p.add_argument("--title-column", metavar="NAME", help="the input's title column")
    p.add_argument("--artist-column", metavar="NAME", help="the input's artist column")
    return p


def review(args: argparse.Namespace) -> int:
    from .. import tables
    from ..fronts import scan_file, write_review
    from ..paths import Place, cache_places, check_places

    source = Path(args.output)
    target = args.to or source.with_name(source.stem + ".review.csv")
    tables.check_file(target, "review -o")
    tables.frame_format(target, "review -o")
    path = None if args.no_cache else chosen_cache(args.cache)
    written = Place("review -o", target, writes=True)
    check_places([Place("review OUTPUT", source, writes=False), written, *cache_places(path)])
    scan = scan_file(source, args.title_column, args.artist_column)
    if path is not None and cache_exists(path):
        from ..store.cache import Cache

        with Cache(path) as cache:
            count = write_review(scan, target, lambda isrcs: cache.candidates(isrcs, None))
    else:
        count = write_review(scan, target)
    log.info("review: %d ISRCs to look at (of %d rows), written to %s", count, scan.rows, target)
    return 0
