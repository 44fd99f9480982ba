"""Benchmark of the cost ledger: rows/s its writer sustains into Postgres, and what it adds to a request.

    .venv/bin/python -m bench.ledger_bench [--rows 100000] [--requests 4000] [--admin postgresql://postgres@127.0.0.1:5432/postgres]

1. writer: `--rows` rows recorded at once into a `QueuedLedger` on a fresh Postgres database; the
   time until the last one is committed gives rows/s (goal: >= 5,000).
2. latency: two proxies on the fake provider, one with the Postgres ledger, one with a ledger that
   drops rows; requests alternate between them in small interleaved rounds, and the p50 and p99 of
   each are compared (goal: no measurable p50 difference).
3. single-row writes: `--writes` writes of one row each, 20 ms apart (as at low traffic), straight
   to `PostgresStore`: median wall time and this process's CPU time per write.
The database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg

from proxy import config as configuration
from proxy.app import create_app
from proxy.config import LedgerSettings
from proxy.ledger import QueuedLedger
from proxy.ledger.postgres import PostgresStore
from proxy.ledger.spill import Spill
from proxy.records import RequestRecord
from tests.conftest import ProxyServer, fake_config
from tests.fakes.openai_provider import ThreadedFake


class DropLedger:
    """The ledger off: rows go nowhere."""

    def record(self, row: RequestRecord) -> None:
        pass


def _row(i: int, now: datetime) -> RequestRecord:
    return RequestRecord(
        id=f"bench-{i}-{uuid.uuid4().hex}",
        created_at=now,
        requested_model="auto",
        tier="simple",
        score=0.12,
        model="gpt-4o-mini",
        provider="openai",
        prompt_tokens=812,
        completion_tokens=143,
        cached_tokens=256,
        cost_usd=Decimal("0.0001810500"),
        baseline_cost_usd=Decimal("0.0028100000"),
        latency_ms=412.5,
        ttft_ms=120.25,
    )


async def writer_rate(url: str, rows: int, spill: Path) -> float:
    ledger = QueuedLedger(PostgresStore(url), Spill(spill), LedgerSettings(batch_rows=2000, memory_rows=rows + 1))
    await ledger.start()
    now = datetime.now(UTC)
    batch = [_row(i, now) for i in range(rows)]
    started = time.perf_counter()
    for row in batch:
        ledger.record(row)
    assert await ledger.flush(timeout=600), "the writer did not finish"
    elapsed = time.perf_counter() - started
    await ledger.aclose()
    return rows / elapsed


async def single_writes(url: str, writes: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of one-row writes, each after a pause."""
    store = PostgresStore(url)
    await store.open()
    now = datetime.now(UTC)
    walls, cpus = [], []
    for i in range(writes + 10):
        await asyncio.sleep(0.02)
        wall, cpu = time.perf_counter(), time.process_time()
        await store.write([_row(i, now)])
        if i >= 10:
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
    await store.aclose()
    return statistics.median(walls), statistics.median(cpus)


def latency(fake_url: str, url: str, requests: int, data: Path) -> dict[str, list[float]]:
    config = configuration.parse(fake_config(fake_url))
    env = {"FAKE_KEY": "sk-fake", "DATABASE_URL": url, "XDG_DATA_HOME": str(data)}
    body = {"model": "cheap", "messages": [{"role": "user", "content": "hello there, how are you"}]}
    times: dict[str, list[float]] = {"on": [], "off": []}
    with (
        ProxyServer(create_app(config, env=env)) as on,
        ProxyServer(create_app(config, env=env, ledger=DropLedger())) as off,
        httpx.Client(timeout=10) as http,
    ):
        servers = {"on": on, "off": off}
        for name in ("on", "off"):  # warm up both
            for _ in range(50):
                http.post(servers[name].url + "/chat/completions", json=body).raise_for_status()
        for round_ in range(requests // 20):
            order = ("on", "off") if round_ % 2 else ("off", "on")
            for name in order:
                for _ in range(10):
                    started = time.perf_counter()
                    http.post(servers[name].url + "/chat/completions", json=body).raise_for_status()
                    times[name].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"smr_bench_{uuid.uuid4().hex[:10]}"
    url = args.admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(args.admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            with tempfile.TemporaryDirectory() as tmp:
                rate = asyncio.run(writer_rate(url, args.rows, Path(tmp) / "spill"))
                print(f"writer: {args.rows} rows into Postgres at {rate:,.0f} rows/s")
                wall, cpu = asyncio.run(single_writes(url, args.writes))
                print(f"single-row write: {wall:.3f} ms wall, {cpu:.3f} ms CPU (medians of {args.writes})")
                with ThreadedFake() as fake:
                    times = latency(fake.url, url, args.requests, Path(tmp))
            for key, values in times.items():
                values.sort()
                p99 = values[int(len(values) * 0.99) - 1]
                print(
                    f"ledger {key:>3}: {len(values)} requests  p50 {statistics.median(values):.3f} ms  p99 {p99:.3f} ms"
                )
            print(
                f"p50 difference (on - off): {statistics.median(times['on']) - statistics.median(times['off']):+.3f} ms"
            )
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
