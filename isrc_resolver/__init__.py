"""isrc-resolver: turn ISRCs into Spotify tracks, albums and artists.

async with Resolver(client_id=..., client_secret=...) as r:
    result = await r.resolve("USRC17607839")
"""

from .cache import Cache, CacheInfo, default_cache_path
from .client import DEFAULT_API_URL, DEFAULT_TOKEN_URL, ClientStats, SpotifyClient
from .enrich import AlbumDetails, AudioFeatures, Enrichment
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
from .isrc import is_valid_isrc, normalize_isrc
from .models import OUTPUT_COLUMNS, Album, Artist, MatchPreference, Result, Status, Track
from .resolver import Resolver, RunReport, choose_match, resolve_file
from .retry import RetryPolicy

__version__ = "0.1.0"

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
    "InputError",
    "MatchPreference",
    "RateLimitStop",
    "RequestError",
    "Resolver",
    "ResolverError",
    "Result",
    "RetryPolicy",
    "RunReport",
    "SpotifyClient",
    "Status",
    "TokenError",
    "Track",
    "choose_match",
    "default_cache_path",
    "is_valid_isrc",
    "normalize_isrc",
    "resolve_file",
]
