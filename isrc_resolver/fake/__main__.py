"""``python -m isrc_resolver.fake``: run the local Spotify until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from ..isrc import normalize_isrc
from .records import World
from .server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeConfig, FakeSpotify


def _window(text: str) -> tuple[int, float]:
    count, _, seconds = text.partition("/")
    try:
        return int(count), float(seconds or 30)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N/SECONDS such as 100/30, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m isrc_resolver.fake",
        description="A local Spotify-compatible server (token, search, albums, audio features).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--client-id", default=DEMO_CLIENT_ID, help="accepted client id (%(default)s)")
    p.add_argument(
        "--client-secret",
        default=DEMO_CLIENT_SECRET,
        help="accepted client secret (the demo value by default)",
    )
    p.add_argument("--seed", type=int, default=0, help="catalogue and fault seed")
    p.add_argument("--fixtures", type=Path, help="JSON file of fixed catalogue entries")
    p.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    p.add_argument("--jitter", type=float, default=0.0, help="± seconds around --latency")
    p.add_argument(
        "--window", type=_window, metavar="N/SECONDS", help="rolling-window rate limit, e.g. 100/30"
    )
    p.add_argument("--daily-quota", type=int, help="API requests before QUOTA_EXCEEDED 429s")
    p.add_argument("--quota-retry-after", type=int, default=50_000)
    p.add_argument("--fault-5xx", type=float, default=0.0, help="probability of a 500/502/503")
    p.add_argument("--fault-html", type=float, default=0.0, help="probability of an HTML 502")
    p.add_argument(
        "--fault-drop", type=float, default=0.0, help="probability of a dropped connection"
    )
    p.add_argument("--fault-slow", type=float, default=0.0, help="probability of a slow answer")
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument(
        "--extended-quota",
        action="store_true",
        help="serve fields Spotify removed for Development Mode apps",
    )
    p.add_argument("--forbid-album", action="store_true", help="403 on /albums/{id}")
    p.add_argument("--forbid-albums", action="store_true", help="403 on /albums?ids=")
    p.add_argument("--forbid-audio-features", action="store_true", help="403 on /audio-features")
    for name, meaning in (
        ("region-locked", "sold only in the market of the ISRC's country prefix"),
        ("foreign", "sold only in one market unrelated to the ISRC's prefix"),
        ("isrc-invisible", "missed by isrc: in every market, found by track:/artist:"),
        ("unavailable", "in no market at all"),
        ("conflicting", "also carried by a different recording (a label's error)"),
    ):
        p.add_argument(
            f"--{name}",
            type=float,
            default=0.0,
            metavar="SHARE",
            help=f"share (0-1) of generated ISRCs {meaning}",
        )
    _deezer_arguments(p)
    return p


def _deezer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--deezer-limit", type=int, default=50, help="Deezer requests per 5 s before code 4"
    )
    p.add_argument("--deezer-outage", action="store_true", help="every Deezer request a 503")
    world = p.add_argument_group("the world since (comma-separated ISRCs), for a second night")
    for name, what in (
        ("taken-down", "no store has them any more"),
        ("relinked", "their tracks carry new ids"),
        ("renamed", "their titles gain ' (Remastered 2026)'"),
        ("unreleased", "not out yet: no store has them so far"),
    ):
        world.add_argument(f"--{name}", metavar="ISRCS", default="", help=what)
    for name, meaning in (
        ("deezer-missing", "that Deezer does not have (Spotify only)"),
        ("deezer-only", "that Deezer has where Spotify has no track, or sells none"),
        ("deezer-renamed", "Deezer names slightly differently (Remastered, a featured artist)"),
        ("deezer-other-release", "Deezer answers with another release of the recording"),
        ("deezer-other-edit", "Deezer answers with an edit 40 s longer"),
        ("deezer-busy", "answered by Deezer with code 700 (service busy), per request"),
    ):
        p.add_argument(
            f"--{name}", type=float, default=0.0, metavar="SHARE", help=f"share {meaning}"
        )


def config_from_args(args: argparse.Namespace) -> FakeConfig:
    limit, seconds = args.window if args.window else (None, 30.0)
    return FakeConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        seed=args.seed,
        fixtures=args.fixtures,
        token_lifetime=args.token_lifetime,
        latency=args.latency,
        jitter=args.jitter,
        window_limit=limit,
        window_seconds=seconds,
        daily_quota=args.daily_quota,
        quota_retry_after=args.quota_retry_after,
        fault_5xx=args.fault_5xx,
        fault_html=args.fault_html,
        fault_drop=args.fault_drop,
        fault_slow=args.fault_slow,
        slow_seconds=args.slow_seconds,
        extended_quota=args.extended_quota,
        forbid_album=args.forbid_album,
        forbid_albums=args.forbid_albums,
        forbid_audio_features=args.forbid_audio_features,
        region_locked=args.region_locked,
        foreign=args.foreign,
        isrc_invisible=args.isrc_invisible,
        unavailable=args.unavailable,
        conflicting=args.conflicting,
        deezer_limit=args.deezer_limit,
        deezer_missing=args.deezer_missing,
        deezer_only=args.deezer_only,
        deezer_renamed=args.deezer_renamed,
        deezer_other_release=args.deezer_other_release,
        deezer_other_edit=args.deezer_other_edit,
        deezer_busy=args.deezer_busy,
        deezer_outage=args.deezer_outage,
        world=World(
            taken_down=_isrcs(args.taken_down),
            relinked=_isrcs(args.relinked),
            renamed=_isrcs(args.renamed),
            unreleased=_isrcs(args.unreleased),
        ),
    )


def _isrcs(text: str) -> frozenset[str]:
    return frozenset(normalize_isrc(part) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)

    async def run() -> None:
        server = FakeSpotify(config)
        await server.start(args.host, args.port)
        print(server.base_url, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
