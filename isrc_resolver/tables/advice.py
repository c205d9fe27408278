"""What a file that cannot be read as UTF-8 text is, told by its first bytes, and the fix
that fits it (re-encode it, decompress it, name its format, save it as CSV)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["not_utf8", "not_utf8_file"]


def not_utf8_file(display: str, path: Path) -> str:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return not_utf8(display, exc, path)
    return f"{display} is not UTF-8 text; save it as 'CSV UTF-8' or convert it"


def not_utf8(display: str, exc: UnicodeDecodeError, path: Path) -> str:
    """Why ``display`` cannot be read as text, and the fix that fits what it is."""
    other = _not_text(display, path)
    if other is not None:
        return other
    return (
        f"{display} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at "
        f"offset {exc.start}); save it as 'CSV UTF-8' or convert it from the encoding it "
        f"was saved in, e.g. from Windows-1252: iconv -f cp1252 -t utf-8 {display} > "
        f"{_beside(path, '-utf8.csv')}"
    )


def _beside(path: Path, suffix: str) -> str:
    """A new name for a converted copy of ``path`` (never the file itself)."""
    return str(path.with_name(path.stem + suffix))


def _not_text(display: str, path: Path) -> str | None:
    """What a file that is not text in any 8-bit encoding is, told by its first bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (head[:64].count(0) > len(head[:64]) // 4):
        return (
            f"{display} is UTF-16 text (as Excel's 'Unicode Text' saves it); save it as "
            f"'CSV UTF-8', or convert it: iconv -f utf-16 -t utf-8 {display} > "
            f"{_beside(path, '-utf8.csv')}"
        )
    if head.startswith(b"\x1f\x8b"):
        unzipped = _beside(path, "-unzipped.csv")
        return (
            f"{display} is gzip-compressed; decompress it first: gunzip -c {display} > {unzipped}"
        )
    if head.startswith(b"PAR1"):
        return (
            f"{display} is a Parquet file, not CSV: name it .parquet or pass --input-format parquet"
        )
    if head.startswith(b"PK\x03\x04"):
        return (
            f"{display} is a zip archive (an Excel workbook or a zipped file), not CSV: "
            "save the sheet as 'CSV UTF-8', or unzip it first"
        )
    return None
