"""TIDAL as the rest of the code sees it (see :class:`~isrc_resolver.provider.ProviderSpec`)."""

from __future__ import annotations

from ..provider import Credential, Endpoint, ProviderSpec

SPEC = ProviderSpec(
    name="tidal",
    label="TIDAL",
    item="track",
    site="tidal.com",
    endpoints=(
        Endpoint("tidal_api_url", "TIDAL_API_URL", "https://openapi.tidal.com/v2", "TIDAL's API"),
        Endpoint(
            "tidal_token_url",
            "TIDAL_TOKEN_URL",
            "https://auth.tidal.com/v1/oauth2/token",
            "TIDAL's token endpoint",
        ),
    ),
    client="isrc_resolver.tidal.client:TidalClient",
    by_market=True,
    rate=0.2,  # TIDAL publishes no number; its bucket refills about one request per 5 s
    batch=20,
    credentials=(
        Credential("TIDAL_CLIENT_ID", "the app's client id", secret=False),
        Credential("TIDAL_CLIENT_SECRET", "the app's client secret"),
    ),
    note="free client credentials; 20 ISRCs per request, in the first --market",
)
