"""Where a run's credentials and cache come from: the flags, the environment and the
``.env`` file; and ``--cache``, a file's path or a ``postgresql://`` URL."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..database import DatabaseURL
from ..errors import ConfigurationError
from ..settings import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    cache_location,
    default_cache,
    default_cache_path,
)

__all__ = [
    "cache_argument",
    "cache_exists",
    "cache_option",
    "cache_path",
    "chosen_cache",
    "credentials",
    "env_file",
    "environment",
]


def env_file(args: argparse.Namespace) -> Path | None:
    """The .env file a run reads credentials from, if any (none for --demo)."""
    if args.demo:
        return None
    path: Path = args.env_file or Path(".env")
    return path if path.is_file() else None


def environment(env_file: Path | None) -> tuple[dict[str, str], str]:
    """The environment, over the values of the .env file; and where that looked."""
    if env_file is not None and not env_file.is_file():
        raise ConfigurationError(f"--env-file {env_file} not found")
    from dotenv import dotenv_values

    path = env_file or Path(".env")
    from_file = {k: v for k, v in dotenv_values(path).items() if v} if path.is_file() else {}
    environ = {**from_file, **{k: v for k, v in os.environ.items() if v}}
    return environ, f"the environment and {path.resolve()}"


def credentials(args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """Where credentials come from: the demo's, or the environment and .env file."""
    if args.demo:
        from ..fake.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_STORES

        return {
            **DEMO_STORES,
            ENV_CLIENT_ID[0]: DEMO_CLIENT_ID,
            ENV_CLIENT_SECRET[0]: DEMO_CLIENT_SECRET,
        }, "the demo"
    return environment(args.env_file)


def cache_path(args: argparse.Namespace) -> Path | DatabaseURL | None:
    """The cache a run with these flags opens (None: none): ``--cache``, else
    ``ISRC_RESOLVER_CACHE`` (from the environment or the .env file), else the default."""
    # The demo keeps its made-up answers out of the real cache unless told otherwise.
    if args.no_cache or (args.demo and args.cache is None):
        return None
    return chosen_cache(args.cache, getattr(args, "env_file", None))


def chosen_cache(
    given: Path | DatabaseURL | None, env_file: Path | None = None
) -> Path | DatabaseURL:
    """``given`` (a ``--cache``), else ``ISRC_RESOLVER_CACHE`` (from the environment or
    the .env file), else the default file."""
    return given if given is not None else default_cache(environment(env_file)[0])


def cache_option(p: Any, what: str) -> None:
    """``--cache PATH|URL``, ``what`` saying what it is for this command."""
    p.add_argument(
        "--cache",
        type=cache_argument,
        metavar="PATH|URL",
        help=f"{what}: a file, or a postgresql://USER:PASSWORD@HOST:PORT/DB shared by several "
        f"hosts (default: $ISRC_RESOLVER_CACHE, else {default_cache_path()})",
    )


def cache_exists(cache: Path | DatabaseURL | None) -> bool:
    """Is there a cache to read (a file that exists, or a database)?"""
    return isinstance(cache, DatabaseURL) or (cache is not None and cache.exists())


def cache_argument(text: str) -> Path | DatabaseURL:
    """``--cache``: a file's path or a ``postgresql://`` URL."""
    try:
        return cache_location(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
