"""Cells that a spreadsheet program reads as text, never as a formula.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is taken for a formula
by Excel, LibreOffice and Google Sheets when a CSV or XLSX file is opened ("CSV injection"):
a customer named `=HYPERLINK(...)` would become a live link in a support agent's export.
Every file Entitle writes for people (the audit log, the dashboard's tables, import-export)
passes its text cells through `safe_cell`, which puts a single quote in front of such a cell;
spreadsheet programs show the text without the quote. Imports take the quote off again
(`unquote_cell`), so an exported file imports back unchanged.

Numbers stay numbers: `-5` written as an int is not a formula, only text that starts like one.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value`, with a quote in front when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def unquote_cell(text: str) -> str:
    """A cell read back from a file `safe_cell` wrote: the protective quote taken off."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
