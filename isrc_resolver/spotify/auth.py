"""The access token: one per process, shared by every request, fetched one at a time.

:class:`TokenProvider` knows *when* a token is needed; *how* it is fetched is a callable
passed in, which keeps it easy to test with a counter. :class:`TokenEndpoint` is that
callable for Spotify: the Client Credentials POST, its retries and the checks of its
answer. :class:`TokenStore` keeps a token on disk between runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception_type

from .._logging import Secret, register_secret
from ..errors import ConfigurationError, CredentialsError, TokenError
from ..http.retry import RetryPolicy, Transient
from ..http.stats import ClientStats
from ..http.transport import HttpRequest, Transport, TransportError

__all__ = ["AccessToken", "TokenEndpoint", "TokenProvider", "TokenStore"]

log = logging.getLogger("isrc_resolver")


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when it expires (Unix time). Its ``repr`` hides the value."""

    value: str
    expires_at: float

    def __repr__(self) -> str:
        return f"AccessToken(value='***', expires_at={self.expires_at:.0f})"


TokenFetcher = Callable[[], Awaitable[AccessToken]]


class TokenProvider:
    """Hand out a valid token; renew it shortly before expiry or after a 401.

    However many callers ask at once, at most one fetch is in flight.
    """

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        refresh_margin: float = 60.0,
        store: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: AccessToken | None = None
        self._refresh_at = 0.0
        self.fetches = 0
        if store is not None and (stored := store.load()) is not None:
            self._set(stored)

    def __repr__(self) -> str:
        return f"TokenProvider(fetches={self.fetches})"

    def _set(self, token: AccessToken) -> None:
        # Renew ``refresh_margin`` before expiry rather than risk a 401 mid-request. Short
        # lives (the local server can issue 5 s tokens) get at most a fifth of their life
        # as margin, so a token is still used for most of it.
        register_secret(token.value)
        life = max(0.0, token.expires_at - self._clock())
        self._token = token
        self._refresh_at = token.expires_at - min(self._margin, life / 5)

    def _usable(self, token: AccessToken | None) -> bool:
        return token is not None and token is self._token and self._clock() < self._refresh_at

    async def get(self) -> str:
        """A token that is valid now."""
        token = self._token
        if token is not None and self._usable(token):
            return token.value
        async with self._lock:
            token = self._token
            if token is None or not self._usable(token):
                token = await self._fetch()
                self.fetches += 1
                self._set(token)
                if self._store:
                    await asyncio.to_thread(self._store.save, token)
            return token.value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` after the server rejected it; the next :meth:`get` fetches anew.

        A token already replaced by another worker's refresh is left alone, so a burst of
        401s on one old token costs one fetch, not one each.
        """
        if self._token is not None and self._token.value == value:
            self._token = None
            if self._store:
                self._store.drop()


class TokenStore:
    """One app's access token kept on disk between runs (never the client secret).

    The file is created with mode 0600 and replaced atomically. Tokens of several apps live
    side by side, keyed by a hash of the client id *and* secret (never the secret itself):
    a changed secret finds no token and asks for a new one, so a wrong secret is noticed.
    """

    def __init__(
        self,
        path: Path,
        client_id: str,
        client_secret: Secret,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.path = path
        credentials = f"{client_id}\0{client_secret.reveal()}".encode()
        self._key = hashlib.sha256(credentials).hexdigest()[:32]
        self._clock = clock
        self._broken = False  # the file could not be written: not tried again

    @classmethod
    def beside(
        cls,
        cache_file: Path | None,
        client_id: str,
        client_secret: Secret,
        clock: Callable[[], float] = time.time,
    ) -> TokenStore | None:
        """The store that goes with a cache file (``tokens.json`` next to it); none
        without a cache, so that ``--no-cache`` keeps nothing on disk."""
        if cache_file is None:
            return None
        return cls(cache_file.with_name("tokens.json"), client_id, client_secret, clock=clock)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def _read_all(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self) -> AccessToken | None:
        entry = self._read_all().get(self._key)
        if not isinstance(entry, dict):
            return None
        value, expires_at = entry.get("access_token"), entry.get("expires_at")
        if not isinstance(value, str) or not isinstance(expires_at, int | float):
            return None
        if expires_at <= self._clock():
            return None
        return AccessToken(value, float(expires_at))

    def save(self, token: AccessToken) -> None:
        data = self._read_all()
        now = self._clock()
        data = {k: v for k, v in data.items() if float(v.get("expires_at", 0)) > now}  # type: ignore[arg-type]
        data[self._key] = {"access_token": token.value, "expires_at": token.expires_at}
        self._write(data)

    def drop(self) -> None:
        data = self._read_all()
        if data.pop(self._key, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, dict[str, object]]) -> None:
        """Replace the file; a machine that refuses (a full disk, a read-only folder) costs
        only the reuse of the token, never the run: said once, then the file is left be."""
        if self._broken:
            return
        try:
            self._replace(data)
        except OSError as exc:
            self._broken = True
            log.warning(
                "cannot keep the access token in %s (%s); runs will each ask for a new one",
                self.path,
                exc.strerror or exc,
            )

    def _replace(self, data: dict[str, dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600 from the start: the token never sits in a file
        # anyone else can read, not even for a moment.
        fd, tmp = tempfile.mkstemp(prefix=".token-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class TokenEndpoint:
    """Spotify's token endpoint: POST the client credentials, get a bearer token.

    Transient failures (5xx, 429, dropped connections) are retried by ``policy``; a
    rejection never is. Every token and the credentials are registered as secrets, so a
    server that echoes them cannot put them in a log.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: Secret,
        token_url: str,
        transport: Transport,
        *,
        policy: RetryPolicy,
        stats: ClientStats,
        sleep: Callable[[float], Awaitable[None]],
        wall_clock: Callable[[], float],
    ) -> None:
        self._client_id = client_id
        self._secret = client_secret
        self.token_url = token_url
        self._transport = transport
        self.policy = policy
        self.stats = stats
        self._sleep = sleep
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"TokenEndpoint({self.token_url!r}, client_id={self._client_id!r})"

    async def __call__(self) -> AccessToken:
        return await self._fetch_token()

    async def _fetch_token(self) -> AccessToken:
        """POST the client credentials; retry transient failures, never a rejection."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Transient),
            stop=lambda s: s.attempt_number > self.policy.max_retries,
            wait=lambda s: self.policy.backoff(s.attempt_number),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._token_attempt()
        except Transient as exc:
            # Not a per-request error: without a token no request can be made, so the run
            # stops here instead of every ISRC retrying the token in turn.
            raise TokenError(
                f"could not get an access token from {self.token_url}: {exc.reason} "
                f"(after {self.policy.max_retries} retries); check token_url= or try again later"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _token_attempt(self) -> AccessToken:
        credentials = f"{self._client_id}:{self._secret.reveal()}"
        basic = base64.b64encode(credentials.encode()).decode("ascii")
        register_secret(credentials)  # a server that echoes them must not put them in a log
        register_secret(basic)
        headers = {"Authorization": f"Basic {basic}"}
        self.stats.requests["token"] += 1
        request = HttpRequest(
            "POST", self.token_url, headers=headers, data={"grant_type": "client_credentials"}
        )
        try:
            response = await self._transport.send(request)
        except TransportError as exc:
            self.stats.transport_errors += 1
            raise Transient(f"connection failed ({exc})") from None
        status, body = response.status, response.body
        log.debug("token -> %d", status)
        if status >= 500 or status == 429:
            raise Transient(f"HTTP {status}", status=status)
        try:
            data = json.loads(body)
        except ValueError:
            if status == 200:
                raise Transient("token answer is not JSON", status=status) from None
            data = {}
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else None
            if error == "invalid_client":
                raise CredentialsError(
                    "Spotify rejected the client id or secret (invalid_client); check "
                    "SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"
                )
            raise ConfigurationError(
                f"token request refused: HTTP {status} {error or ''}".rstrip()
                + f"; check token_url= ({self.token_url})"
            )
        return AccessToken(*_read_token(data, self.token_url, self._wall_clock()))


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_LONGEST_TOKEN_LIFE = 366 * 86_400.0


def _read_token(data: object, url: str, now: float) -> tuple[str, float]:
    """The token and its expiry (Unix time) from a token answer, checked; a clear
    :class:`TokenError` for anything that could not be sent or trusted."""
    if not isinstance(data, dict):
        raise TokenError(f"the token endpoint {url} answered with something other than an object")
    token, token_type = data.get("access_token"), data.get("token_type", "")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenError(f"the token endpoint {url} did not answer with a bearer token")
    if not isinstance(token, str) or not _TOKEN_CHARS.fullmatch(token):
        raise TokenError(
            f"the token endpoint {url} answered with an access token that cannot be sent "
            "(empty, or with spaces, line breaks or other characters a token never has)"
        )
    register_secret(token)
    expires_in = data.get("expires_in", 3600)
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not 0 < expires_in < _LONGEST_TOKEN_LIFE
    ):
        raise TokenError(
            f"the token endpoint {url} gave an unusable expires_in ({str(expires_in)[:20]!r}); "
            "expected a number of seconds"
        )
    return token, now + float(expires_in)
