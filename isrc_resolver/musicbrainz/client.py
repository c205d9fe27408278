"""MusicBrainz's ``GET /isrc/{isrc}``: one ISRC a request, never more than one a second.

Never more than one request a second to musicbrainz.org, whatever ``--musicbrainz-rate``
says (a mirror, or the local server, is paced as told). No key: ``MUSICBRAINZ_CONTACT``
(an e-mail or a URL) goes into the User-Agent, as MusicBrainz asks of every application.
Its 503 says both "slower" and "busy": every request then waits at least a second
(longer when ``Retry-After`` says so) and the one refused is asked again. A 404 is a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from ..http.asking import Refused, Slow, StoreClient, json_body
from ..http.retry import parse_retry_after
from ..http.transport import HttpRequest, HttpResponse
from ..listing import Listing, ListingStatus
from ..settings import Settings
from ..untrusted import BadAnswer
from .answer import PROVIDER, listing_of

__all__ = ["MusicBrainzClient", "user_agent"]

BUSY_PAUSE = 1.0  # seconds every request waits after a 503 (MusicBrainz: "retry after a second")


def user_agent(contact: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("isrc-resolver")
    except PackageNotFoundError:  # a checkout run without installing
        ours = "0"
    return f"isrc-resolver/{ours} ( {contact} )"


class MusicBrainzClient(StoreClient):
    """MusicBrainz's recordings by ISRC, as listings (see :class:`StoreClient`)."""

    name = PROVIDER
    batch = 1
    slow_pause = BUSY_PAUSE
    least_backoff = BUSY_PAUSE  # "busy": try again after a second, not sooner

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        api_url = settings.endpoint("musicbrainz_api_url").rstrip("/")
        host = urlsplit(api_url).hostname or ""
        official = host == "musicbrainz.org" or host.endswith(".musicbrainz.org")
        rate = settings.rate_of(PROVIDER)
        super().__init__(
            settings,
            rate=min(rate, 1.0) if official else rate,  # a mirror sets its own pace
            adaptive=False if official else None,  # its limit is known: nothing to learn
            timeout=max(settings.timeout, 30.0),  # answers of 5 to 30 s happen
            **kwargs,
        )
        self.api_url = api_url
        contact = settings.credential("MUSICBRAINZ_CONTACT").strip()
        self._agent = user_agent(contact if contact.isprintable() else "no valid contact")

    def __repr__(self) -> str:
        return f"MusicBrainzClient(api_url={self.api_url!r})"

    async def request(self, isrcs: Sequence[str]) -> HttpRequest:
        (isrc,) = isrcs
        url = f"{self.api_url}/isrc/{quote(isrc)}?fmt=json&inc=artist-credits"
        headers = {"User-Agent": self._agent, "Accept": "application/json"}
        return HttpRequest("GET", url, headers=headers)

    def server_error(self, response: HttpResponse) -> None:
        """A 503 for our own rate (zone ``ws ip=...``) pauses every request and teaches
        the gate; a 503 of global load shedding ("busy") is retried after a backoff, and
        teaches the gate nothing: it says nothing of our pace."""
        zone = {k.lower(): v for k, v in response.headers.items()}.get("x-ratelimit-zone", "")
        if response.status == 503 and zone.startswith("ws"):
            raise Slow("503", max(BUSY_PAUSE, parse_retry_after(response.headers, BUSY_PAUSE)))

    def answer(
        self, isrcs: Sequence[str], request: HttpRequest, pages: Sequence[HttpResponse]
    ) -> dict[str, Listing]:
        (response,) = pages
        (isrc,) = isrcs
        if response.status == 404:
            return {isrc: Listing(PROVIDER, isrc, ListingStatus.NOT_FOUND, fetched_at=self.clock())}
        if response.status != 200:
            raise Refused(f"HTTP {response.status}")
        try:
            return {isrc: listing_of(isrc, json_body(response), self.clock())}
        except BadAnswer as exc:
            raise Refused(str(exc)) from None
