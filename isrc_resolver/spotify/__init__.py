"""Spotify, as one provider: its transport, token, rate gate, retries, budget and client.

This folder never reaches the store, the tables or the pipeline: what it needs of the
cache's ledger arrives as a function (:data:`.budget.ReadWindow`).
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
