"""isrc-resolver: turn ISRCs into Spotify tracks, albums and artists.

async with Resolver(client_id=..., client_secret=...) as r:
    result = await r.resolve("USRC17607839")

Names are imported on first use, so ``isrc-resolve --help`` and ``--version`` start without
loading pandas, pyarrow or aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name and the module that defines it.
_EXPORTS = {
    "Album": "models",
    "AlbumDetails": "models",
    "Artist": "models",
    "AudioFeatures": "models",
    "Cache": "store.cache",
    "CacheInfo": "store.cache",
    "ClientStats": "http.stats",
    "ConfigurationError": "errors",
    "CredentialsError": "errors",
    "DEFAULT_API_URL": "settings",
    "DEFAULT_TOKEN_URL": "settings",
    "Enrichment": "models",
    "ForbiddenError": "errors",
    "HttpRequest": "http.transport",
    "HttpResponse": "http.transport",
    "InputError": "errors",
    "MatchPreference": "models",
    "MockTransport": "http.transport",
    "OUTPUT_COLUMNS": "schema",
    "RateLimitStop": "errors",
    "RequestError": "errors",
    "Resolver": "resolver",
    "ResolverError": "errors",
    "Result": "models",
    "RetryPolicy": "http.retry",
    "RunReport": "report",
    "Settings": "settings",
    "SpotifyClient": "spotify.client",
    "Status": "models",
    "TokenError": "errors",
    "Track": "models",
    "TransportError": "http.transport",
    "choose_match": "pipeline.search",
    "default_cache_path": "settings",
    "is_valid_isrc": "isrc",
    "normalize_isrc": "isrc",
    "resolve_dataframe_sync": "sync",
    "resolve_file": "resolver",
    "result_row": "schema",
}

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_TOKEN_URL",
    "OUTPUT_COLUMNS",
    "Album",
    "AlbumDetails",
    "Artist",
    "AudioFeatures",
    "Cache",
    "CacheInfo",
    "ClientStats",
    "ConfigurationError",
    "CredentialsError",
    "Enrichment",
    "ForbiddenError",
    "HttpRequest",
    "HttpResponse",
    "InputError",
    "MatchPreference",
    "MockTransport",
    "RateLimitStop",
    "RequestError",
    "Resolver",
    "ResolverError",
    "Result",
    "RetryPolicy",
    "RunReport",
    "Settings",
    "SpotifyClient",
    "Status",
    "TokenError",
    "Track",
    "TransportError",
    "choose_match",
    "default_cache_path",
    "is_valid_isrc",
    "normalize_isrc",
    "resolve_dataframe_sync",
    "resolve_file",
    "result_row",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'isrc_resolver' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from .errors import (
        ConfigurationError,
        CredentialsError,
        ForbiddenError,
        InputError,
        RateLimitStop,
        RequestError,
        ResolverError,
        TokenError,
    )
    from .http.retry import RetryPolicy
    from .http.stats import ClientStats
    from .http.transport import HttpRequest, HttpResponse, MockTransport, TransportError
    from .isrc import is_valid_isrc, normalize_isrc
    from .models import (
        Album,
        AlbumDetails,
        Artist,
        AudioFeatures,
        Enrichment,
        MatchPreference,
        Result,
        Status,
        Track,
    )
    from .pipeline.search import choose_match
    from .report import RunReport
    from .resolver import Resolver, resolve_file
    from .schema import OUTPUT_COLUMNS, result_row
    from .settings import DEFAULT_API_URL, DEFAULT_TOKEN_URL, Settings, default_cache_path
    from .spotify.client import SpotifyClient
    from .store.cache import Cache, CacheInfo
    from .sync import resolve_dataframe_sync
