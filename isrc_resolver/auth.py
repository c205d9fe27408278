"""The access token: one per process, shared by every request, fetched one at a time.

:class:`TokenProvider` knows *when* a token is needed; *how* it is fetched is a callable
passed in (the HTTP call lives in :mod:`isrc_resolver.client`), which keeps this module
free of network code and easy to test with a counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ._logging import register_secret

__all__ = ["AccessToken", "Secret", "TokenProvider", "TokenStore"]


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


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
