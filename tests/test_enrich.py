"""Album details and audio features, with the endpoints open and closed (403)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from isrc_resolver.fake import FakeSpotify

from .helpers import catalogue_rows, read_csv, resolver_for, write_csv


def requests(server: FakeSpotify, endpoint: str) -> int:
    return sum(server.stats()["requests"].get(endpoint, {}).values())


async def test_open_endpoints_fill_correct_columns_with_minimal_requests(tmp_path: Path) -> None:
    rows = catalogue_rows(600, seed=71)
    write_csv(tmp_path / "in.csv", rows)
    async with FakeSpotify(extended_quota=True) as server:
        async with resolver_for(
            server, with_=("album", "audio-features"), cache=tmp_path / "c.sqlite3"
        ) as r:
            report = await r.resolve_file(tmp_path / "in.csv", tmp_path / "out.csv")
        out = read_csv(tmp_path / "out.csv")
        found = [row for row in out if row["status"] == "found"]
        albums = {row["album_id"] for row in found}
        tracks = {row["spotify_track_id"] for row in found}
        assert report.exit_code == 0 and found
        assert requests(server, "albums") == math.ceil(len(albums) / 20)
        assert requests(server, "audio-features") == math.ceil(len(tracks) / 100)
        for row in found:
            album = server.catalogue.album(row["album_id"])
            track = server.catalogue.track(row["spotify_track_id"])
            assert album is not None and track is not None
            assert row["album_label"] == album.label and row["album_upc"] == album.upc
            assert row["album_total_tracks"] == str(album.total_tracks)
            assert row["album_genres"] == "; ".join(album.genres)
            features = server.catalogue.audio_features(track)
            assert float(row["danceability"]) == features["danceability"]
            assert int(row["key"]) == features["key"] and float(row["tempo"]) == features["tempo"]
        for row in out:
            if row["status"] != "found":
                assert row["album_upc"] == row["danceability"] == ""

        # The next run asks for nothing: searches, albums and features all come from the cache.
        server.reset_stats()
        async with resolver_for(
            server, with_=("album", "audio-features"), cache=tmp_path / "c.sqlite3"
        ) as r:
            await r.resolve_file(tmp_path / "in.csv", tmp_path / "again.csv")
        assert server.stats()["total_requests"] == 0
        assert read_csv(tmp_path / "again.csv") == out


async def test_parquet_types_of_enrichment_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}, {"isrc": "bad"}])
    async with (
        FakeSpotify(extended_quota=True) as server,
        resolver_for(server, with_=("album", "audio-features")) as r,
    ):
        await r.resolve_file(tmp_path / "in.csv", tmp_path / "out.parquet")
    schema = pq.read_schema(tmp_path / "out.parquet")
    names = ("album_total_tracks", "key", "tempo", "album_label")
    assert [str(schema.field(n).type) for n in names] == ["int64", "int64", "double", "string"]
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert frame["album_total_tracks"][0] == 16
    assert frame["album_label"][0] == "YZY" and pd.isna(frame["tempo"][1])


async def test_closed_endpoints_warn_once_and_change_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = catalogue_rows(400, seed=72)
    write_csv(tmp_path / "in.csv", rows)
    async with FakeSpotify(forbid_albums=True, forbid_audio_features=True) as server:
        async with resolver_for(server) as r:
            plain = await r.resolve_file(tmp_path / "in.csv", tmp_path / "plain.csv")
        with caplog.at_level(logging.WARNING, logger="isrc_resolver"):
            async with resolver_for(server, with_=("album", "audio-features")) as r:
                enriched = await r.resolve_file(tmp_path / "in.csv", tmp_path / "enriched.csv")
        # One probe each, then nothing more is sent to a closed endpoint.
        assert requests(server, "albums") == 1 and requests(server, "audio-features") == 1
        assert requests(server, "album") == 0
    assert enriched.exit_code == plain.exit_code == 0
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "27 November 2024" in warnings[1] and "--allow-per-album" in warnings[0]
    added = (
        "album_label",
        "album_upc",
        "album_total_tracks",
        "album_genres",
        "danceability",
        "energy",
        "key",
        "loudness",
        "mode",
        "speechiness",
        "acousticness",
        "instrumentalness",
        "liveness",
        "valence",
        "tempo",
        "time_signature",
    )
    # Two runs without a cache: the answers are the same, the times they came are not.
    for before, after in zip(
        read_csv(tmp_path / "plain.csv"), read_csv(tmp_path / "enriched.csv"), strict=True
    ):
        answered = before["status"] in ("found", "not_found")
        assert bool(before.pop("resolved_at")) == bool(after.pop("resolved_at")) == answered
        assert {k: v for k, v in after.items() if k not in added} == before
        assert all(after[column] == "" for column in added)


async def test_allow_per_album_falls_back_to_single_album_requests(tmp_path: Path) -> None:
    rows = catalogue_rows(60, seed=73)
    write_csv(tmp_path / "in.csv", rows)
    async with FakeSpotify(forbid_albums=True) as server:
        async with resolver_for(server, with_=("album",), allow_per_album=True) as r:
            await r.resolve_file(tmp_path / "in.csv", tmp_path / "out.csv")
        out = read_csv(tmp_path / "out.csv")
        albums = {row["album_id"] for row in out if row["status"] == "found"}
        assert requests(server, "albums") == 1
        assert requests(server, "album") == len(albums)
        for row in out:
            if row["status"] == "found":
                album = server.catalogue.album(row["album_id"])
                assert album is not None and row["album_upc"] == album.upc


async def test_library_calls() -> None:
    async with FakeSpotify(extended_quota=True) as server, resolver_for(server) as r:
        result = await r.resolve("QZJ842400387")
        assert result.track is not None
        albums = await r.albums([result.track.album.id, result.track.album.id, "unknown"])
        assert list(albums) == [result.track.album.id]
        assert albums[result.track.album.id].total_tracks == 1
        features = await r.audio_features([result.track.id])
        assert 0 <= features[result.track.id].energy <= 1  # type: ignore[operator]
        before = server.stats()["total_requests"]
        await r.albums([result.track.album.id, "unknown"])  # asked once per run, unknown included
        assert server.stats()["total_requests"] == before

        df = pd.DataFrame({"isrc": ["QZ7XS2400012", "x"]})
        out = await r.resolve_dataframe(df, with_=("album", "audio-features"))
        assert out["album_label"][0] == "YZY" and out["album_total_tracks"][0] == 16
        assert pd.isna(out["album_label"][1])
        assert "tempo" in out.columns


async def test_an_interrupted_run_still_writes_every_column(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", [{"isrc": "QZ7XS2400012"}, {"isrc": "bad"}])
    async with FakeSpotify() as server, resolver_for(server, with_=("album",)) as r:
        r.interrupt("SIGINT")
        report = await r.resolve_file(tmp_path / "in.csv", tmp_path / "out.csv")
        assert server.stats()["total_requests"] == 0
    assert report.exit_code == 130
    rows = read_csv(tmp_path / "out.csv")
    assert [row["status"] for row in rows] == ["pending", "invalid"]
    assert all(row["album_label"] == "" for row in rows)
