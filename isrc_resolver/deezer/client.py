"""Rate-limited, retrying access to Deezer's ``GET /track/isrc:{ISRC}``.

No token and no daily quota; the limit is a rate (about 50 requests per 5 s per address),
past which Deezer answers 200 with error code 4. The client (a
:class:`~isrc_resolver.http.asking.StoreClient`) runs its own rate gate, starting under
that rate and learning from each code 4 as Spotify's gate learns from a 429: every request
waits for the pause, and the refused one is asked again. Transient failures (5xx, resets,
bodies that are not JSON, code 700) are retried with backoff; a lookup that still fails is
an ``error`` listing, not an exception. After a few ISRCs in a row fail that way the
service is taken to be down and the rest get ``error`` without a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from ..http.asking import Refused, Slow, StoreClient, json_body
from ..http.retry import Transient
from ..http.transport import HttpRequest, HttpResponse
from ..listing import Listing
from ..settings import Settings
from ..untrusted import BadAnswer
from .answer import PROVIDER, Busy, QuotaSignal, listing_of

__all__ = ["DeezerClient"]

QUOTA_PAUSE = 2.0  # seconds every request waits after a code 4 (Deezer gives no Retry-After)


class DeezerClient(StoreClient):
    """One ISRC a request, as a :class:`~isrc_resolver.listing.Listing`."""

    name = PROVIDER
    batch = 1
    slow_pause = QUOTA_PAUSE

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.api_url = settings.endpoint("deezer_api_url").rstrip("/")

    def __repr__(self) -> str:
        return f"DeezerClient(api_url={self.api_url!r})"

    async def lookup(self, isrc: str) -> Listing:
        """Deezer's track for ``isrc`` (valid, normalised): found, not_found, or error."""
        return (await self.ask([isrc]))[isrc]

    async def request(self, isrcs: Sequence[str]) -> HttpRequest:
        (isrc,) = isrcs
        return HttpRequest("GET", f"{self.api_url}/track/isrc:{quote(isrc)}")

    def answer(
        self, isrcs: Sequence[str], request: HttpRequest, pages: Sequence[HttpResponse]
    ) -> dict[str, Listing]:
        (response,) = pages
        (isrc,) = isrcs
        if response.status != 200:
            raise Refused(f"HTTP {response.status}")
        body = json_body(response)
        try:
            return {isrc: listing_of(isrc, body, self.clock())}
        except QuotaSignal:
            raise Slow("code 4, quota limit exceeded", QUOTA_PAUSE) from None
        except Busy as exc:
            raise Transient(str(exc), status=200) from None
        except BadAnswer as exc:
            raise Refused(str(exc)) from None
