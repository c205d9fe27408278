"""HTTP for every provider: the transport (the one module that imports aiohttp), the rate
gate that learns a server's limit, the retry policy and the request statistics.

Nothing here knows a provider: Spotify's client (``spotify/``) and each
other store's folder build their own gate and policy from these parts.
"""

from .ratelimit import RateGate
from .retry import RetryPolicy
from .stats import ClientStats
from .transport import AiohttpTransport, HttpRequest, HttpResponse, MockTransport, Transport

__all__ = [
    "AiohttpTransport",
    "ClientStats",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "RateGate",
    "RetryPolicy",
    "Transport",
]
