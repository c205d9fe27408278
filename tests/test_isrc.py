import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isrc_resolver import is_valid_isrc, normalize_isrc


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("USRC17607839", "USRC17607839"),
        ("usrc17607839", "USRC17607839"),
        ("US-RC1-76-07839", "USRC17607839"),
        ("  US RC1 76 07839  ", "USRC17607839"),
        ("US.RC1.76.07839", "USRC17607839"),
        ("ISRC USRC17607839", "USRC17607839"),
        ("isrc:US-RC1-76-07839", "USRC17607839"),
        ("ISRC-USRC17607839", "USRC17607839"),
        ("US\u2013RC1\u201376\u201307839", "USRC17607839"),  # en dashes from a word processor
        ("\ufeffUSRC17607839\u00a0", "USRC17607839"),  # BOM and no-break space
        # A real code may itself start with "ISRC" (country IS, registrant RC...): kept.
        ("ISRC12300001", "ISRC12300001"),
        ("", ""),
    ],
)
def test_normalize(raw: str, normalized: str) -> None:
    assert normalize_isrc(raw) == normalized


@pytest.mark.parametrize(
    "value",
    [
        "USRC17607839",
        "GBUM71400001",
        "QZ7XS2400012",
        "QZJ842400387",
        "ISRC12300001",
        "DE1234500001",
    ],
)
def test_valid(value: str) -> None:
    assert is_valid_isrc(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("USRC1760783", "11 characters"),
        ("USRC176078390", "13 characters"),
        ("1SRC17607839", "digit in the country code"),
        ("USR_17607839", "underscore in the registrant"),
        ("USRC1A607839", "letter in the year"),
        ("USRC176O7839", "letter O in the designation"),
        ("usrc17607839", "not normalised (lower case)"),
        ("", "empty"),
        ("NA", "a spreadsheet's missing value"),
    ],
)
def test_invalid(value: str, why: str) -> None:
    assert not is_valid_isrc(value), why


@settings(max_examples=500, deadline=None)
@given(
    st.text(st.sampled_from("ISRCisrc-. :=#\u2010\u00a0\u200bGBUSQZ0123456789"), max_size=24)
    | st.text(max_size=16)
)
def test_normalising_twice_changes_nothing(value: str) -> None:
    """The writer finds a cell that is already a normalised value by that value's own
    entry: which holds only if normalising a normalised value leaves it as it is."""
    once = normalize_isrc(value)
    assert normalize_isrc(once) == once
