"""The registry: every store beside Spotify, in the order ``--help`` lists them.

A store is a folder with a ``spec.py`` (see :class:`~isrc_resolver.provider.ProviderSpec`);
adding one is adding its folder and a line here.
"""

from __future__ import annotations

from .apple.spec import SPEC as APPLE
from .deezer.spec import SPEC as DEEZER
from .musicbrainz.spec import SPEC as MUSICBRAINZ
from .provider import ProviderSpec
from .tidal.spec import SPEC as TIDAL

__all__ = ["CATALOGUES"]

CATALOGUES: dict[str, ProviderSpec] = {s.name: s for s in (DEEZER, TIDAL, APPLE, MUSICBRAINZ)}
