"""TIDAL's ``GET /tracks?filter[isrc]=...``: 20 ISRCs a request, one shared token.

The token comes from the client credentials (``TIDAL_CLIENT_ID``, ``TIDAL_CLIENT_SECRET``)
when the client opens: a refusal there is a configuration error (exit 2) before any lookup.
It is renewed a minute before its ``expires_in``, and at once when TIDAL refuses it early
(401): by one request, while the others wait for it. A second refusal in a row is not
renewed again: TIDAL's part of the run fails, the others go on.

Batches go as a repeated ``filter[isrc]`` (TIDAL answers one track per ISRC); a 400 on a
batch is asked again in halves, down to the one ISRC TIDAL will not take. The country is
the first ``--market`` (default US).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from ..errors import ConfigurationError
from ..http.asking import Refused, StoreClient, first_error, json_body, refusal
from ..http.retry import Transient
from ..http.transport import HttpRequest, HttpResponse
from ..listing import Listing
from ..settings import DEFAULT_MARKET, Settings
from ..untrusted import BadAnswer, items, obj, text, whole
from .answer import PROVIDER, listings_of

__all__ = ["TidalClient"]

log = logging.getLogger("isrc_resolver")

JSON_API = "application/vnd.api+json"
EARLY = 60.0  # seconds before its expiry a token is renewed


class TidalClient(StoreClient):
    """TIDAL's tracks by ISRC, as listings (see :class:`StoreClient`)."""

    name = PROVIDER
    batch = 20
    slow_pause = 5.0  # TIDAL's bucket refills about a request every 5 s

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.api_url = settings.endpoint("tidal_api_url").rstrip("/")
        self.token_url = settings.endpoint("tidal_token_url")
        self.country = settings.market or DEFAULT_MARKET
        pair = (
            f"{settings.credential('TIDAL_CLIENT_ID')}:{settings.credential('TIDAL_CLIENT_SECRET')}"
        )
        self._basic = "Basic " + base64.b64encode(pair.encode()).decode()
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._renewed_without_success = 0

    def __repr__(self) -> str:
        return f"TidalClient(api_url={self.api_url!r})"

    async def __aenter__(self) -> TidalClient:
        await super().__aenter__()
        try:
            await self._bearer()
        except Transient as exc:  # TIDAL down: its part fails, not the run
            self.down = f"tidal: the token endpoint is not answering ({exc})"
            log.warning("TIDAL's token endpoint is not answering (%s): TIDAL is skipped", exc)
        return self

    async def _bearer(self) -> str:
        async with self._lock:  # one renewal; the others wait for it
            if self._token is None or self.clock() >= self._expires_at - EARLY:
                self._token, lifetime = await self._new_token()
                self._expires_at = self.clock() + lifetime
            return self._token

    async def _new_token(self) -> tuple[str, float]:
        response = await self._send_token()
        if response.status >= 500 or response.status == 429:
            raise Transient(f"token endpoint HTTP {response.status}", status=response.status)
        if response.status != 200:
            raise ConfigurationError(
                f"TIDAL refused the client credentials (HTTP {response.status} from "
                f"{self.token_url}): check TIDAL_CLIENT_ID and TIDAL_CLIENT_SECRET"
            )
        try:
            body = obj(json_body(response), "token answer")
            token = text(body.get("access_token"), "access_token")
            lifetime = whole(body.get("expires_in"), "expires_in") or 3600
        except BadAnswer as exc:
            raise Transient(f"token answer: {exc}") from None
        if not token or not token.isprintable():
            raise Transient("token answer without a usable access_token")
        return token, float(lifetime)

    async def _send_token(self) -> HttpResponse:
        request = HttpRequest(
            "POST",
            self.token_url,
            headers={"Authorization": self._basic, "Accept": "application/json"},
            data={"grant_type": "client_credentials"},
        )
        return await self.send(request, endpoint="token")

    async def request(self, isrcs: Sequence[str]) -> HttpRequest:
        query = [("countryCode", self.country)]
        query += [("filter[isrc]", isrc) for isrc in isrcs]
        query.append(("include", "albums,artists"))
        headers = {"Authorization": f"Bearer {await self._bearer()}", "Accept": JSON_API}
        return HttpRequest("GET", f"{self.api_url}/tracks?{urlencode(query)}", headers=headers)

    def pause_for(self, response: HttpResponse) -> float:
        """A 429's wait: ``Retry-After`` when given, else what the bucket headers say a
        request costs over its refill rate, else :attr:`slow_pause`."""
        headers = {k.lower(): v for k, v in response.headers.items()}
        if "retry-after" in headers:
            return super().pause_for(response)
        try:
            cost = float(headers["x-ratelimit-requested-tokens"])
            refill = float(headers["x-ratelimit-replenish-rate"])
        except (KeyError, ValueError):
            return self.slow_pause
        return min(max(cost / refill, 0.1), 60.0) if refill > 0 else self.slow_pause

    def next_page(self, request: HttpRequest, response: HttpResponse) -> HttpRequest | None:
        """One ISRC's answer comes in pages: ``links.next``, a path below the API base
        (anything else is not followed: an answer never sends us elsewhere)."""
        if response.status != 200:
            return None
        try:
            links = obj(obj(json_body(response), "the answer").get("links"), "links")
            path = text(links.get("next"), "links.next")
        except (BadAnswer, Transient):
            return None
        if not path.startswith("/") or path.startswith("//") or not path.isprintable():
            return None
        return HttpRequest("GET", f"{self.api_url}{path}", headers=dict(request.headers))

    def answer(
        self, isrcs: Sequence[str], request: HttpRequest, pages: Sequence[HttpResponse]
    ) -> dict[str, Listing]:
        """Every page's tracks and included resources, read as one answer."""
        data: list[object] = []
        included: list[object] = []
        bodies = [self._page(request, response) for response in pages]
        self._renewed_without_success = 0
        try:
            for body in bodies:
                data += items(body.get("data"), "data")
                included += items(body.get("included"), "included")
            return listings_of(isrcs, {"data": data, "included": included}, self.clock())
        except BadAnswer as exc:
            raise Refused(str(exc)) from None

    def _page(self, request: HttpRequest, response: HttpResponse) -> Mapping[str, object]:
        status = response.status
        if status == 401:
            self._refused(request.headers.get("Authorization", ""))
        if status == 400:
            raise refusal(response, "filter[isrc]")
        if status != 200:
            raise Refused(f"HTTP {status} ({first_error(response)[0]})")
        try:
            return obj(json_body(response), "the answer")
        except BadAnswer as exc:
            raise Refused(str(exc)) from None

    def _refused(self, sent: str) -> None:
        """A 401: renew the token it was sent with (once), and ask again."""
        if sent == f"Bearer {self._token}":
            self._renewed_without_success += 1
            self._token = None
        if self._renewed_without_success > 1:
            raise Refused("HTTP 401 with a new token: check TIDAL_CLIENT_ID and the app's access")
        raise Transient("HTTP 401: the token was renewed", status=401)
