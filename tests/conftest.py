"""Shared fixtures: a fake provider and the proxy, each a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest
import uvicorn

from proxy import config as configuration
from proxy import serving
from proxy.app import create_app
from proxy.records import RequestRecord
from tests.fakes.openai_provider import FakeOpenAI, ThreadedFake


def fake_config(url: str, resilience: str = "{retries: 0, breaker_failures: 1000}", **extra: str) -> str:
    """A config whose models all live on the fake; upstream names pick the fake's behaviour.

    By default no retries and breakers that never open, so each test sees one provider call.
    """
    models = {
        "cheap": "fake-cheap",
        "mid": "fake-mid",
        "big": "fake-big",
        "drip": "drip",
        "cut": "cut",
        "errmid": "errmid",
        "hang": "hang",
        "garbage": "garbage",
        "deep": "deep",
        "huge": "huge",
        "no-usage": "no-usage",
        **{f"fail-{s}": f"fail-{s}" for s in (400, 401, 404, 413, 429, 500, 503, 529)},
    }
    lines = [
        f"  {name}: {{provider: fake, input: 1.00, cached_input: 0.50, output: 2.00, upstream: {up}, "
        f"timeout: {extra.get('timeout', '5')}}}"
        for name, up in models.items()
    ]
    lines.append("  base: {provider: fake, input: 10.00, output: 30.00, upstream: fake-base}")
    return f"""
providers:
  fake: {{adapter: openai, base_url: {url}, api_key_env: FAKE_KEY}}
models:
{chr(10).join(lines)}
tiers:
  simple: [cheap]
  medium: [mid]
  complex: [big]
baseline: base
router:
  thresholds: {{medium: 0.35, complex: 0.7}}
server:
  max_body_bytes: 100000
resilience: {resilience}
"""


class MemoryLedger:
    """Keeps rows in a list, so tests can read what the proxy would have written."""

    def __init__(self) -> None:
        self.rows: list[RequestRecord] = []

    def record(self, row: RequestRecord) -> None:
        self.rows.append(row)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RequestRecord]:
        deadline = time.monotonic() + timeout
        while len(self.rows) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.rows


class ProxyServer:
    """The proxy under uvicorn in a thread: what a client on this machine would talk to."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(serving.config(app, "127.0.0.1", 0, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="proxy")

    def __enter__(self) -> ProxyServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the proxy did not start")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextmanager
def sdk_client(config_text: str, env: dict[str, str]) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at a proxy serving `config_text` (rows go to a MemoryLedger)."""
    app = create_app(configuration.parse(config_text), env=env, ledger=MemoryLedger())
    with ProxyServer(app) as proxy:
        yield openai.OpenAI(base_url=proxy.url, api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeOpenAI]:
    with ThreadedFake() as server:
        yield server


@pytest.fixture(scope="session")
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture(scope="session")
def proxy(fake: FakeOpenAI, ledger: MemoryLedger) -> Iterator[ProxyServer]:
    config = configuration.parse(fake_config(fake.url))
    app = create_app(config, env={"FAKE_KEY": "sk-fake"}, ledger=ledger)
    with ProxyServer(app) as server:
        yield server
