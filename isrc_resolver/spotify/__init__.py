"""Spotify, as one provider: its token, budget and client (the transport, rate gate and
retries it shares with every provider are in ``http/``).

This folder never reaches the store, the tables or the pipeline: what it needs of the
cache's ledger arrives as a :class:`~isrc_resolver.http.budget.Ledger` (a protocol the
pipeline fills in).
"""

from .client import SpotifyClient

__all__ = ["SpotifyClient"]
