"""The Postgres store: psycopg 3, async, pooled. The only module that imports psycopg.

Rows go in as one `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT (id) DO NOTHING` per batch:
one round trip for the whole batch, and a retried batch never duplicates a row. Migrations run
under a session advisory lock, so proxies starting together apply each one exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from proxy.errors import ConfigError
from proxy.ledger.stats import ZERO, Group, Latency, Stats, finish
from proxy.ledger.store import COLUMNS, RowsRejected, StoreUnavailable, migrations
from proxy.records import RequestRecord

log = logging.getLogger("smr.ledger")

# any fixed 64-bit number, the same in every process: "the ledger's migrations are running"
MIGRATION_LOCK = 0x736D725F6C656467
_TYPES = {
    "id": "text",
    "created_at": "timestamptz",
    "requested_model": "text",
    "tier": "text",
    "score": "float8",
    "model": "text",
    "provider": "text",
    "stream": "bool",
    "prompt_tokens": "int4",
    "completion_tokens": "int4",
    "cached_tokens": "int4",
    "usage_estimated": "bool",
    "cost_usd": "numeric",
    "baseline_cost_usd": "numeric",
    "latency_ms": "float8",
    "ttft_ms": "float8",
    "http_status": "int2",
    "status": "text",
    "error": "text",
    "attempt": "int2",
}
INSERT = sql.SQL("INSERT INTO requests ({cols}) SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO NOTHING").format(
    cols=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
    arrays=sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(_TYPES[c])) for c in COLUMNS),
)
_WHERE = (
    "WHERE (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)"
    " AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)"
)
_TOTALS = f"""
SELECT count(*) FILTER (WHERE attempt = 0), count(*) FILTER (WHERE attempt = 0 AND status <> 'ok'),
       count(*) FILTER (WHERE attempt = 0 AND usage_estimated),
       coalesce(sum(cost_usd), 0), coalesce(sum(baseline_cost_usd), 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE attempt = 0 AND status = 'ok'),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE attempt = 0 AND status = 'ok')
FROM requests {_WHERE}"""
_GROUP = """
SELECT coalesce({key}, 'none'), count(*) FILTER (WHERE attempt = 0),
       coalesce(sum(cost_usd), 0), coalesce(sum(baseline_cost_usd), 0)
FROM requests {where} GROUP BY 1"""


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """Apply the migrations this database lacks; the versions applied. `conn` must be autocommit."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        done = {version for (version,) in await cursor.fetchall()}
        for version, name, text in migrations("postgres"):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql.SQL(text))  # our own files
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(version)
            log.info("ledger: applied migration %04d_%s", version, name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


class PostgresStore:
    def __init__(self, url: str, *, pool_size: int = 4, timeout: float = 5.0) -> None:
        try:
            info = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"DATABASE_URL is not a Postgres connection string: {exc}") from None
        self.description = f"postgres {info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout))},
            name="smr-ledger",
        )
        self._opened = False
        self._migrated = False

    async def open(self) -> None:
        if not self._opened:
            await self._pool.open(wait=False)
            self._opened = True
        if not self._migrated:
            async with self._connection() as conn:
                await migrate(conn)
            self._migrated = True

    async def write(self, rows: Sequence[RequestRecord]) -> None:
        """Insert `rows` (a retried batch never duplicates: ON CONFLICT DO NOTHING).

        Connections are not checked when taken from the pool, which would cost a round trip per
        write; one the server has closed (a restart) fails when used, so a write that lost its
        connection checks the idle ones, dropping the dead, and is tried once more. A database
        that cannot be reached is not retried here: the writer keeps the rows and backs off.
        """
        await self.open()
        arrays = [[getattr(row, name) for row in rows] for name in COLUMNS]
        try:
            await self._insert(arrays)
        except _ConnectionLost:
            await self._pool.check()
            await self._insert(arrays)

    async def _insert(self, arrays: list[list[Any]]) -> None:
        async with self._connection() as conn:
            await conn.execute(INSERT, arrays)

    async def stats(self, since: datetime | None, until: datetime | None) -> Stats:
        await self.open()
        params = {"since": since, "until": until}
        async with self._connection() as conn:
            cursor = await conn.execute(_TOTALS, params)
            total = await cursor.fetchone()
            assert total is not None
            groups: list[dict[str, Group]] = []
            for key in ("tier", "model"):
                query = _GROUP.format(key=key, where=_WHERE)
                cursor = await conn.execute(query, params)
                groups.append(
                    {
                        name: Group(requests=n, cost_usd=c, baseline_cost_usd=b)
                        for name, n, c, b in await cursor.fetchall()
                    }
                )
        requests, errors, estimated, cost, baseline, p50, p95 = total
        return finish(
            Stats(
                since=since,
                until=until,
                requests=requests,
                errors=errors,
                estimated=estimated,
                cost_usd=Decimal(cost) if cost is not None else ZERO,
                baseline_cost_usd=Decimal(baseline) if baseline is not None else ZERO,
                latency_ms=Latency(p50=p50, p95=p95),
                by_tier=groups[0],
                by_model=groups[1],
            )
        )

    async def aclose(self) -> None:
        if self._opened:
            await self._pool.close(timeout=2)

    def _connection(self) -> _Mapped:
        return _Mapped(self._pool)


class _ConnectionLost(StoreUnavailable):
    """The connection broke while in use (e.g. the server restarted); the pool drops it."""


class _Mapped:
    """A pool connection whose psycopg errors come out as the store's errors."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._cm: Any = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        self._cm = self._pool.connection()
        try:
            conn: psycopg.AsyncConnection[Any] = await self._cm.__aenter__()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(f"cannot reach Postgres: {exc}") from None
        self._conn = conn
        return conn

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        await self._cm.__aexit__(kind, exc, tb)
        if exc is None or not isinstance(exc, psycopg.Error):
            return
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError | psycopg.errors.UndefinedColumn):
            raise RowsRejected(f"Postgres refused the rows: {exc}") from None
        if self._conn is not None and self._conn.broken:
            raise _ConnectionLost(f"Postgres closed the connection: {exc}") from None
        raise StoreUnavailable(f"Postgres failed: {exc}") from None
