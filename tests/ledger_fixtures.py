"""Fixtures for the ledger tests: a fresh Postgres database per test on the machine's server.

`SMR_TEST_POSTGRES` names an admin connection (default postgresql://postgres@127.0.0.1:5432/postgres).
Each test gets its own database, dropped afterwards, so parallel runs never meet. When Postgres is
unreachable the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from proxy import config as configuration
from proxy.app import create_app
from tests.conftest import ProxyServer, fake_config

ADMIN = os.environ.get("SMR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unreachable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Postgres is required under CI: {reason}")
    pytest.skip(f"Postgres is not reachable at {ADMIN} ({reason}); set SMR_TEST_POSTGRES")


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(ADMIN, autocommit=True, connect_timeout=3)


def url_for(name: str) -> str:
    """The admin URL with another database name: postgresql://user@host:port/<name>."""
    return ADMIN.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty database's URL."""
    try:
        conn = admin()
    except psycopg.OperationalError as exc:
        _unreachable(str(exc).strip())
    name = f"smr_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url_for(name)
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(sql, params).fetchall()


@contextmanager
def outage(url: str) -> Iterator[None]:
    """The database refuses connections and every open one is cut, until the block ends."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with admin() as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        terminate(url)
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def terminate(url: str) -> int:
    """Cut every open connection to the database, as a server restart does; how many were cut."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with admin() as conn:
        cut = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    return int(cut[0]) if cut else 0


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def ledger_yaml(**settings: Any) -> str:
    if not settings:
        return ""
    body = ", ".join(f"{k}: {v}" for k, v in settings.items())
    return f"ledger: {{{body}}}\n"


@contextmanager
def proxy_with_ledger(fake_url: str, env: dict[str, str], **settings: Any) -> Iterator[ProxyServer]:
    """The real proxy with its real (default) ledger, configured by `env` and `ledger:` settings."""
    config = configuration.parse(fake_config(fake_url) + ledger_yaml(**settings))
    app = create_app(config, env={"FAKE_KEY": "sk-fake", **env})
    with ProxyServer(app) as server:
        yield server


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
