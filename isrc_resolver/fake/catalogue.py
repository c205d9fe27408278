"""The local server's catalogue: every ISRC has a fixed answer, derived from a seed.

Any syntactically valid ISRC can be searched. Its matches (none, one, or several releases
of the same recording: single, album, compilation) are generated from a hash of the seed
and the ISRC, so they are the same in every run and every process. Fixed entries (the
built-in ones below and an optional JSON file) take precedence; they make the sample data
answer as Spotify does where that is known.

Generated names deliberately include commas, double quotes, newlines, non-Latin scripts
and emoji, and release dates of day, month and year precision: what breaks naive CSV
writers and date parsers.
"""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

from .generate import ARTISTS, Generator
from .records import Availability, FakeAlbum, FakeArtist, FakeTrack, World, spotify_id

__all__ = ["Availability", "Catalogue", "FakeAlbum", "FakeArtist", "FakeTrack", "World"]

RENAMED = " (Remastered 2026)"  # what a rename adds to a title


def _sold_in(track: FakeTrack, market: str | None) -> bool:
    if not track.available:
        return False
    return market is None or not track.markets or market.upper() in track.markets


def _title_key(text: str) -> str:
    """Case, accents and punctuation aside, as Spotify's search matches words."""
    bare = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c if c.isalnum() else " " for c in bare if not unicodedata.combining(c))
    return " ".join(bare.split())


