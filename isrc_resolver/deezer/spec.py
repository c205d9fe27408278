"""Deezer as the rest of the code sees it (see :class:`~isrc_resolver.provider.ProviderSpec`)."""

from __future__ import annotations

from ..provider import Endpoint, ProviderSpec

SPEC = ProviderSpec(
    name="deezer",
    label="Deezer",
    item="track",
    site="deezer.com",
    endpoints=(
        Endpoint("deezer_api_url", "DEEZER_API_URL", "https://api.deezer.com", "Deezer's API"),
    ),
    client="isrc_resolver.deezer.client:DeezerClient",
    rate=9.0,  # Deezer allows about 10 per second (50 per 5 s)
    note="no key, no daily quota; one ISRC per request, about 10 requests a second",
)
