"""The local Spotify's tokens: issued for the client credentials, checked on each call."""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Callable

from aiohttp import web

from .config import FakeConfig, Stats, error

__all__ = ["Tokens"]


class Tokens:
    """A mixin of :class:`~.server.FakeSpotify`: ``POST /api/token`` and the bearer check."""

    config: FakeConfig
    _stats: Stats
    _tokens: dict[str, float]
    _clock: Callable[[], float]

    def expire_tokens(self) -> None:
        """Make every issued token expired, as if an hour had passed."""
        for token in self._tokens:
            self._tokens[token] = 0.0

    async def _token(self, request: web.Request) -> web.Response:
        self._stats.token_requests += 1
        form = await request.post()
        client_id, client_secret = (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                client_id, _, client_secret = decoded.partition(":")
            except ValueError:
                client_id = client_secret = ""
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type parameter is missing",
                },
                status=400,
            )
        if not (
            secrets.compare_digest(client_id, self.config.client_id)
            and secrets.compare_digest(client_secret, self.config.client_secret)
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "Invalid client"}, status=400
            )
        token = "BQ" + secrets.token_urlsafe(60)
        lifetime = self.config.token_lifetime
        self._tokens[token] = self._clock() + lifetime
        self._stats.tokens_issued += 1
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": math.ceil(lifetime)}
        )

    def _check_token(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return error(401, "No token provided")
        scheme, _, token = header.partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None:
            return error(401, "Invalid access token")
        if self._clock() >= expires:
            return error(401, "The access token expired")
        return None
