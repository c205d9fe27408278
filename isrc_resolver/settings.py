"""Every setting of a run, in one typed, frozen object, with every default defined once.

The CLI builds a :class:`Settings` from its flags and the library from its keyword
arguments (:class:`Options`); both go through :meth:`Settings.build`, which reads the same
environment variables, applies the same defaults and checks the same rules. The stages
receive the finished object and never look anywhere else.

This module imports nothing heavy: ``isrc-resolve --help`` reads its defaults from here.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

from ._logging import Secret
from .database import DatabaseURL
from .errors import ConfigurationError
from .markets import ISRC_COUNTRY, MARKETS, isrc_market, parse_markets
from .models import Enrichment, FallbackSearch, MatchPreference
from .provider import catalogues, endpoint_defaults, gather, store_options

__all__ = [
    "DAY",
    "DEFAULT_API_URL",
    "DEFAULT_TOKEN_URL",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "Options",
    "Settings",
    "cache_location",
    "default",
    "default_cache",
    "default_cache_path",
    "store_options",
]

DAY = 86_400.0
DEFAULT_API_URL = "https://api.spotify.com/v1"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"

# Where credentials are looked up, in order: ours first, then spotipy's names, which many
# users already have set.
ENV_CLIENT_ID = ("SPOTIFY_CLIENT_ID", "SPOTIPY_CLIENT_ID")
ENV_CLIENT_SECRET = ("SPOTIFY_CLIENT_SECRET", "SPOTIPY_CLIENT_SECRET")
ENV_API_URL = "SPOTIFY_API_URL"
ENV_TOKEN_URL = "SPOTIFY_TOKEN_URL"
ENV_CACHE = "ISRC_RESOLVER_CACHE"  # the cache: a file's path or a postgresql:// URL
SPOTIFY = "spotify"

SPOTIFY_MAX_LIMIT = 10  # search results per request (Spotify's maximum since February 2026)
TITLE_PAGES = 3  # pages of a title/artist search, at most (a request each)
DEFAULT_MARKET = "US"  # where a search without `market` looks (client credentials)
SEARCH_STRATEGY = "isrc"  # in cache keys: answers of another strategy are other answers


def default_cache_path() -> Path:
    """``~/.cache/isrc-resolver/cache.sqlite3`` or the platform's equivalent."""
    from platformdirs import user_cache_path  # only when a cache is opened, not for --help

    return user_cache_path("isrc-resolver", appauthor=False) / "cache.sqlite3"


def cache_location(given: str | os.PathLike[str] | DatabaseURL) -> Path | DatabaseURL:
    """A cache named by a path or a ``postgresql://`` URL (ConfigurationError for a URL
    that does not parse; its message shows the URL masked)."""
    if isinstance(given, DatabaseURL):
        return given
    location = getattr(given, "location", None)  # an open cache's
    if isinstance(location, Path | DatabaseURL):
        return location
    try:
        url = DatabaseURL.parse(os.fspath(given))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return url if url is not None else Path(given)


def default_cache(environ: Mapping[str, str] | None = None) -> Path | DatabaseURL:
    """The cache a run opens unless told: ``ISRC_RESOLVER_CACHE`` (a path or a
    ``postgresql://`` URL) when set, else :func:`default_cache_path`."""
    given = (os.environ if environ is None else environ).get(ENV_CACHE)
    return cache_location(given) if given else default_cache_path()


