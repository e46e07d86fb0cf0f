"""Dead letters as CSV for a spreadsheet, with formula injection neutralised (OWASP's "CSV
Injection" advice): a cell a spreadsheet would evaluate gets a leading apostrophe."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

# What makes Excel, LibreOffice and Google Sheets read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = [
    "id",
    "category",
    "status",
    "source",
    "batch_id",
    "points",
    "attempts",
    "first_failed_at",
    "last_failed_at",
    "entity_ids",
    "error",
    "payload",
]


class Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def csv_cell(value: Any) -> str:
    """One cell's text: times in ISO 8601, formula-looking text behind an apostrophe."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def write_csv(out: Writable, letters: Iterable[Any]) -> None:
    # Every cell quoted, as OWASP also advises: no separator or line break inside a payload
    # can shift the cells after it.
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    for letter in letters:
        writer.writerow([csv_cell(getattr(letter, name)) for name in COLUMNS])
