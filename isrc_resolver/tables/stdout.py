"""Standard output for a text table: UTF-8 bytes, as a file would hold them."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import IO

__all__ = ["Utf8Stdout", "utf8_stdout"]


class Utf8Stdout(io.TextIOWrapper):
    """Standard output's bytes, written as UTF-8 whatever the terminal's code page.
    Closing it (or letting it go) never closes standard output itself."""

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.flush()


def utf8_stdout() -> IO[str]:
    """CSV on standard output is UTF-8, as in a file: a console code page (cp1252) that
    cannot encode a name must not end the run."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # replaced by something with no bytes underneath: use it as it is
        return sys.stdout
    sys.stdout.flush()
    return Utf8Stdout(buffer, encoding="utf-8", newline="", write_through=True)
