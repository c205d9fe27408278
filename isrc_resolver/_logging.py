"""Logging set-up for the CLI: text or JSON lines on stderr, with secrets redacted.

Every secret the process handles (the client secret, each access token) is registered here
as it appears, and a filter replaces it in every record, whatever the verbosity: a last
line of defence behind the rule that no code logs a secret in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["Secret", "configure_logging", "printable", "redact", "register_secret"]

_SECRETS: set[str] = set()
_MASK = "***"


# Spotify client secrets are 32 characters and access tokens over a hundred; shorter values
# are not real credentials, and masking them would mangle ordinary words in messages.
_MIN_SECRET_LENGTH = 12


def register_secret(value: str) -> None:
    """Never let ``value`` reach a log line (values under 12 characters are ignored)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# What a terminal obeys instead of showing: C0 and C1 controls (escape sequences, line
# breaks that would forge a log line) and the bidirectional overrides (text that reads
# backwards). Shown escaped, so one event stays one line of plain text.
_CONTROLS = {
    **{c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]},
    **{c: f"\\u{c:04x}" for c in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F)]},
    **{c: f"\\u{c:04x}" for c in range(0x2066, 0x206A)},
    **{ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"},
}


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``,
    ``\\u202e``), so it can neither steer the terminal nor fake a log line."""
    return text.translate(_CONTROLS)


class _TextFormatter(logging.Formatter):
    """``LEVEL: message``, the message made :func:`printable`; a traceback (``-v``) after."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname}: {printable(record.getMessage())}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event:
            entry["event"] = event
            entry.update(getattr(record, "fields", {}))
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class _QuietFilter(logging.Filter):
    """-q: warnings and errors, and the run's summary line (schedulers need it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or getattr(record, "event", None) == "summary"


def configure_logging(*, verbose: bool, quiet: bool, json_format: bool) -> logging.Logger:
    logger = logging.getLogger("isrc_resolver")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    if quiet and not verbose:
        handler.addFilter(_QuietFilter())
    handler.addFilter(_RedactingFilter())
    handler.setFormatter(_JsonFormatter() if json_format else _TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)