def api_scope(api_url: str) -> str:
    """``api_url`` as a cache and ledger key: no trailing slash, and no port for a server
    on this machine (the bundled local Spotify takes a free port each time)."""
    parts = urlsplit(api_url.rstrip("/"))
    host = parts.hostname or ""
    if _loopback(host) and parts.port is not None:
        netloc = f"[{host}]" if ":" in host else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return parts.geturl()


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What a run needs to know. Build it with :meth:`build`, which validates it."""

    client_id: str
    client_secret: Secret = field(repr=False)
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL
    market: str | None = None
    prefer: MatchPreference = MatchPreference.EXACT
    limit: int = SPOTIFY_MAX_LIMIT
    rate: float = 10.0  # ceiling, requests per second
    adaptive: bool = True
    concurrency: int = 8
    max_retries: int = 5
    max_wait: float = 120.0  # longest Retry-After sat out, seconds
    timeout: float = 30.0  # per request, seconds
    cache: Path | DatabaseURL | None = None  # None: no cache and nothing on disk
    max_age: float = 30 * DAY  # seconds (Options and the CLI take days)
    not_found_max_age: float = 7 * DAY  # seconds (likewise)
    refresh: bool = False
    ignore_cooldown: bool = False
    progress: bool = False
    with_: tuple[Enrichment, ...] = ()
    allow_per_album: bool = False
    escape_formulas: bool = True  # CSV/TSV output: make formula-like text from Spotify inert
    allow_insecure_http: bool = False  # plain http:// to a host that is not this machine
    max_requests: int | None = None  # API requests this run may send (the token aside)
    fallback_markets: tuple[str, ...] = ("isrc",)  # after a miss in `market`; "isrc": its own
    fallback_search: FallbackSearch = FallbackSearch.VERIFIED  # title/artist after all misses
    min_score: float = 90.0  # title/artist similarity (0-100) for fuzzy and for match_check
    daily_quota: int | None = None  # API requests the account may send in any 24 hours
    account: str | None = None  # the ledger's and cooldown's key (default: client id @ API)
    providers: tuple[str, ...] = (SPOTIFY,)  # Spotify and the stores beside it, preferred first
    # The stores' URLs by option ("tidal_api_url"; the spec's default when absent), their
    # ceilings in requests per second by name, and their credentials by variable.
    endpoints: Mapping[str, str] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    credentials: Mapping[str, Secret | str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _check(self)

    @property
    def scope(self) -> str:
        """The service answers come from: the API URL, without the port when the host is
        this machine (a local server's port changes from run to run; its answers do not)."""
        return api_scope(self.api_url)

    @property
    def variant(self) -> str:
        """The part of a cache key that changes Spotify's answer or our choice: where the
        answers come from, the market, the match preference and the search strategy."""
        return (
            f"api={self.scope};market={self.market or '-'};prefer={self.prefer.value};"
            f"search={SEARCH_STRATEGY}"
        )

    @property
    def second(self) -> tuple[str, ...]:
        """The stores asked besides Spotify (before it: they have no daily quota)."""
        return tuple(p for p in self.providers if p != SPOTIFY)

    @property
    def columns(self) -> tuple[str, ...]:
        """The column groups a run adds after Spotify's own: each store's (by name; with
        ``spotify`` among them when it is not the first, for the names' preference), then
        those of ``with_``."""
        order = self.second if self.providers[0] == SPOTIFY else self.providers
        return (*order, *self.with_)

    def endpoint(self, option: str) -> str:
        """A store's URL by its option (``"tidal_api_url"``): as given, else its default."""
        given = self.endpoints.get(option)
        return given or endpoint_defaults()[option]

    def rate_of(self, provider: str) -> float:
        """A store's ceiling, requests per second."""
        return self.rates.get(provider) or catalogues()[provider].rate

    def credential(self, env: str) -> str:
        """A store's credential, by its environment variable (checked by :meth:`build`)."""
        value = self.credentials[env]
        return value.reveal() if isinstance(value, Secret) else value

    def store_account(self, provider: str) -> str:
        """Whose allowance a store's request spends, in the ledger: the store at its API."""
        api = catalogues()[provider].endpoints[0].option
        return f"{provider}@{api_scope(self.endpoint(api))}"

    def provider_scope(self, provider: str) -> str:
        """Where a store's answers come from, as a cache key (see :attr:`scope`)."""
        spec = catalogues()[provider]
        where = f" market={self.market or DEFAULT_MARKET}" if spec.by_market else ""
        return f"{provider} {api_scope(self.endpoint(spec.endpoints[0].option))}{where}"

    def markets_for(self, isrc: str) -> tuple[str | None, ...]:
        """The markets to search ``isrc`` in, in order: ``market`` (None: Spotify's default,
        the US), then each fallback market not already on the list."""
        first = self.market
        out: list[str | None] = [first]
        for entry in self.fallback_markets:
            code = isrc_market(isrc) if entry == ISRC_COUNTRY else entry
            if code is not None and code not in out and not (first is None and code == "US"):
                out.append(code)
        return tuple(out)

    def markets_left(self, isrc: str, searched: tuple[str, ...]) -> tuple[str | None, ...]:
        """The markets of :meth:`markets_for` ``isrc`` was not searched in yet, by
        ``searched`` (as :attr:`Result.searched` records them: ``US`` for Spotify's
        default). Nothing recorded means the first market only: a miss cached before the
        places searched were kept."""
        done = searched or (self.market or DEFAULT_MARKET,)
        return tuple(m for m in self.markets_for(isrc) if (m or DEFAULT_MARKET) not in done)

    @property
    def account_key(self) -> str:
        """Whose allowance a request spends: the ledger and the cooldown are kept under
        this (``account``, or the client id at the API)."""
        return self.account or f"{self.client_id}@{self.scope}"

    def evolve(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated again."""
        return replace(self, **changes)

    @classmethod
    def build(
        cls,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        looked_in: str = "the environment",
        remedy: str | None = None,
        **options: Any,
    ) -> Settings:
        """Settings from explicit values, falling back on ``environ`` (default: the process
        environment) for credentials and endpoints. ``options`` are :class:`Options`."""
        env = os.environ if environ is None else environ
        client_id = client_id or _first(env, ENV_CLIENT_ID)
        client_secret = client_secret or _first(env, ENV_CLIENT_SECRET)
        given = options.get("providers")
        spotify = not given or SPOTIFY in _providers(given)  # else the other stores alone
        for value, names, param in (
            (client_id, ENV_CLIENT_ID, "client_id"),
            (client_secret, ENV_CLIENT_SECRET, "client_secret"),
        ):
            if spotify and not value:
                raise ConfigurationError(
                    f"{names[0]} is not set (looked in {looked_in}, also for spotipy's "
                    f"{names[1]}); {remedy or f'set it there, or pass {param}=...'}"
                )
        options["api_url"] = options.get("api_url") or env.get(ENV_API_URL) or DEFAULT_API_URL
        options["token_url"] = (
            options.get("token_url") or env.get(ENV_TOKEN_URL) or DEFAULT_TOKEN_URL
        )
        options = _stores(options, env, looked_in, remedy)
        secret = Secret(client_secret or "")
        return cls(client_id=client_id or "", client_secret=secret, **_coerce(options, env))


class Options(TypedDict, total=False):
    """The keyword arguments ``Resolver(...)`` and ``resolve_file(...)`` take: every field
    of :class:`Settings` but the credentials, in the forms a caller has at hand."""

    api_url: str | None
    token_url: str | None
    market: str | None
    prefer: MatchPreference | str
    limit: int
    rate: float
    adaptive: bool
    concurrency: int
    max_retries: int
    max_wait: float
    timeout: float
    # a path, a postgresql:// URL, an open Cache, True: the default (ISRC_RESOLVER_CACHE or
    # the user's cache folder)
    cache: str | os.PathLike[str] | DatabaseURL | bool | None
    max_age: float | timedelta  # days (as the CLI's --max-age), or a timedelta
    not_found_max_age: float | timedelta  # likewise
    refresh: bool
    ignore_cooldown: bool
    progress: bool
    with_: Iterable[Enrichment | str]
    allow_per_album: bool
    escape_formulas: bool
    allow_insecure_http: bool
    max_requests: int | None
    fallback_markets: str | Iterable[str] | None
    fallback_search: FallbackSearch | str
    min_score: float
    daily_quota: int | None
    account: str | None
    providers: str | Iterable[str]  # "spotify,deezer" or ("spotify", "deezer")
    # The stores' URLs by option ({"tidal_api_url": ...}) and ceilings by name ({"tidal": 1}).
    # Each is also taken as a keyword of its own: tidal_api_url=..., deezer_rate=...
    endpoints: Mapping[str, str]
    rates: Mapping[str, float]


_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(Settings) if f.name not in ("client_id", "credentials")
}


def default(name: str) -> Any:
    """The default of one setting (for ``--help`` texts and argparse defaults)."""
    return _DEFAULTS[name]


def _stores(
    options: dict[str, Any], env: Mapping[str, str], looked_in: str, remedy: str | None
) -> dict[str, Any]:
    """``options`` with the stores' URLs, ceilings and credentials gathered: each URL as
    given, else from its variable; the credentials of every store asked for, from the
    environment (ConfigurationError naming the first missing variable)."""
    endpoints, rates = gather(options, env)
    asked = _providers(options["providers"]) if options.get("providers") else (SPOTIFY,)
    credentials: dict[str, Secret | str] = {}
    for name in (n for n in asked if n != SPOTIFY):
        for c in catalogues()[name].credentials:
            if not env.get(c.env):
                raise ConfigurationError(
                    f"{c.env} is not set (looked in {looked_in}): {name} needs {c.what}; "
                    f"{remedy or 'set it there'}; or leave {name} out of providers="
                )
            credentials[c.env] = Secret(env[c.env]) if c.secret else env[c.env]
    return {**options, "endpoints": endpoints, "rates": rates, "credentials": credentials}


def _first(env: Mapping[str, str], names: Iterable[str]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def _coerce(options: dict[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Caller-friendly forms into the typed ones (strings to enums, ``True`` to a path)."""
    unknown = set(options) - set(_DEFAULTS) - {"credentials"}
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    out = dict(options)
    if out.get("market"):
        out["market"] = str(out["market"]).upper()
    if "prefer" in out:
        try:
            out["prefer"] = MatchPreference(out["prefer"])
        except ValueError:
            raise ConfigurationError(
                f"prefer must be one of {', '.join(m.value for m in MatchPreference)}, "
                f"not {out['prefer']!r}"
            ) from None
    if "fallback_markets" in out:
        try:
            out["fallback_markets"] = parse_markets(out["fallback_markets"])
        except ValueError as exc:
            raise ConfigurationError(f"fallback_markets: {exc}") from None
    if "fallback_search" in out:
        try:
            out["fallback_search"] = FallbackSearch(out["fallback_search"])
        except ValueError:
            choices = ", ".join(f.value for f in FallbackSearch)
            raise ConfigurationError(
                f"fallback_search must be one of {choices}, not {out['fallback_search']!r}"
            ) from None
    if "with_" in out:
        given = tuple(out["with_"])
        try:
            kinds = tuple(dict.fromkeys(Enrichment(kind) for kind in given))
        except ValueError:
            kinds = ()
        if len(kinds) != len(set(given)):
            choices = ", ".join(e.value for e in Enrichment)
            raise ConfigurationError(
                f"with_ takes {choices}; got {given!r} (a store's columns come with providers=)"
            )
        out["with_"] = kinds
    if out.get("providers", "") is None:
        del out["providers"]  # not given: Spotify alone
    if "providers" in out:
        out["providers"] = _providers(out["providers"])
    for name in ("max_age", "not_found_max_age"):  # days or a timedelta, kept as seconds
        if name in out:
            out[name] = _seconds(out[name], name)
    if "cache" in out:
        cache = out["cache"]
        if cache is True:
            out["cache"] = default_cache(env)
        elif cache is None or cache is False:
            out["cache"] = None
        else:
            out["cache"] = cache_location(cache)
    return out


def _providers(given: object) -> tuple[str, ...]:
    """The stores asked, in the order of preference for the row's names."""
    names = given.split(",") if isinstance(given, str) else list(given)  # type: ignore[call-overload]
    out = tuple(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
    known = (SPOTIFY, *catalogues())
    unknown = [n for n in out if n not in known]
    if unknown or not out:
        which = f": {', '.join(map(repr, unknown))} is not one" if unknown else ""
        raise ConfigurationError(
            f"providers= takes any of {', '.join(known)}, comma-separated "
            f"(spotify,deezer,tidal); got {given!r}{which}"
        )
    return out


def _seconds(age: object, name: str) -> float:
    """An age given as days (a number, as on the command line) or a ``timedelta``."""
    if isinstance(age, timedelta):
        return age.total_seconds()
    if isinstance(age, int | float) and not isinstance(age, bool):
        return float(age) * DAY
    raise ConfigurationError(f"{name} is a number of days or a timedelta, not {age!r}")


def _check_url(url: str, name: str, allow_insecure_http: bool) -> None:
    """https anywhere; plain http only to this machine (the local server), unless the
    caller says it is meant: the credentials and tokens would cross the network in clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http(s) URL with a host, not {url!r}")
    if parts.scheme == "https" or allow_insecure_http or _loopback(parts.hostname):
        return
    what = (
        "its answers would cross the network unencrypted, open to change on the way"
        if name in endpoint_defaults()
        else "the client secret and access tokens would cross the network unencrypted"
    )
    raise ConfigurationError(
        f"{name}= {url} is plain http to another machine: {what}. Use https, or "
        "allow_insecure_http=True if that is really meant"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(s: Settings) -> None:
    """The rules every Settings obeys; messages name the parameter, not a CLI flag."""
    _check_url(s.api_url, "api_url", s.allow_insecure_http)
    _check_url(s.token_url, "token_url", s.allow_insecure_http)
    for option in endpoint_defaults():
        _check_url(s.endpoint(option), option, s.allow_insecure_http)
    if not 1 <= s.limit <= SPOTIFY_MAX_LIMIT:
        raise ConfigurationError(
            f"limit must be between 1 and {SPOTIFY_MAX_LIMIT} (Spotify's maximum), not {s.limit}"
        )
    rates = {f"{name}_rate": value for name, value in s.rates.items()}
    for name, value in {
        n: getattr(s, n) for n in ("rate", "max_wait", "timeout")
    }.items() | rates.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ConfigurationError(f"{name} must be a positive, finite number, not {value!r}")
    for name in ("max_age", "not_found_max_age"):
        value = getattr(s, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ConfigurationError(f"{name} must be 0 or more seconds, not {value!r}")
    if s.concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, not {s.concurrency}")
    if s.max_requests is not None and s.max_requests < 0:
        raise ConfigurationError(f"max_requests must be 0 or more, not {s.max_requests}")
    if s.daily_quota is not None and s.daily_quota < 1:
        raise ConfigurationError(f"daily_quota must be 1 or more, not {s.daily_quota}")
    if s.daily_quota is not None and s.cache is None:
        raise ConfigurationError(
            "daily_quota= needs a cache: the account's ledger of requests is kept there, and "
            "without it no run could see what the others sent. Remove cache=None"
        )
    if s.account is not None and not (s.account.strip() and s.account.isprintable()):
        raise ConfigurationError(f"account must be a non-empty, printable name, not {s.account!r}")
    if s.account is not None and s.account.strip() == "*":
        # The ledger keeps an old release's cooldown under "*", holding every account: a
        # name that is a wildcard there would share every account's cooldown.
        raise ConfigurationError(
            "account= '*' is reserved (it stands for every account in the ledger); "
            "name the account, e.g. the developer account's e-mail or team name"
        )
    if s.max_retries < 0:
        raise ConfigurationError(f"max_retries must be 0 or more, not {s.max_retries}")
    if s.market is not None and s.market not in MARKETS:
        raise ConfigurationError(
            f"market must be a Spotify market (ISO 3166-1 alpha-2 code such as GB or SE), "
            f"not {s.market!r}"
        )
    if not (isinstance(s.min_score, int | float) and 0 <= s.min_score <= 100):
        raise ConfigurationError(f"min_score must be between 0 and 100, not {s.min_score!r}")
