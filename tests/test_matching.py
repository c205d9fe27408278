from typing import Any

import pytest

from isrc_resolver import MatchPreference, Track, choose_match


def item(
    id_: str, isrc: str, album_type: str = "album", date: str = "2020-01-01"
) -> dict[str, Any]:
    return {
        "id": id_,
        "name": f"track {id_}",
        "external_ids": {"isrc": isrc},
        "album": {"id": f"al{id_}", "name": "A", "album_type": album_type, "release_date": date},
        "artists": [{"id": "ar", "name": "Someone"}],
    }


def test_exact_prefers_first_item_with_the_isrc_asked_for() -> None:
    items = [item("a", "USRC17607830"), item("b", "USRC17607839"), item("c", "USRC17607839")]
    assert choose_match(items, "USRC17607839")["id"] == "b"


def test_exact_falls_back_to_first_item() -> None:
    items = [item("a", "GBXXX0000001"), item("b", "GBXXX0000002")]
    assert choose_match(items, "USRC17607839")["id"] == "a"


def test_exact_compares_normalised_isrcs() -> None:
    items = [item("a", "GBXXX0000001"), item("b", "us-rc1-76-07839")]
    assert choose_match(items, "USRC17607839")["id"] == "b"


def test_original_prefers_album_or_single_over_compilation_then_earliest() -> None:
    items = [
        item("comp", "USRC17607839", "compilation", "1999-01-01"),
        item("album", "USRC17607839", "album", "2005-06-01"),
        item("single", "USRC17607839", "single", "2005-03"),
    ]
    chosen = choose_match(items, "USRC17607839", MatchPreference.ORIGINAL)
    assert chosen["id"] == "single"  # "2005-03" sorts before "2005-06-01"


def test_original_only_among_exact_matches_when_there_are_some() -> None:
    items = [
        item("other", "GBXXX0000001", "single", "1980"),
        item("comp", "USRC17607839", "compilation", "2001"),
        item("album", "USRC17607839", "album", "2010"),
    ]
    assert choose_match(items, "USRC17607839", MatchPreference.ORIGINAL)["id"] == "album"


def test_original_keeps_spotify_order_on_ties_and_unknown_dates_last() -> None:
    items = [
        item("nodate", "USRC17607839", "album", ""),
        item("first", "USRC17607839", "album", "2010"),
        item("second", "USRC17607839", "album", "2010"),
    ]
    assert choose_match(items, "USRC17607839", MatchPreference.ORIGINAL)["id"] == "first"


def test_no_items_is_an_error() -> None:
    with pytest.raises(ValueError, match="no items"):
        choose_match([], "USRC17607839")


def test_track_survives_removed_fields() -> None:
    # Development Mode apps get no popularity, available_markets, linked_from; nor, for a
    # while in 2026, external_ids. None of them may be required.
    minimal = {"id": "t1", "name": "Song", "album": {"id": "a1", "name": "Album"}, "artists": []}
    track = Track.from_api(minimal)
    assert (track.id, track.isrc, track.album.name, track.artists) == ("t1", None, "Album", ())
    assert Track.from_json(track.to_json()) == track
