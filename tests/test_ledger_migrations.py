"""Migrations: applied once, idempotent, and safe when several proxies start at the same moment."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from proxy.ledger.postgres import PostgresStore, migrate
from proxy.ledger.store import migrations
from tests.ledger_fixtures import pg_url, query

__all__ = ["pg_url"]

START = """
import asyncio, sys
from pathlib import Path
from proxy.ledger.postgres import PostgresStore
from proxy.ledger.sqlite import SqliteStore
async def main(kind, where):
    store = PostgresStore(where) if kind == "pg" else SqliteStore(Path(where))
    await store.open()
    await store.aclose()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def start_many(kind: str, where: str, count: int = 6) -> None:
    """`count` processes open the same fresh database at once, as proxies starting together."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", START, kind, where], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    failures = [p.stderr.read() if p.stderr else "" for p in procs if p.wait(60) != 0]
    assert not failures, failures[0]


@pytest.mark.services
def test_postgres_concurrent_starts_apply_each_migration_once(pg_url: str) -> None:
    start_many("pg", pg_url)
    versions = query(pg_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == [v for v, _, _ in migrations("postgres")]
    assert query(pg_url, "SELECT count(*) FROM requests") == [(0,)]


@pytest.mark.services
def test_postgres_migrations_are_idempotent(pg_url: str) -> None:
    async def twice() -> tuple[list[int], list[int]]:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            return await migrate(conn), await migrate(conn)

    first, second = asyncio.run(twice())
    assert first == [v for v, _, _ in migrations("postgres")] and second == []

    async def reopen() -> None:
        store = PostgresStore(pg_url)
        await store.open()
        await store.aclose()

    asyncio.run(reopen())
    columns = {
        c for (c,) in query(pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name='requests'")
    }
    assert {
        "id",
        "created_at",
        "score",
        "cached_tokens",
        "cost_usd",
        "baseline_cost_usd",
        "ttft_ms",
        "error",
    } <= columns
    kinds = dict(
        query(pg_url, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name='requests'")
    )
    assert kinds["cost_usd"] == kinds["baseline_cost_usd"] == "numeric"


def test_sqlite_concurrent_starts_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ledger.sqlite3"
    start_many("sqlite", str(path))
    start_many("sqlite", str(path), count=2)  # and again, on an up-to-date file
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [v for v, _, _ in migrations("sqlite")]
        assert conn.execute("SELECT count(*) FROM requests").fetchone() == (0,)


def test_both_dialects_have_the_same_migrations_and_columns() -> None:
    pg, lite = migrations("postgres"), migrations("sqlite")
    assert [(v, n) for v, n, _ in pg] == [(v, n) for v, n, _ in lite]
    assert [v for v, _, _ in pg] == list(range(1, len(pg) + 1))
