"""Spotify's markets, and the market an ISRC's country prefix points to.

A search without ``market`` looks in the US market only, and a track not sold there is
simply absent from the answer (``isrc:`` included). An ISRC's first two characters name
the country of its registrant, usually a market where the track is sold, so that market
is the first place to look again.

``GET /markets`` answers 403 to Development Mode apps, so the list ships here. Source: the
answer of ``GET /v1/markets`` recorded in Spotify's own TypeScript SDK
(``@spotify/web-api-ts-sdk`` 1.2.0, ``src/test/data/validMarkets.ts``): 184 codes. Puerto
Rico is not among them (it is in the US market).
"""

from __future__ import annotations

__all__ = ["MARKETS", "isrc_market", "parse_markets"]

MARKETS: frozenset[str] = frozenset(
    [
        "AD",
        "AE",
        "AG",
        "AL",
        "AM",
        "AO",
        "AR",
        "AT",
        "AU",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BN",
        "BO",
        "BR",
        "BS",
        "BT",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CD",
        "CG",
        "CH",
        "CI",
        "CL",
        "CM",
        "CO",
        "CR",
        "CV",
        "CW",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FM",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GH",
        "GM",
        "GN",
        "GQ",
        "GR",
        "GT",
        "GW",
        "GY",
        "HK",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IN",
        "IQ",
        "IS",
        "IT",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KR",
        "KW",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MG",
        "MH",
        "MK",
        "ML",
        "MN",
        "MO",
        "MR",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NE",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PG",
        "PH",
        "PK",
        "PL",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RO",
        "RS",
        "RW",
        "SA",
        "SB",
        "SC",
        "SE",
        "SG",
        "SI",
        "SK",
        "SL",
        "SM",
        "SN",
        "SR",
        "ST",
        "SV",
        "SZ",
        "TD",
        "TG",
        "TH",
        "TJ",
        "TL",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "US",
        "UY",
        "UZ",
        "VC",
        "VE",
        "VN",
        "VU",
        "WS",
        "XK",
        "ZA",
        "ZM",
        "ZW",
    ]
)

# ISRC prefixes that are not the ISO code of their country (IFPI's ISRC agency list):
# GX and UK are the UK's (GB is too); QM, QZ and QT are extra US prefixes. ZZ (international)
# and prefixes of countries Spotify does not serve point to no market.
_PREFIX_MARKET = {"GX": "GB", "UK": "GB", "QM": "US", "QZ": "US", "QT": "US"}

ISRC_COUNTRY = "isrc"  # in a fallback list: the ISRC's own country, when it is a market


def isrc_market(isrc: str) -> str | None:
    """The Spotify market an ISRC's prefix points to, or None."""
    prefix = isrc[:2].upper()
    market = _PREFIX_MARKET.get(prefix, prefix)
    return market if market in MARKETS else None


def parse_markets(spec: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``"isrc,SE,NO"`` (or a sequence of those words) as a checked tuple of upper-case
    market codes and the word ``isrc``; ``"none"`` or empty: no fallback. Raises
    ValueError naming the first code that is not a Spotify market."""
    if spec is None:
        return ()
    words = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for word in (w.strip() for w in words):
        if not word or word.lower() == "none":
            continue
        code = ISRC_COUNTRY if word.lower() == ISRC_COUNTRY else word.upper()
        if code != ISRC_COUNTRY and code not in MARKETS:
            raise ValueError(
                f"{word!r} is not a Spotify market (ISO 3166-1 alpha-2 codes such as SE, "
                "JP or BR, or the word 'isrc')"
            )
        if code not in out:
            out.append(code)
    return tuple(out)