class Catalogue:
    """Deterministic answers for ISRC searches, album and audio-feature look-ups."""

    def __init__(
        self, seed: int = 0, fixtures: Path | None = None, availability: Availability | None = None
    ) -> None:
        self.seed = seed
        self.availability = availability or Availability()
        self._generator = Generator(seed, self.availability)
        self._by_title: dict[str, list[FakeTrack]] = {}
        self._fixed: dict[str, list[FakeTrack]] = {}
        self._tracks: dict[str, FakeTrack] = {}
        self._albums: dict[str, FakeAlbum] = {}
        self._fixed_by_id: dict[str, FakeTrack] = {}
        self.world = World()
        for entry in _BUILTIN:
            self._add_fixed(entry)
        if fixtures is not None:
            data = json.loads(Path(fixtures).read_text(encoding="utf-8"))
            for entry in data.get("tracks", data) if isinstance(data, dict) else data:
                self._add_fixed(entry)

    # -- look-ups --------------------------------------------------------------------

    def search(self, isrc: str, market: str | None = None) -> list[FakeTrack]:
        """Every track carrying ``isrc`` that ``q=isrc:`` finds in ``market`` (None: in
        any market), in the order Spotify would list them."""
        tracks = [t for t in self.tracks_of(isrc) if t.isrc_visible]
        return [t for t in tracks if _sold_in(t, market)]

    def tracks_of(self, isrc: str) -> list[FakeTrack]:
        """Every track made for ``isrc``, whatever a search would show of them, as the
        world is now (see :class:`World`)."""
        isrc = isrc.upper()
        tracks = self._fixed.get(isrc)
        if tracks is None:
            tracks = self._generator.tracks(isrc)
        for t in tracks:
            if t.id not in self._tracks:
                self._tracks[t.id] = t
                self._by_title.setdefault(_title_key(t.name), []).append(t)
            self._albums.setdefault(t.album.id, t.album)
        if self.world.gone(isrc):
            return []
        changed = [self._as_now(t) for t in tracks]
        for t in changed:
            self._tracks.setdefault(t.id, t)
        return changed

    def _as_now(self, track: FakeTrack) -> FakeTrack:
        """``track`` as the world has changed it (a re-link's new id, a rename)."""
        isrc = track.isrc.upper()
        if isrc in self.world.relinked:
            track = replace(track, id=spotify_id(self.seed, "relinked", track.id))
        if isrc in self.world.renamed:
            track = replace(track, name=track.name + RENAMED)
        return track

    def search_title(self, title: str, artist: str, market: str | None) -> list[FakeTrack]:
        """``q=track:"T" artist:"A"``: the tracks whose name has every word of the title
        (known to the server: asked for by ISRC before) by that artist, with their versions
        (live, remaster) and namesakes by other artists, as Spotify returns near-matches."""
        out: list[FakeTrack] = []
        wanted, words = _title_key(artist), set(_title_key(title).split())
        # Every word of the query in the name, as Spotify's field filter matches words.
        titled = (t for key, ts in self._by_title.items() if words <= set(key.split()) for t in ts)
        for track in titled:
            names = [_title_key(a.name) for a in track.artists]
            if wanted and not any(wanted in n or n in wanted for n in names if n):
                continue
            out += self._near_matches(track)
        # Spotify ranks the tracks named exactly so, by the artist asked for, first.
        title_key = _title_key(title)

        def rank(t: FakeTrack) -> int:
            exact = _title_key(t.name) == title_key
            by = any(wanted and (wanted in _title_key(a.name)) for a in t.artists)
            return 0 if exact and by else 1 if exact else 2

        now = [self._as_now(t) for t in out if not self.world.gone(t.isrc.upper())]
        return sorted((t for t in now if _sold_in(t, market)), key=rank)

    def _near_matches(self, track: FakeTrack) -> list[FakeTrack]:
        """The track, a live version and a remaster (other ISRCs), and a namesake by another
        artist; in an order that does not always put the track first."""
        rng = random.Random(f"{self.seed}:near:{track.id}")
        other = rng.choice([n for n in ARTISTS if n not in {a.name for a in track.artists}])
        near = [track]
        for n, suffix in enumerate([" - Live", " - Remastered 2011"]):
            near.append(
                replace(
                    track,
                    id=spotify_id(self.seed, "version", track.id, n),
                    name=track.name + suffix,
                    isrc=track.isrc[:7] + f"{(int(track.isrc[7:]) + 500 + n) % 100_000:05d}"
                    if track.isrc[7:].isdigit()
                    else track.isrc,
                    markets=(),
                    isrc_visible=True,
                    available=True,
                )
            )
        near.append(
            replace(
                track,
                id=spotify_id(self.seed, "namesake", track.id),
                artists=(FakeArtist(spotify_id(self.seed, "artist", other), other),),
                isrc="QZ" + track.isrc[2:7] + "99999",
                markets=(),
                isrc_visible=True,
                available=True,
            )
        )
        for t in near[1:]:
            self._tracks.setdefault(t.id, t)
        rng.shuffle(near)
        return near

    def album(self, album_id: str) -> FakeAlbum | None:
        """An album the server has shown in a search answer (else unknown)."""
        return self._albums.get(album_id)

    def track(self, track_id: str) -> FakeTrack | None:
        return self._tracks.get(track_id)

    def track_by_id(self, track_id: str) -> FakeTrack | None:
        """``GET /tracks/{id}``: a track shown in an answer, or any fixed one (a pinned id
        from an earlier run of the demo, whose server was another process)."""
        return self._tracks.get(track_id) or self._fixed_by_id.get(track_id)

    def album_tracks(self, album: FakeAlbum) -> list[FakeTrack]:
        return [t for t in self._tracks.values() if t.album.id == album.id]

    def audio_features(self, track: FakeTrack) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:features:{track.id}")
        return {
            "danceability": round(rng.random(), 3),
            "energy": round(rng.random(), 3),
            "key": rng.randint(-1, 11),
            "loudness": round(rng.uniform(-30, 0), 3),
            "mode": rng.randint(0, 1),
            "speechiness": round(rng.random(), 4),
            "acousticness": round(rng.random(), 5),
            "instrumentalness": round(rng.random(), 6),
            "liveness": round(rng.random(), 4),
            "valence": round(rng.random(), 3),
            "tempo": round(rng.uniform(60, 200), 3),
            "time_signature": rng.choice([3, 4, 4, 4, 5]),
        }

    def _add_fixed(self, entry: dict[str, Any]) -> None:
        isrc = str(entry["isrc"]).upper()
        existing = self._fixed.setdefault(isrc, [])
        variant = len(existing)
        artists = tuple(
            FakeArtist(spotify_id("artist", n), n) for n in entry.get("artists") or ["Unknown"]
        )
        a = entry.get("album") or {}
        album = FakeAlbum(
            id=a.get("id") or spotify_id("album", isrc, variant),
            name=a.get("name", entry.get("name", "")),
            album_type=a.get("album_type", "single"),
            release_date=a.get("release_date", "2024"),
            release_date_precision=a.get("release_date_precision", "year"),
            total_tracks=int(a.get("total_tracks", 1)),
            artists=tuple(FakeArtist(spotify_id("artist", n), n) for n in a.get("artists") or [])
            or artists,
            label=a.get("label", ""),
            upc=a.get("upc") or str(int(spotify_id("upc", isrc, variant).encode().hex(), 16))[:12],
            genres=tuple(a.get("genres", ())),
        )
        existing.append(
            track := FakeTrack(
                id=entry.get("id") or spotify_id("track", isrc, variant),
                name=entry["name"],
                isrc=entry.get("reported_isrc", isrc),
                duration_ms=int(entry.get("duration_ms", 180_000)),
                explicit=bool(entry.get("explicit", False)),
                track_number=int(entry.get("track_number", 1)),
                disc_number=int(entry.get("disc_number", 1)),
                artists=artists,
                album=album,
                markets=tuple(entry.get("markets", ())),
                isrc_visible=bool(entry.get("isrc_visible", True)),
                available=bool(entry.get("available", True)),
            )
        )
        self._fixed_by_id[track.id] = track


