"""Test helpers: the local Spotify on a background thread, expected answers, input files."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import random
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from isrc_resolver import MatchPreference, Resolver, choose_match, normalize_isrc
from isrc_resolver.fake import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Catalogue, FakeSpotify
from isrc_resolver.markets import isrc_market

# The other stores' variables: URLs and credentials (ServerThread.env sets them all).
STORE_VARIABLES = (
    "TIDAL_API_URL", "TIDAL_TOKEN_URL", "TIDAL_CLIENT_ID", "TIDAL_CLIENT_SECRET",
    "APPLE_MUSIC_API_URL", "APPLE_MUSIC_TEAM_ID", "APPLE_MUSIC_KEY_ID",
    "APPLE_MUSIC_PRIVATE_KEY", "MUSICBRAINZ_API_URL", "MUSICBRAINZ_CONTACT",
)  # fmt: skip


def resolver_for(server: FakeSpotify | ServerThread, **options: Any) -> Resolver:
    """A Resolver pointed at a local server, with the demo credentials and a high rate
    (unless ``options`` say otherwise)."""
    options.setdefault("rate", 1000)
    return Resolver(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        api_url=server.api_url,
        token_url=server.token_url,
        **options,
    )


class ServerThread:
    """A FakeSpotify serving from its own thread and loop, so that code under test can run
    ``asyncio.run`` (the CLI) or live in another process while the server keeps answering."""

    def __init__(self, **config: Any) -> None:
        self.server = FakeSpotify(**config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self.server.start())
        self._folder = tempfile.TemporaryDirectory(prefix="fake-apple-")
        self.apple_key = Path(self._folder.name) / "key.p8"
        self.apple_key.write_bytes(self.server.apple_private_key)
        self.apple_key.chmod(0o600)

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    def _sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return fn(*args, **kwargs)

        return self._call(run())

    @property
    def api_url(self) -> str:
        return self.server.api_url

    @property
    def token_url(self) -> str:
        return self.server.token_url

    @property
    def deezer_url(self) -> str:
        return self.server.deezer_url

    def stats(self) -> dict[str, Any]:
        return self._sync(self.server.stats)  # type: ignore[no-any-return]

    def reset_stats(self) -> None:
        self._sync(self.server.reset_stats)

    def reconfigure(self, **changes: Any) -> None:
        self._sync(self.server.reconfigure, **changes)

    def expire_tokens(self) -> None:
        self._sync(self.server.expire_tokens)

    def env(self) -> dict[str, str]:
        return {
            "SPOTIFY_CLIENT_ID": self.server.config.client_id,
            "SPOTIFY_CLIENT_SECRET": self.server.config.client_secret,
            "SPOTIFY_API_URL": self.api_url,
            "SPOTIFY_TOKEN_URL": self.token_url,
            "DEEZER_API_URL": self.deezer_url,
            **self.store_env(),
        }

    def store_env(self) -> dict[str, str]:
        """The other stores' URLs on this server and the credentials it takes."""
        cfg, urls = self.server.config, self.server.endpoints
        return {
            "TIDAL_API_URL": urls["tidal_api_url"],
            "TIDAL_TOKEN_URL": urls["tidal_token_url"],
            "TIDAL_CLIENT_ID": cfg.tidal_client_id,
            "TIDAL_CLIENT_SECRET": cfg.tidal_client_secret,
            "APPLE_MUSIC_API_URL": urls["apple_api_url"],
            "APPLE_MUSIC_TEAM_ID": cfg.apple_team_id,
            "APPLE_MUSIC_KEY_ID": cfg.apple_key_id,
            "APPLE_MUSIC_PRIVATE_KEY": str(self.apple_key),
            "MUSICBRAINZ_API_URL": urls["musicbrainz_api_url"],
            "MUSICBRAINZ_CONTACT": "tests@example.invalid",
        }

    def close(self) -> None:
        self._call(self.server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._folder.cleanup()


def expected(
    isrc: str,
    *,
    seed: int = 0,
    market: str = "US",
    prefer: str = "exact",
    titles: bool = False,
) -> tuple[str, str | None, int]:
    """(status, track id, match count) the resolver must produce for ``isrc`` with the
    default strategy: ``market``, then the ISRC's own country's, then (``titles``: the
    input has title and artist) a track the isrc: filter misses but a title search finds."""
    catalogue = Catalogue(seed)
    tracks = catalogue.search(isrc, market)
    home = isrc_market(isrc)
    if not tracks and home is not None:
        tracks = catalogue.search(isrc, home)
    if not tracks and titles:
        hidden = [t for t in catalogue.tracks_of(isrc) if t.available and not t.isrc_visible]
        if hidden:
            return "found", hidden[0].id, 1
    if not tracks:
        return "not_found", None, 0
    items = [
        {
            "id": t.id,
            "external_ids": {"isrc": t.isrc},
            "album": {"album_type": t.album.album_type, "release_date": t.album.release_date},
        }
        for t in tracks[:10]
    ]
    chosen = choose_match(items, isrc, MatchPreference(prefer))
    return "found", chosen["id"], len(tracks)


def random_isrc(rng: random.Random) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    alnum = letters + "0123456789"
    return (
        rng.choice(["US", "GB", "DE", "FR", "SE", "QZ", "KR", "JP"])
        + "".join(rng.choice(alnum) for _ in range(3))
        + f"{rng.randint(0, 99):02d}{rng.randint(0, 99999):05d}"
    )


def messy(isrc: str, rng: random.Random) -> str:
    """The same ISRC as people type it in spreadsheets."""
    form = rng.randrange(6)
    if form == 0:
        return f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}"
    if form == 1:
        return isrc.lower()
    if form == 2:
        return f"  {isrc} "
    if form == 3:
        return f"ISRC {isrc}"
    return isrc


