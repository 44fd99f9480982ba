"""The cost ledger: one row per request, in Postgres or a SQLite file, off the hot path, lossless.

`record` appends the row to an in-memory queue and returns; a background task writes the queue
in batches. While the database is away, rows stay in memory up to `memory_rows`; past that the
oldest are appended (fsync'd) to a spill file, and every spilled row is written once the database
answers again, also by the next proxy to start if this one stops first. On shutdown the queue is
written, or spilled if the database cannot take it in time. What a hard crash can lose: the rows
still in memory (at most `flush_interval` of traffic while the database is up; up to
`memory_rows` while it is down). Spilled rows survive.

    QueuedLedger ── Store (store.py) ─┬─ PostgresStore (postgres.py: psycopg pool, migrations)
                 └─ Spill (spill.py)  └─ SqliteStore   (sqlite.py: embedded default)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from proxy.config import LedgerSettings
from proxy.errors import ConfigError, LedgerUnavailable
from proxy.ledger.spill import Spill
from proxy.ledger.stats import Stats
from proxy.ledger.store import RowsRejected, Store, StoreUnavailable
from proxy.records import RequestRecord

__all__ = ["QueuedLedger", "Stats", "Store", "data_dir", "open_ledger", "open_store", "read_stats"]

log = logging.getLogger("smr.ledger")
RETRY_MIN, RETRY_MAX = 0.1, 5.0


class QueuedLedger:
    """A `Ledger` that never blocks: queue in `record`, write in a background task."""

    def __init__(
        self, store: Store, spill: Spill, settings: LedgerSettings | None = None, *, open_timeout: float = 5.0
    ) -> None:
        self.store = store
        self.spill = spill
        self.settings = settings or LedgerSettings()
        self.open_timeout = open_timeout
        self.written = 0  # rows the store accepted (for logs, tests and the benchmark)
        self._rows: deque[RequestRecord] = deque()
        self._inflight: list[RequestRecord] = []
        self._wake: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._replay_others = True
        self._down_since: float | None = None

    # -- the hot path ---------------------------------------------------------------------------

    def record(self, row: RequestRecord) -> None:
        if self._closed:  # a late row, after shutdown: straight to disk
            self.spill.append([row])
            return
        rows = self._rows
        rows.append(row)
        if len(rows) > 2 * self.settings.memory_rows:
            # the writer is stuck in a slow call: keep memory bounded at the cost of one blocking append
            self.spill.append([rows.popleft() for _ in range(len(rows) - self.settings.memory_rows)])
        if self._wake is not None and not self._wake.is_set():
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows taken but not yet in the database (in memory or being written)."""
        return len(self._rows) + len(self._inflight)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and migrate (a database that is down is only a warning), then start the writer."""
        try:
            await asyncio.wait_for(self.store.open(), self.open_timeout)
            log.info("ledger: writing to %s", self.store.description)
        except (StoreUnavailable, TimeoutError) as exc:
            self._down_since = asyncio.get_running_loop().time()
            log.warning("ledger: %s is unavailable (%s); rows are kept until it is back", self.store.description, exc)
        self._wake, self._closing = asyncio.Event(), asyncio.Event()
        self._wake.set()  # replay what earlier runs spilled
        self._task = asyncio.create_task(self._run(), name="smr-ledger-writer")

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row taken so far is in the database; False if that took too long."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.pending:
            if self._wake is not None:
                self._wake.set()
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self) -> None:
        """Write the queue (spill what the database cannot take within `shutdown_timeout`), then close."""
        if self._task is not None and self._closing is not None and self._wake is not None:
            self._closing.set()
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.settings.shutdown_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._closed = True
        left = [*self._inflight, *self._rows]
        self._inflight, self._rows = [], deque()
        if left:
            await anyio.to_thread.run_sync(self.spill.append, left)
            log.warning("ledger: %d rows spilled to %s; the next start writes them", len(left), self.spill.path)
        await self.store.aclose()

    async def stats(self, since: datetime | None = None, until: datetime | None = None) -> Stats:
        try:
            return await self.store.stats(since, until)
        except StoreUnavailable as exc:
            raise LedgerUnavailable(f"The cost ledger is unavailable: {exc}") from None

    # -- the writer -----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None and self._closing is not None
        delay = RETRY_MIN
        while True:
            if not self._closing.is_set():
                await self._wake.wait()
                self._wake.clear()
                if len(self._rows) < self.settings.batch_rows:  # let a batch gather, unless shutting down
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self.settings.flush_interval)
            ok = await self._reopen() and await self._drain() and (self._closing.is_set() or await self._replay())
            if ok:
                delay = RETRY_MIN
                if self._down_since is not None:
                    log.warning("ledger: %s is back; queued rows written", self.store.description)
                    self._down_since = None
                if self._closing.is_set() and not self._rows:
                    return
                continue
            if self._closing.is_set():
                return  # aclose spills what is left
            if self._down_since is None:
                self._down_since = asyncio.get_running_loop().time()
            await self._overflow()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, RETRY_MAX)
            self._wake.set()

    async def _reopen(self) -> bool:
        """While the store is down, check it is back (and migrated) before writing to it."""
        if self._down_since is None:
            return True
        try:
            await self.store.open()
        except StoreUnavailable:
            return False
        return True

    async def _drain(self) -> bool:
        """Write the queue in batches; False if the store became unavailable."""
        while self._rows:
            count = min(len(self._rows), self.settings.batch_rows)
            self._inflight = [self._rows.popleft() for _ in range(count)]
            try:
                ok = await self._write(self._inflight)
            finally:
                if self._inflight and not self._closed:
                    self._rows.extendleft(reversed(self._inflight))
                self._inflight = []
            if not ok:
                return False
        return True

    async def _write(self, batch: list[RequestRecord]) -> bool:
        try:
            await self.store.write(batch)
        except StoreUnavailable as exc:
            if self._down_since is None:
                log.warning("ledger: %s; %d rows kept, retrying", exc, self.pending)
            return False
        except RowsRejected as exc:
            log.error("ledger: %s; writing the batch row by row", exc)
            for row in batch:
                try:
                    await self.store.write([row])
                except RowsRejected:
                    await anyio.to_thread.run_sync(self.spill.reject, [row])
                    log.error("ledger: row %s refused; kept in %s", row.id, self.spill.directory / "rejected.jsonl")
                except StoreUnavailable:
                    return False  # the whole batch is retried; rows already written are ignored
        self.written += len(batch)
        batch.clear()
        return True

    async def _overflow(self) -> None:
        """While the database is away, keep at most `memory_rows` in memory; spill the oldest."""
        excess = len(self._rows) - self.settings.memory_rows
        if excess > 0:
            rows = [self._rows.popleft() for _ in range(excess)]
            await anyio.to_thread.run_sync(self.spill.append, rows)
            log.warning("ledger: database still away; %d rows spilled to %s", excess, self.spill.path)

    async def _replay(self) -> bool:
        """Write what was spilled (by us, or by proxies that are gone); False if the store failed."""
        if not self.spill.rows and not self._replay_others:
            return True
        for path in self.spill.claim(others=self._replay_others):
            batches = Spill.batches(path, self.settings.batch_rows)
            try:
                while batch := await anyio.to_thread.run_sync(next, batches, None):
                    if not await self._write(batch):
                        return False
            finally:
                batches.close()
            path.unlink(missing_ok=True)
            log.info("ledger: replayed %s", path.name)
        self._replay_others = False
        return True


def data_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_DATA_HOME/smart-model-router`, else `~/.local/share/smart-model-router`."""
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path.home() / ".local" / "share"
    return base / "smart-model-router"