def _artemas(album: str, kind: str, date: str, total: int, artists: list[str]) -> dict[str, Any]:
    return {
        "isrc": "QZJ842400387",
        "name": "i like the way you kiss me",
        "artists": ["Artemas"],
        "duration_ms": 142_514,
        "explicit": False,
        "album": {
            "name": album,
            "album_type": kind,
            "release_date": date,
            "release_date_precision": "day",
            "total_tracks": total,
            "artists": artists,
        },
    }


# Entries known from Spotify itself; the sample data relies on them.
_BUILTIN: list[dict[str, Any]] = [
    {
        "isrc": "QZ7XS2400012",
        "name": "CARNIVAL",
        "artists": ["¥$", "Kanye West", "Ty Dolla $ign", "Rich The Kid", "Playboi Carti"],
        "duration_ms": 264_000,
        "explicit": True,
        "track_number": 12,
        "album": {
            "name": "VULTURES 1",
            "album_type": "album",
            "release_date": "2024-02-10",
            "release_date_precision": "day",
            "total_tracks": 16,
            "artists": ["¥$", "Kanye West", "Ty Dolla $ign"],
            "label": "YZY",
        },
    },
    _artemas("i like the way you kiss me", "single", "2024-03-19", 1, ["Artemas"]),
    _artemas("yustyna", "album", "2024-07-26", 12, ["Artemas"]),
    _artemas("Today's Top Hits 2024", "compilation", "2024-06-07", 50, ["Various Artists"]),
    _artemas("Viral Hits, Vol. 2", "compilation", "2024-05-03", 40, ["Various Artists"]),
    _artemas('Pop Rising "Summer" 24', "compilation", "2024-08-02", 45, ["Various Artists"]),
    _artemas(
        "NOW That's What I Call Music! 117", "compilation", "2024-04-12", 46, ["Various Artists"]
    ),
]

# The demo sample's recordings, so that its titles and artists check out, and one of each
# case the coverage options are for: sold in one market only (its own country's, or
# another), missed by the isrc: filter, in no market, and a catalogue's wrong ISRC.
_SAMPLE: list[tuple[str, str, str, dict[str, Any]]] = [
    ("GBARL9300135", "Never Gonna Give You Up", "Rick Astley", {}),
    ("GBUM71400001", "Bohemian Rhapsody", "Queen", {"markets": ["JP"]}),  # elsewhere only
    ("USUG11904206", "Blinding Lights", "The Weeknd", {}),
    ("GBAHS1600463", "Shape of You", "Ed Sheeran", {}),
    ("GBAHS2000184", "Levitating", "Dua Lipa", {}),
    ("USUM71900764", "bad guy", "Billie Eilish", {}),
    ("KRA402000072", "Dynamite", "BTS", {}),
    ("USUM71700626", "Despacito", "Luis Fonsi", {"available": False}),  # in no market
    ("GBAYE0601498", "Hey Jude - Remastered 2015", "The Beatles", {}),
    ("USGF19942501", "Smells Like Teen Spirit", "Nirvana", {}),
    ("GBBKS1000335", "Rolling in the Deep", "Adele", {}),
    ("GBARL1401524", "Uptown Funk (feat. Bruno Mars)", "Mark Ronson", {"isrc_visible": False}),
    ("USQ4E1300686", "Happy", "Pharrell Williams", {}),
    ("USSM11903133", "Old Town Road", "Lil Nas X", {}),
    ("KRA381200051", "Gangnam Style (강남스타일)", "PSY", {"markets": ["KR"]}),  # home only
    ("USIR10211559", "Lose Yourself", "Eminem", {}),
    ("GBAHT8500002", "Take On Me", "a-ha", {}),
    ("USSM18200360", "Africa", "TOTO", {}),
    ("GBBQY9500018", "Wonderwall - Remastered", "Oasis", {}),
    ("GBBKS1000351", "Set Fire to the Rain", "Adele", {}),  # the sample says Someone Like You
    ("GB28K1100036", "Titanium (feat. Sia)", "David Guetta", {}),
    ("USZ4V1500091", "Lean On", "Major Lazer", {}),
    ("USQX91300108", "Get Lucky (feat. Pharrell Williams)", "Daft Punk", {}),
    ("GBAYE0800265", "Viva La Vida", "Coldplay", {}),
]
_BUILTIN += [
    {"isrc": isrc, "name": name, "artists": [artist], **extra}
    for isrc, name, artist, extra in _SAMPLE
]
# One ISRC carried by two recordings (a label's error copied to Spotify): "Africa" and,
# listed after it, "Rosanna" under the same code.
_BUILTIN.append(
    {
        "isrc": "USSM18200360",
        "name": "Rosanna",
        "artists": ["TOTO"],
        "duration_ms": 331_000,
        "album": {"name": "Toto IV", "album_type": "album", "release_date": "1982-04-08"},
    }
)
