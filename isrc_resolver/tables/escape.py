"""Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula:
text from the network is made inert in CSV and TSV output (OWASP, "CSV Injection")."""

from __future__ import annotations

from typing import Any

__all__ = ["FORMULA_STARTS", "escape_formula"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a formula may start with


def escape_formula(value: Any) -> Any:
    """``value`` made inert for a spreadsheet: text that starts like a formula gets a
    leading apostrophe (OWASP, "CSV Injection"); anything else is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