def catalogue_rows(count: int, *, seed: int = 1, unique: int | None = None) -> list[dict[str, str]]:
    """Real-looking catalogue rows: duplicates, messy and invalid ISRCs, awkward names."""
    rng = random.Random(seed)
    pool = [random_isrc(rng) for _ in range(unique or max(1, count * 4 // 5))]
    invalid = ["", "n/a", "NA", "null", "USRC1760783", "US-RC1-7A-07839", "1234567890AB", "ISRC"]
    rows = []
    for i in range(count):
        value = rng.choice(invalid) if rng.random() < 0.03 else messy(rng.choice(pool), rng)
        title = rng.choice(["Plain", "With, comma", 'Say "hi"', "Two\nlines", "Ünïcödé 🎵"])
        rows.append(
            {
                "code": f"{i:06d}",
                "isrc": value,
                "title": title,
                "note": rng.choice(["", "NA", "null", "0042"]),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], *, delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(2**31 - 1)  # valid CSV has cells of any size; tests write some
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def check_rows(
    inputs: list[dict[str, str]],
    outputs: list[dict[str, str]],
    *,
    column: str = "isrc",
    seed: int = 0,
    titles: bool = False,
) -> None:
    """Every input row is in the output, in order, unchanged, with the right answer."""
    assert len(outputs) == len(inputs)
    for source, row in zip(inputs, outputs, strict=True):
        for key, value in source.items():
            assert row[key] == value, (key, value, row[key])
        isrc = normalize_isrc(source[column])
        assert row["isrc_normalized"] == isrc
        if row["status"] == "invalid":
            continue
        status, track_id, count = expected(isrc, seed=seed, titles=titles)
        assert (row["status"], row["spotify_track_id"] or None) == (status, track_id), (isrc, row)
        assert int(row["match_count"]) == count


def iter_lines(text: str) -> Iterator[str]:
    yield from (line for line in text.splitlines() if line.strip())


def a_missing_isrc(seed: int = 0) -> str:
    """A valid ISRC that the local catalogue (with ``seed``) has no track for."""
    catalogue = Catalogue(seed)
    return next(i for n in range(1000) if not catalogue.search(i := f"USAAA24{n:05d}"))


def age_cache(path: Path, *, days: float) -> None:
    """Make every answer in the cache at ``path`` ``days`` older, as if the run that paid
    for it had been that long ago: ages are tested without waiting for them."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        seconds = days * 86_400
        db.execute(
            "UPDATE results SET fetched_at = fetched_at - ?, stored_at = stored_at - ?",
            (seconds, seconds),
        )


def cache_file(args: Sequence[str]) -> Path:
    """The ``--cache`` of a command line."""
    return Path(args[list(args).index("--cache") + 1])


def isrcs(count: int, start: int = 0) -> list[str]:
    """ISRCs the local catalogue has a track for (so 'found' is a real, known answer)."""
    catalogue, out, n = Catalogue(0), [], start
    while len(out) < count:
        isrc = f"QZAAA24{n:05d}"
        if catalogue.search(isrc, "US"):
            out.append(isrc)
        n += 1
    return out
