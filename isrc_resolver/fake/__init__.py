"""A local, Spotify-compatible server: for the demo, the tests and the benchmarks.

Run it alone with ``python -m isrc_resolver.fake --port 0``, or in-process::

    async with FakeSpotify(window_limit=100, window_seconds=2) as server:
        ...  # server.api_url, server.token_url, server.stats()
"""

from .catalogue import Catalogue
from .records import World
from .server import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, FakeConfig, FakeSpotify

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "Catalogue",
    "FakeConfig",
    "FakeSpotify",
    "World",
]
