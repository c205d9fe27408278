"""The README says what the program says: its option table against ``--help``."""

from __future__ import annotations

import re
from pathlib import Path

from isrc_resolver.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
_OPTION = re.compile(r"(--[a-z][a-z-]*)(?: (\{[^}]+\}|[A-Z]+))?")


def readme_options() -> dict[str, str]:
    """``--flag METAVAR`` -> the default column, from the README's option table."""
    text = README.read_text(encoding="utf-8")
    table = text.split("| option | default | meaning |", 1)[1].split("\n\n", 1)[0]
    options = {}
    for row in table.splitlines()[2:]:
        first, default = (cell.strip() for cell in row.strip("|").split("|")[:2])
        for flag, metavar in _OPTION.findall(first):
            options[f"{flag} {metavar}".strip()] = default
    return options


def help_options() -> dict[str, str]:
    """``--flag METAVAR`` -> the default that --help states for it (or '')."""
    entries: list[list[str]] = []
    for line in build_parser().format_help().splitlines():
        if line.startswith("  -"):
            entries.append([line])
        elif entries and line.startswith("      "):
            entries[-1].append(line)
        elif entries:
            entries.append([])  # a blank or a heading ends the entry
    options = {}
    for entry in filter(None, entries):
        names = re.split(r"\s{2,}", entry[0].strip())[0]
        default = re.search(r"\(default: ([^);]+)", " ".join(entry))
        for flag, metavar in _OPTION.findall(names):
            options[f"{flag} {metavar}".strip()] = default.group(1) if default else ""
    return options


def test_the_readme_table_lists_exactly_the_options_of_help() -> None:
    assert set(readme_options()) == set(help_options())


def test_numeric_defaults_agree() -> None:
    readme = readme_options()
    for option, default in help_options().items():
        if re.fullmatch(r"[0-9.]+", default):
            assert readme[option] == default, option
