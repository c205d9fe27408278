"""What the local Spotify's catalogue holds: artists, albums, tracks, and where they sell."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["Availability", "FakeAlbum", "FakeArtist", "FakeTrack", "World", "spotify_id"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def spotify_id(*parts: object) -> str:
    """A 22-character base-62 id, stable for the same parts."""
    n = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:17], "big")
    out = []
    for _ in range(22):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(out)


@dataclass(frozen=True)
class FakeArtist:
    id: str
    name: str


@dataclass(frozen=True)
class FakeAlbum:
    id: str
    name: str
    album_type: str  # album, single or compilation
    release_date: str
    release_date_precision: str  # day, month or year
    total_tracks: int
    artists: tuple[FakeArtist, ...]
    label: str
    upc: str
    genres: tuple[str, ...] = ()
    popularity: int = 0


@dataclass(frozen=True)
class FakeTrack:
    id: str
    name: str
    isrc: str  # what Spotify has in external_ids (not always the ISRC searched for)
    duration_ms: int
    explicit: bool
    track_number: int
    disc_number: int
    artists: tuple[FakeArtist, ...]
    album: FakeAlbum
    popularity: int = 0
    markets: tuple[str, ...] = field(default=())  # empty: everywhere
    isrc_visible: bool = True  # False: the isrc: filter misses it; track:/artist: finds it
    available: bool = True  # False: in no market, so never returned


@dataclass(frozen=True)
class Availability:
    """Shares of generated ISRCs whose tracks are hard to find, as on Spotify:

    * ``region_locked``: sold only in the market of the ISRC's country prefix;
    * ``foreign``: sold only in one market unrelated to the prefix;
    * ``isrc_invisible``: the ``isrc:`` filter misses them in every market, a title/artist
      search finds them (with the right ISRC in ``external_ids``);
    * ``unavailable``: in no market at all;
    * ``conflicting``: the ISRC is also carried by another recording (a label's error: a
      different title and length, on a release of its own, listed after the right one).
    """

    region_locked: float = 0.0
    foreign: float = 0.0
    isrc_invisible: float = 0.0
    unavailable: float = 0.0
    conflicting: float = 0.0


@dataclass(frozen=True)
class World:
    """How the world has changed since the catalogue was made, by ISRC: what a nightly
    job should notice. Both stores (Spotify and Deezer) see the same world."""

    taken_down: frozenset[str] = frozenset()  # no store has it any more
    relinked: frozenset[str] = frozenset()  # its tracks carry new ids
    renamed: frozenset[str] = frozenset()  # its titles gain " (Remastered 2026)"
    unreleased: frozenset[str] = frozenset()  # not out yet: no store has it so far

    def gone(self, isrc: str) -> bool:
        return isrc in self.taken_down or isrc in self.unreleased
