"""Apple Music as the rest of the code sees it (see
:class:`~isrc_resolver.provider.ProviderSpec`)."""

from __future__ import annotations

from ..provider import Credential, Endpoint, ProviderSpec

SPEC = ProviderSpec(
    name="apple",
    label="Apple Music",
    item="song",
    site="music.apple.com",
    endpoints=(
        Endpoint(
            "apple_api_url", "APPLE_MUSIC_API_URL", "https://api.music.apple.com/v1", "Apple's API"
        ),
    ),
    client="isrc_resolver.apple.client:AppleClient",
    by_market=True,
    rate=10.0,  # Apple publishes no number; its 429s are short and the gate learns
    batch=25,
    credentials=(
        Credential("APPLE_MUSIC_TEAM_ID", "the developer account's team id", secret=False),
        Credential("APPLE_MUSIC_KEY_ID", "the MusicKit key's id", secret=False),
        Credential("APPLE_MUSIC_PRIVATE_KEY", "the path of the MusicKit .p8 key", secret=False),
    ),
    note="a developer token (ES256, from a .p8 key); 25 ISRCs per request, in the first "
    "--market's storefront; mind Apple's terms (README)",
)