def _postgres(url: str, settings: LedgerSettings, env: Mapping[str, str]) -> Store:
    from proxy.ledger.postgres import PostgresStore

    return PostgresStore(url, pool_size=settings.pool_size)


def _sqlite(url: str, settings: LedgerSettings, env: Mapping[str, str]) -> Store:
    from proxy.ledger.sqlite import SqliteStore

    if url:
        return SqliteStore(Path(url.removeprefix("sqlite://")))  # sqlite:///var/x.db is /var/x.db
    path = env.get("SMR_LEDGER_PATH") or settings.path
    return SqliteStore(Path(path) if path else data_dir(env) / "ledger.sqlite3")


STORES: dict[str, Callable[[str, LedgerSettings, Mapping[str, str]], Store]] = {
    "postgresql": _postgres,
    "postgres": _postgres,
    "sqlite": _sqlite,
}


def open_store(settings: LedgerSettings, env: Mapping[str, str]) -> Store:
    """`$DATABASE_URL`'s store (postgresql://, sqlite:///path); without it, the SQLite file."""
    url = env.get("DATABASE_URL", "").strip()
    if "://" in url:
        scheme = url.split("://", 1)[0]
    else:  # nothing, or libpq's "host=... dbname=..." form
        scheme = "postgresql" if "=" in url else "sqlite"
    if scheme not in STORES:
        raise ConfigError(f"DATABASE_URL: unknown scheme {scheme!r}; use postgresql://... or sqlite:///path")
    return STORES[scheme](url, settings, env)


def open_ledger(settings: LedgerSettings, env: Mapping[str, str]) -> QueuedLedger:
    """The ledger the proxy runs with; nothing connects until `start()`."""
    store = open_store(settings, env)
    spill_root = Path(settings.spill_dir) if settings.spill_dir else data_dir(env) / "spill"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", store.description).strip("_")[:100]
    return QueuedLedger(store, Spill(spill_root / name), settings)


async def read_stats(
    settings: LedgerSettings, env: Mapping[str, str], since: datetime | None, until: datetime | None
) -> Stats:
    """The stats of the ledger this environment points at (for `smr stats`); `LedgerUnavailable` if down."""
    store = open_store(settings, env)
    try:
        await asyncio.wait_for(store.open(), 10)
        return await store.stats(since, until)
    except (StoreUnavailable, TimeoutError) as exc:
        raise LedgerUnavailable(f"The cost ledger ({store.description}) is unavailable: {exc}") from None
    finally:
        await store.aclose()
