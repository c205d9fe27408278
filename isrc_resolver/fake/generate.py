"""Generated answers: the tracks of any ISRC the catalogue has no fixed entry for, from a
hash of the seed and the ISRC, so the same in every run and every process."""

from __future__ import annotations

import random

from ..markets import isrc_market
from .records import Availability, FakeAlbum, FakeArtist, FakeTrack, spotify_id

__all__ = ["ARTISTS", "Generator"]

_FOREIGN_MARKETS = ("JP", "BR", "NO", "KR", "MX", "ZA", "IN", "AU")


_WORDS = [
    "midnight",
    "river",
    "gold",
    "echo",
    "paper",
    "hearts",
    "neon",
    "summer",
    "ghost",
    "velvet",
    "static",
    "honey",
    "thunder",
    "glass",
    "wild",
    "ocean",
    "satellite",
    "ember",
    "lovers",
    "city",
    "violet",
    "fever",
    "silver",
    "horizon",
]
_ODD_TITLES = [
    'Hello, "World"',
    "Line one\nLine two",
    "Comma, Separated, Values",
    "夜に駆ける",
    "Песня о тревожной молодости",
    "أغنية الصيف",
    "Fire 🔥 & Ice ❄️",
    'It\'s "Complicated", Really',
    "Tab\there",
    "  leading and trailing spaces  ",
]
ARTISTS = [
    "The Paper Kites",
    "Nova Lane",
    "DJ Ample",
    "María José",
    "김하늘",
    "Ólafur & Friends",
    "Beyoncé-ish",
    'The "Quoted" Band',
    "Smith, Jones & Co.",
    "Δέλτα",
    "MC 🐍",
    "Kira",
]
_LABELS = ["Independent", "Northern Lights Records", "Big Label Music", "Tiny Tapes"]
_GENRES = ["pop", "indie", "hip hop", "electronic", "folk", "k-pop"]


def normalize(title: str) -> str:
    return " ".join(title.casefold().split())


class Generator:
    """Tracks for ISRCs, from ``seed``; ``availability`` says what share is hard to find."""

    def __init__(self, seed: int, availability: Availability) -> None:
        self.seed = seed
        self.availability = availability

    def tracks(self, isrc: str) -> list[FakeTrack]:
        """The tracks of ``isrc``: none, one, or several releases of one recording."""
        rng = random.Random(f"{self.seed}:{isrc}")
        roll = rng.random()
        if roll < 0.12:
            return []
        count = 1 if roll < 0.75 else rng.randint(2, 6)
        artists = tuple(
            FakeArtist(spotify_id(self.seed, "artist", n), n)
            for n in rng.sample(ARTISTS, rng.choice([1, 1, 1, 2, 3]))
        )
        title = self._title(rng)
        duration = rng.randint(95_000, 420_000)
        explicit = rng.random() < 0.2
        year = 1960 + int(isrc[5:7]) % 66 if isrc[5:7].isdigit() else 2020
        kinds = ["single", "album"] + ["compilation"] * max(0, count - 2)
        kinds = kinds[:count]
        if count > 2 and rng.random() < 0.3:
            rng.shuffle(kinds)  # relevance order does not always put the original first
        markets, visible, available = self._availability(isrc)
        if random.Random(f"{self.seed}:conflict:{isrc}").random() < self.availability.conflicting:
            kinds.append("single")  # another recording under the same code
        tracks = []
        for variant, kind in enumerate(kinds):
            album = self._album(rng, isrc, variant, kind, title, artists, year)
            # Now and then a label reports a release under a neighbouring code; Spotify
            # still returns it for the search, with the other code in external_ids.
            reported = isrc
            if variant == 0 and count > 1 and rng.random() < 0.15:
                reported = isrc[:-1] + str((int(isrc[-1]) + 1) % 10) if isrc[-1].isdigit() else isrc
            other = variant >= count  # the other recording of a conflicting ISRC
            name = self._title(random.Random(f"{self.seed}:other:{isrc}")) if other else title
            if other and normalize(name) == normalize(title):
                name = f"{name} Reprise"
            tracks.append(
                FakeTrack(
                    id=spotify_id(self.seed, "track", isrc, variant),
                    name=name,
                    isrc=reported,
                    duration_ms=duration + (47_000 if other else 0),
                    explicit=explicit,
                    track_number=1 if kind == "single" else rng.randint(1, album.total_tracks),
                    disc_number=1,
                    artists=artists,
                    album=album,
                    popularity=rng.randint(0, 100),
                    markets=markets,
                    isrc_visible=visible,
                    available=available,
                )
            )
        return tracks

    def _availability(self, isrc: str) -> tuple[tuple[str, ...], bool, bool]:
        """(markets, found by isrc:, available) for a generated ISRC's tracks."""
        share = self.availability
        roll = random.Random(f"{self.seed}:availability:{isrc}").random()
        home = isrc_market(isrc)
        if roll < share.unavailable:
            return (), True, False
        roll -= share.unavailable
        if roll < share.isrc_invisible:
            return (), False, True
        roll -= share.isrc_invisible
        if roll < share.region_locked and home is not None and home != "US":
            return (home,), True, True
        roll -= share.region_locked
        if roll < share.foreign:
            choices = [m for m in _FOREIGN_MARKETS if m != home]
            return (choices[int(roll * 1e6) % len(choices)],), True, True
        return (), True, True

    def _title(self, rng: random.Random) -> str:
        if rng.random() < 0.15:
            return rng.choice(_ODD_TITLES)
        words = rng.sample(_WORDS, rng.randint(1, 3))
        return " ".join(words).title()

    def _album(
        self,
        rng: random.Random,
        isrc: str,
        variant: int,
        kind: str,
        title: str,
        artists: tuple[FakeArtist, ...],
        year: int,
    ) -> FakeAlbum:
        precision = rng.choices(["day", "month", "year"], weights=[8, 1, 1])[0]
        year += variant if kind == "compilation" else 0
        date = {
            "day": f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "month": f"{year:04d}-{rng.randint(1, 12):02d}",
            "year": f"{year:04d}",
        }[precision]
        if kind == "single":
            name, total = title, rng.randint(1, 3)
        elif kind == "album":
            name, total = " ".join(rng.sample(_WORDS, 2)).title(), rng.randint(8, 18)
        else:
            name, total = f"Best of {year}, Vol. {variant}", rng.randint(20, 60)
        album_artists = (
            artists
            if kind != "compilation"
            else (
                FakeArtist(spotify_id(self.seed, "artist", "Various Artists"), "Various Artists"),
            )
        )
        return FakeAlbum(
            id=spotify_id(self.seed, "album", isrc, variant),
            name=name,
            album_type=kind,
            release_date=date,
            release_date_precision=precision,
            total_tracks=total,
            artists=album_artists,
            label=rng.choice(_LABELS),
            upc=str(rng.randint(10**11, 10**12 - 1)),
            genres=tuple(rng.sample(_GENRES, rng.randint(0, 2))),
            popularity=rng.randint(0, 100),
        )
