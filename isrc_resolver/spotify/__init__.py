"""Spotify, as one provider: its transport, token, rate gate, retries, budget and client.

This folder never reaches the store, the tables or the pipeline: what it needs of the
cache's ledger arrives as a :class:`.budget.Ledger` (a protocol the pipeline fills in).
"""

from ..http.stats import ClientStats
from ..http.transport import AiohttpTransport, HttpRequest, HttpResponse, MockTransport, Transport
from .client import SpotifyClient

__all__ = [
    "AiohttpTransport",
    "ClientStats",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "SpotifyClient",
    "Transport",
]
