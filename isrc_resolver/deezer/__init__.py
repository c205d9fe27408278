"""Deezer, as a second catalogue: one track per ISRC, no token, no daily quota.

:class:`.client.DeezerClient` asks ``GET {deezer_api_url}/track/isrc:{ISRC}`` through its
own rate gate and retry policy; :mod:`.answer` checks each answer before it is used or
cached and turns it into a :class:`~isrc_resolver.listing.Listing`. The pipeline drives it
through the :class:`~isrc_resolver.pipeline.second.Catalogue` protocol, as it would any
other second catalogue (a folder like this one and a line in ``pipeline/second.py``).
"""

from .client import DeezerClient

__all__ = ["DeezerClient"]
