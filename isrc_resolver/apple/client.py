"""Apple Music's catalogue songs by ISRC: 25 a request, with a developer token.

The developer token is an ES256 JWT signed here (PyJWT) with the MusicKit key whose path
is ``APPLE_MUSIC_PRIVATE_KEY``, its id ``APPLE_MUSIC_KEY_ID`` and the team
``APPLE_MUSIC_TEAM_ID``. The key is read and a token signed when the client opens, so a
missing or unreadable key stops the run (exit 2) before any request. A token lives 12
hours and is signed again an hour before its end; a 401 signs a new one once, and a second
401 in a row fails Apple's part of the run (the others go on).

Apple's 429 comes without ``Retry-After`` and clears within a second or two: every
request waits half a second and the gate learns. The storefront is the first
``--market``, lower-cased (default ``us``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ConfigurationError
from ..http.asking import Refused, StoreClient, json_body, refusal
from ..http.retry import Transient
from ..http.transport import HttpRequest, HttpResponse
from ..listing import Listing
from ..settings import DEFAULT_MARKET, Settings
from ..untrusted import BadAnswer
from .answer import PROVIDER, listings_of

__all__ = ["AppleClient", "developer_token"]

log = logging.getLogger("isrc_resolver")

LIFETIME = 12 * 3600  # seconds a developer token is made for (Apple allows six months)
RENEW_BEFORE = 3600.0
_KEY_LIMIT = 64 * 1024  # a .p8 key is a few hundred bytes


def developer_token(team_id: str, key_id: str, key_pem: bytes, now: float) -> str:
    """An ES256 developer token: header ``kid``, claims ``iss``, ``iat``, ``exp``."""
    import jwt  # PyJWT, with cryptography for ES256

    claims = {"iss": team_id, "iat": int(now), "exp": int(now) + LIFETIME}
    return jwt.encode(claims, key_pem, algorithm="ES256", headers={"kid": key_id})


def read_key(path: str) -> bytes:
    """The .p8 key's bytes (ConfigurationError naming the path and the cause)."""
    where = Path(os.path.expanduser(path))
    try:
        if where.stat().st_size > _KEY_LIMIT:
            raise ConfigurationError(f"APPLE_MUSIC_PRIVATE_KEY {where} is too large for a .p8 key")
        return where.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"APPLE_MUSIC_PRIVATE_KEY {where} cannot be read ({exc.strerror or exc}): give the "
            "path of the MusicKit .p8 key"
        ) from None


class AppleClient(StoreClient):
    """Apple Music's songs by ISRC, as listings (see :class:`StoreClient`)."""

    name = PROVIDER
    batch = 25
    slow_pause = 0.5  # Apple's 429s clear within a second or two

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.api_url = settings.endpoint("apple_api_url").rstrip("/")
        self.storefront = (settings.market or DEFAULT_MARKET).lower()
        self._team = settings.credential("APPLE_MUSIC_TEAM_ID")
        self._key_id = settings.credential("APPLE_MUSIC_KEY_ID")
        self._key_path = settings.credential("APPLE_MUSIC_PRIVATE_KEY")
        self._key = b""
        self._token: str | None = None
        self._made_at = 0.0
        self._refused = 0

    def __repr__(self) -> str:
        return f"AppleClient(api_url={self.api_url!r})"

    async def __aenter__(self) -> AppleClient:
        await super().__aenter__()
        self._key = read_key(self._key_path)
        self._bearer()  # a key that cannot sign stops the run here, before any request
        return self

    def _bearer(self) -> str:
        now = self.clock()
        if self._token is None or now >= self._made_at + LIFETIME - RENEW_BEFORE:
            try:
                self._token = developer_token(self._team, self._key_id, self._key, now)
            except (ValueError, TypeError) as exc:  # not an EC key in PEM, say
                raise ConfigurationError(
                    f"APPLE_MUSIC_PRIVATE_KEY {self._key_path} cannot sign an ES256 token "
                    f"({type(exc).__name__}): give the MusicKit .p8 key as Apple sent it"
                ) from None
            self._made_at = now
        return self._token

    async def request(self, isrcs: Sequence[str]) -> HttpRequest:
        codes = ",".join(isrcs)  # the commas stay literal; only the brackets are encoded
        url = f"{self.api_url}/catalog/{quote(self.storefront)}/songs?filter%5Bisrc%5D={codes}"
        headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
        return HttpRequest("GET", url, headers=headers)

    def answer(
        self, isrcs: Sequence[str], request: HttpRequest, pages: Sequence[HttpResponse]
    ) -> dict[str, Listing]:
        (response,) = pages
        status = response.status
        if status == 401:
            self._refused += 1
            if self._refused > 1:
                raise Refused("HTTP 401 with a new token: check APPLE_MUSIC_TEAM_ID and _KEY_ID")
            self._token = None
            raise Transient("HTTP 401: a new token was signed", status=401)
        if status == 400:
            raise refusal(response, "filter[isrc]")
        if status != 200:
            raise Refused(f"HTTP {status}")
        self._refused = 0
        try:
            return listings_of(isrcs, json_body(response), self.storefront, self.clock())
        except BadAnswer as exc:
            raise Refused(str(exc)) from None
