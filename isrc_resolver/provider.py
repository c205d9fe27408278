"""What a store beside Spotify is to the rest of the code: a :class:`ProviderSpec`.

Each store's folder (``deezer/``, ``tidal/``, ``apple/``, ``musicbrainz/``) describes itself
with one spec in its ``spec.py``: its name and columns, its endpoints and their environment
variables, the credentials it needs, its pace and batch size, and where its client is.
:mod:`isrc_resolver.providers` lists the specs; everything else (settings, the CLI's
flags, the columns, the pipeline, the summary and the report) loops over them and names
none. Adding a store is adding a folder and a line in that registry.

:func:`catalogues` reaches the registry by name (``importlib``), as a plugin system would:
the settings, which sit low in the layers, read the specs without importing every folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Credential",
    "Endpoint",
    "ProviderSpec",
    "catalogues",
    "endpoint_defaults",
    "gather",
    "spec_of",
    "store_options",
]

REGISTRY = "isrc_resolver.providers"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL a provider's client talks to: its setting (and library keyword), the
    environment variable that sets it, its default and what it is."""

    option: str  # "tidal_api_url": the Settings key, the keyword, the flag --tidal-api-url
    env: str
    default: str
    what: str

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Credential:
    """An environment variable a provider needs before it may be asked."""

    env: str
    what: str
    secret: bool = True  # never logged or shown


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One store beside Spotify, as the rest of the code sees it."""

    name: str  # "tidal": the --providers name, the column prefix, the cache's kind
    label: str  # "TIDAL": for people
    item: str  # "track", "song", "recording": what its id names
    site: str  # where its links lead (for the column's description)
    endpoints: tuple[Endpoint, ...]  # the first is its API, whose URL keys the cache
    client: str  # "package.module:Class", built as Class(settings, transport=, sleep=, ...)
    rate: float  # default ceiling, requests per second
    batch: int = 1  # ISRCs per request
    by_market: bool = False  # its answers depend on the first --market (a country, a storefront)
    credentials: tuple[Credential, ...] = ()
    note: str = ""  # one line for --providers help and the README

    @property
    def id_column(self) -> str:
        return f"{self.name}_{self.item}_id"

    @property
    def columns(self) -> tuple[str, str, str]:
        """Its output columns: the id, the link and the status."""
        return (self.id_column, f"{self.name}_url", f"{self.name}_status")

    @property
    def rate_option(self) -> str:
        return f"{self.name}_rate"

    def client_class(self) -> Any:
        module, _, name = self.client.partition(":")
        return getattr(importlib.import_module(module), name)


def catalogues() -> Mapping[str, ProviderSpec]:
    """Every store beside Spotify, by name, in the registry's order."""
    found: Mapping[str, ProviderSpec] = importlib.import_module(REGISTRY).CATALOGUES
    return found


def spec_of(name: str) -> ProviderSpec:
    return catalogues()[name]


def store_options() -> dict[str, ProviderSpec]:
    """The stores' own settings (``tidal_api_url``, ``deezer_rate``...) and whose they are."""
    out = {}
    for spec in catalogues().values():
        out.update({e.option: spec for e in spec.endpoints})
        out[spec.rate_option] = spec
    return out


def endpoint_defaults() -> dict[str, str]:
    """Every store's URL setting and its default."""
    return {e.option: e.default for s in catalogues().values() for e in s.endpoints}


def gather(
    options: MutableMapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, float]]:
    """The stores' URLs (by setting) and ceilings (by store) out of ``options`` (taken out
    of it: ``endpoints=``, ``rates=`` and the single keywords), a URL not given from its
    variable in ``env``. TypeError for a setting no store has."""
    endpoints = dict(options.pop("endpoints", None) or {})
    rates = dict(options.pop("rates", None) or {})
    for key, spec in store_options().items():
        value = options.pop(key, None)
        if key == spec.rate_option and value is not None:
            rates[spec.name] = value
        elif key != spec.rate_option and value:
            endpoints[key] = value
    for spec in catalogues().values():
        for e in spec.endpoints:
            if not endpoints.get(e.option) and env.get(e.env):
                endpoints[e.option] = env[e.env]
    unknown = sorted(set(endpoints) - set(endpoint_defaults()) | set(rates) - set(catalogues()))
    if unknown:
        raise TypeError(f"unknown store setting(s): {', '.join(unknown)}")
    return endpoints, rates
