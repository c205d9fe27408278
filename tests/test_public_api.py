import isrc_resolver


def test_all_is_sorted_and_importable() -> None:
    names = isrc_resolver.__all__
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert getattr(isrc_resolver, name) is not None


def test_every_lazy_export_is_in_all() -> None:
    assert sorted(isrc_resolver.__all__) == sorted(isrc_resolver._EXPORTS)
