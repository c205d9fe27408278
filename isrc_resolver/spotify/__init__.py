"""Spotify, as one provider: its transport, token, rate gate, retries, budget and client.

This folder never reaches the store, the tables or the pipeline: what it needs of the
cache's ledger arrives as a :class:`.budget.Ledger` (a protocol the pipeline fills in).
"""

from .client import SpotifyClient
from .stats import ClientStats
from .transport import AiohttpTransport, HttpRequest, HttpResponse, MockTransport, Transport

__all__ = [
    "AiohttpTransport",
    "ClientStats",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "SpotifyClient",
    "Transport",
]
