"""A PostgreSQL cache's address: a ``postgresql://`` URL that is never shown with its
password. ``str()`` and ``repr()`` give the masked form, so a log line, an error message,
the summary or the report that names the cache shows ``postgresql://user:***@host:5432/db``;
only the store asks for :meth:`DatabaseURL.secret` when it connects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "DatabaseURL", "scrub"]

MASK = "***"
_SCHEMES = ("postgresql", "postgres")
_SECRET_KEYS = {"password", "sslpassword", "passfile"}


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A ``postgresql://USER:PASSWORD@HOST:PORT/DB`` address (``postgres://`` too)."""

    _url: str = field(repr=False)
    host: str
    port: int
    database: str
    user: str | None
    password: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> DatabaseURL | None:
        """The URL in ``text``, or None when ``text`` is not a PostgreSQL URL (a file
        name). A PostgreSQL URL that does not parse raises ValueError, whose message
        shows it masked."""
        scheme = text.partition("://")[0].lower()
        if scheme not in _SCHEMES or "://" not in text:
            return None
        try:
            parts = urlsplit(text)
            port = parts.port or 5432
        except ValueError:
            raise ValueError(
                f"the database URL {_masked_text(text)} does not parse: write it as "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            ) from None
        query = dict(parse_qsl(parts.query))
        host = parts.hostname or query.get("host") or "localhost"
        database = unquote(parts.path.lstrip("/")) or query.get("dbname") or ""
        if not database:
            raise ValueError(
                f"the database URL {_masked_text(text)} names no database: end it with "
                "/DATABASE (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
            )
        password = unquote(parts.password) if parts.password else query.get("password")
        user = unquote(parts.username) if parts.username else query.get("user")
        return cls(text, host, port, database, user, password)

    def secret(self) -> str:
        """The URL as given, password and all: for the driver, never for showing."""
        return self._url

    @property
    def where(self) -> str:
        """``host:port``, as messages name the server."""
        return f"{self.host}:{self.port}"

    @property
    def masked(self) -> str:
        return _masked_text(self._url)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"DatabaseURL({self.masked!r})"


def _masked_text(url: str) -> str:
    """``url`` with its password (in the address or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*):[^@]*@", rf"\1:{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = f"{userinfo.partition(':')[0]}:{MASK}"
        netloc = f"{userinfo}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k in _SECRET_KEYS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: DatabaseURL) -> str:
    """``text`` (a driver's message, say) with ``url``'s password taken out wherever it
    shows, and the URL itself masked."""
    out = text.replace(url.secret(), url.masked)
    if url.password:
        out = out.replace(url.password, MASK)
    return out
