"""The embedded ledger (no DATABASE_URL): a SQLite file, through the real proxy, and its writer."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import openai

from proxy.config import LedgerSettings
from proxy.ledger import QueuedLedger
from proxy.ledger.spill import Spill
from proxy.ledger.sqlite import SqliteStore
from proxy.records import RequestRecord
from tests.fakes.openai_provider import FakeOpenAI
from tests.ledger_fixtures import proxy_with_ledger, wait_until

HELLO = [{"role": "user", "content": "hello there"}]


def count(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_without_database_url_rows_go_to_the_sqlite_file_in_the_data_dir(fake: FakeOpenAI, tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    path = tmp_path / "smart-model-router" / "ledger.sqlite3"
    with proxy_with_ledger(fake.url, env, flush_interval=0.01) as server:
        sdk = openai.OpenAI(base_url=server.url, api_key="sk", max_retries=0)
        sdk.chat.completions.create(model="simple", messages=HELLO)  # type: ignore[arg-type]
        list(sdk.chat.completions.create(model="big", messages=HELLO, stream=True))  # type: ignore[arg-type]
        sdk.chat.completions.create(model="no-usage", messages=HELLO)  # type: ignore[arg-type]
        assert wait_until(lambda: count(path) == 3)
        stats = json.loads(httpx.get(server.url + "/stats", timeout=10).text, parse_float=Decimal)
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT model, stream, cost_usd, usage_estimated FROM requests ORDER BY created_at")
        (cheap, _, cost, estimated), (big, streamed, _, _), (_, _, _, flagged) = found.fetchall()
    assert (cheap, big, streamed, estimated, flagged) == ("cheap", "big", 1, 0, 1)
    assert Decimal(cost) == Decimal("0.000014")  # stored as text: exact
    assert stats["requests"] == 3 and stats["estimated"] == 1
    assert stats["by_model"]["cheap"]["cost_usd"] == Decimal("0.000014")

    cli = subprocess.run(
        [sys.executable, "-m", "proxy", "stats", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(cli.stdout, parse_float=Decimal) == stats


def test_smr_ledger_path_names_the_file(fake: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "costs.db"
    with proxy_with_ledger(fake.url, {"SMR_LEDGER_PATH": str(path), "XDG_DATA_HOME": str(tmp_path / "d")}) as server:
        openai.OpenAI(base_url=server.url, api_key="sk", max_retries=0).chat.completions.create(
            model="cheap",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert count(path) == 1  # and written by the shutdown flush at the latest


def rows(n: int) -> list[RequestRecord]:
    now = datetime.now(UTC)
    return [
        RequestRecord(id=f"r{i}", created_at=now, model="m", cost_usd=Decimal("0.000000000001") * i) for i in range(n)
    ]


async def test_writer_keeps_rows_through_an_outage_memory_then_disk(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("a file where the ledger's directory should be")  # the store cannot open
    path = blocker / "ledger.sqlite3"
    settings = LedgerSettings(memory_rows=10, batch_rows=7, flush_interval=0.001)
    ledger = QueuedLedger(SqliteStore(path), Spill(tmp_path / "spill"), settings, open_timeout=1)
    await ledger.start()
    for row in rows(45):
        ledger.record(row)  # never waits, whatever the store does
    for _ in range(200):
        if ledger.spill.rows == 35:
            break
        await asyncio.sleep(0.01)
    assert ledger.spill.rows == 35 and len(ledger._rows) == 10  # memory bounded; the rest on disk
    blocker.unlink()  # the database comes back
    assert await ledger.flush(timeout=20)
    for _ in range(200):  # spilled rows follow the queue
        if ledger.written == 45:
            break
        await asyncio.sleep(0.05)
    await ledger.aclose()
    assert count(path) == 45 and not list((tmp_path / "spill").glob("ledger-*"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT cost_usd FROM requests WHERE id = 'r44'").fetchone() == ("0.000000000044",)


async def test_rows_recorded_after_shutdown_are_spilled_not_lost(tmp_path: Path) -> None:
    ledger = QueuedLedger(SqliteStore(tmp_path / "l.db"), Spill(tmp_path / "spill"))
    await ledger.start()
    await ledger.aclose()
    ledger.record(rows(1)[0])
    (spilled,) = (tmp_path / "spill").glob("ledger-*.jsonl")
    assert '"id":"r0"' in spilled.read_text()
