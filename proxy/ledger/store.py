"""The contract between the ledger's writer and a database, and what both stores share.

A store owns its database library (psycopg, sqlite3) and maps that library's errors to the two
this package knows: `StoreUnavailable` (try again later: rows are kept) and `RowsRejected` (these
rows can never be written: they are set aside in a file, never dropped). Writing the same row
twice is harmless: stores ignore ids they already hold, so a batch may be retried blindly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

from proxy.ledger.stats import Stats
from proxy.records import RequestRecord

COLUMNS: tuple[str, ...] = tuple(RequestRecord.__struct_fields__)


class StoreUnavailable(Exception):
    """The database cannot be reached or is failing; the rows must be kept and retried."""


class RowsRejected(Exception):
    """The database refused these rows for what they contain; retrying cannot help."""


class Store(Protocol):
    """Where rows end up. `open` connects and applies migrations; every method may be retried."""

    description: str

    async def open(self) -> None: ...

    async def write(self, rows: Sequence[RequestRecord]) -> None: ...

    async def stats(self, since: datetime | None, until: datetime | None) -> Stats: ...

    async def aclose(self) -> None: ...


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of each `migrations/<dialect>/NNNN_name.sql`, in version order."""
    out: list[tuple[int, str, str]] = []
    for entry in resources.files("proxy.ledger").joinpath("migrations", dialect).iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            out.append((int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def values(row: RequestRecord) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in COLUMNS)
