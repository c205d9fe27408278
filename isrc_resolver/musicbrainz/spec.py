"""MusicBrainz as the rest of the code sees it (see
:class:`~isrc_resolver.provider.ProviderSpec`)."""

from __future__ import annotations

from ..provider import Credential, Endpoint, ProviderSpec

SPEC = ProviderSpec(
    name="musicbrainz",
    label="MusicBrainz",
    item="recording",
    site="musicbrainz.org",
    endpoints=(
        Endpoint(
            "musicbrainz_api_url",
            "MUSICBRAINZ_API_URL",
            "https://musicbrainz.org/ws/2",
            "MusicBrainz's web service",
        ),
    ),
    client="isrc_resolver.musicbrainz.client:MusicBrainzClient",
    rate=0.9,  # under the documented average of one request a second per address
    credentials=(
        Credential(
            "MUSICBRAINZ_CONTACT",
            "an e-mail address or URL, sent in the User-Agent as MusicBrainz asks",
            secret=False,
        ),
    ),
    note="no key, a contact in the User-Agent; one ISRC per request, 1 request a second "
    "(open data: recording MBIDs)",
)
