"""The embedded store: a SQLite file, so the proxy keeps its ledger with nothing else running.

sqlite3 blocks, so every call runs in a worker thread, one at a time. Money is stored as decimal
text and summed as `Decimal` in Python; several processes may share the file (WAL, busy timeout),
and migrations run inside `BEGIN IMMEDIATE`, which no two processes hold at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread

from proxy.ledger.stats import Row, Stats, aggregate
from proxy.ledger.store import COLUMNS, RowsRejected, StoreUnavailable, migrations, values
from proxy.records import RequestRecord

INSERT = f"INSERT OR IGNORE INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_STATS = (
    "SELECT tier, model, status, usage_estimated, cost_usd, baseline_cost_usd, latency_ms, attempt FROM requests "
    "WHERE (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?)"
)


def _text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _column(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, and without an exponent
    if isinstance(value, datetime):
        return _text(value)
    return value


def migrate(conn: sqlite3.Connection) -> list[int]:
    applied: list[int] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {version for (version,) in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, text in migrations("sqlite"):
            if version not in done:
                code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
                for statement in code.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, datetime.now(UTC).isoformat())
                )
                applied.append(version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite {path}"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn)
            self._conn = conn
        return self._conn

    async def _run(self, work: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                try:
                    return work(self._connect(), *args)
                except sqlite3.IntegrityError as exc:
                    raise RowsRejected(f"SQLite refused the rows: {exc}") from None
                except (sqlite3.Error, OSError) as exc:
                    raise StoreUnavailable(f"SQLite ledger {self.path}: {exc}") from None

        return await anyio.to_thread.run_sync(locked)

    async def open(self) -> None:
        await self._run(lambda conn: None)

    async def write(self, rows: Sequence[RequestRecord]) -> None:
        encoded = [tuple(map(_column, values(row))) for row in rows]

        def insert(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(INSERT, encoded)

        await self._run(insert)

    async def stats(self, since: datetime | None, until: datetime | None) -> Stats:
        start, end = _text(since), _text(until)

        def read(conn: sqlite3.Connection) -> Stats:
            rows = conn.execute(_STATS, (start, start, end, end))
            return aggregate(
                (
                    Row(
                        t,
                        m,
                        s,
                        bool(e),
                        Decimal(c) if c is not None else None,
                        Decimal(b) if b is not None else None,
                        lat,
                        a,
                    )
                    for t, m, s, e, c, b, lat, a in rows
                ),
                since,
                until,
            )

        stats: Stats = await self._run(read)
        return stats

    async def aclose(self) -> None:
        def close(_: sqlite3.Connection) -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._conn is not None:
            await self._run(close)
