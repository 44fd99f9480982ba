"""The cost ledger in the real Postgres, fed by the real proxy through the official SDK."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import tiktoken

from proxy import config as configuration
from proxy.app import create_app
from tests.conftest import ProxyServer
from tests.fakes.openai_provider import FakeOpenAI
from tests.ledger_fixtures import outage, pg_url, proxy_with_ledger, query, terminate, wait_until

pytestmark = pytest.mark.services
__all__ = ["pg_url"]

HELLO = [{"role": "user", "content": "hello there"}]


def rows(url: str, where: str = "true") -> list[dict[str, Any]]:
    names = [
        "id", "requested_model", "tier", "model", "provider", "stream", "prompt_tokens", "completion_tokens",
        "cached_tokens", "usage_estimated", "cost_usd", "baseline_cost_usd", "latency_ms", "ttft_ms",
        "http_status", "status", "error",
    ]  # fmt: skip
    found = query(url, f"SELECT {', '.join(names)} FROM requests WHERE {where} ORDER BY created_at")
    return [dict(zip(names, row, strict=True)) for row in found]


def count(url: str) -> int:
    return int(query(url, "SELECT count(*) FROM requests")[0][0])


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": pg_url, "XDG_DATA_HOME": str(tmp_path / "data")}


@pytest.fixture
def served(fake: FakeOpenAI, env: dict[str, str]) -> Iterator[ProxyServer]:
    with proxy_with_ledger(fake.url, env, flush_interval=0.01) as server:
        yield server


def client(server: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-client", max_retries=0, timeout=20)


def test_plain_streamed_and_failed_requests_each_write_one_exact_row(served: ProxyServer, pg_url: str) -> None:
    sdk = client(served)
    sdk.chat.completions.create(model="simple", messages=HELLO)  # type: ignore[arg-type]
    chunks = list(sdk.chat.completions.create(model="mid", messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert chunks
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="fail-500", messages=HELLO)  # type: ignore[arg-type]
    assert wait_until(lambda: count(pg_url) == 3)
    plain, streamed, failed = rows(pg_url)

    # "hello there" is 2 words + 4 per message = 6 prompt tokens at the fake; the answer has 4 words
    assert plain["requested_model"] == "simple" and plain["tier"] == "simple" and plain["model"] == "cheap"
    assert (plain["prompt_tokens"], plain["completion_tokens"], plain["usage_estimated"]) == (6, 4, False)
    assert plain["cost_usd"] == Decimal("0.000014")  # (6 x 1.00 + 4 x 2.00) / 1M
    assert plain["baseline_cost_usd"] == Decimal("0.00018")  # (6 x 10.00 + 4 x 30.00) / 1M
    assert plain["status"] == "ok" and plain["http_status"] == 200 and plain["ttft_ms"] is None
    assert plain["latency_ms"] > 0 and plain["provider"] == "fake" and not plain["stream"]

    assert streamed["stream"] and streamed["model"] == "mid" and streamed["status"] == "ok"
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (6, 4)
    assert streamed["usage_estimated"] is False  # the proxy asked for the usage chunk itself
    assert streamed["ttft_ms"] is not None and 0 < streamed["ttft_ms"] <= streamed["latency_ms"]

    assert failed["status"] == "error" and failed["http_status"] >= 500 and failed["model"] == "fail-500"
    assert "fake failure 500" in failed["error"]
    assert failed["cost_usd"] == 0 and failed["prompt_tokens"] == 0 and not failed["usage_estimated"]


def test_missing_usage_is_counted_with_tiktoken_and_flagged(served: ProxyServer, pg_url: str) -> None:
    sdk = client(served)
    sdk.chat.completions.create(model="no-usage", messages=HELLO)  # type: ignore[arg-type]
    list(sdk.chat.completions.create(model="no-usage", messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert wait_until(lambda: count(pg_url) == 2)
    enc = tiktoken.get_encoding("o200k_base")
    prompt = 3 + 3 + len(enc.encode("user")) + len(enc.encode("hello there"))  # OpenAI's chat framing
    completion = len(enc.encode("You said: hello there"))
    for row in rows(pg_url):
        assert row["usage_estimated"] is True
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
        assert row["cost_usd"] == (Decimal(prompt) * Decimal("1.00") + Decimal(completion) * Decimal("2.00")) / 10**6


def test_client_that_leaves_mid_stream_gets_an_estimated_row(served: ProxyServer, pg_url: str) -> None:
    body = {"model": "drip", "messages": HELLO, "stream": True}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", served.url + "/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: ")
            if seen >= 5:
                break
    assert wait_until(lambda: count(pg_url) == 1)
    (row,) = rows(pg_url)
    assert row["status"] == "client_closed" and row["http_status"] == 499
    assert row["usage_estimated"] is True
    assert 0 < row["completion_tokens"] < 200 * 2  # part of the 200 words, counted from what was streamed
    assert row["cost_usd"] > 0 and row["ttft_ms"] is not None


def test_cached_prompt_tokens_are_priced_exactly(pg_url: str, tmp_path: Path) -> None:
    usage = {
        "prompt_tokens": 1_234_567,
        "completion_tokens": 89_013,
        "prompt_tokens_details": {"cached_tokens": 1_000_003},
    }

    def provider(request: httpx.Request) -> httpx.Response:
        answer = {"message": {"role": "assistant", "content": "ok"}, "index": 0, "finish_reason": "stop"}
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "choices": [answer], "usage": usage})

    config = configuration.parse("""
providers: {p: {adapter: openai, base_url: "http://provider.test/v1"}}
models:
  mini: {provider: p, input: 0.15, cached_input: 0.075, output: 0.60}
  big:  {provider: p, input: 2.50, cached_input: 1.25, output: 10.00}
tiers: {simple: [mini], medium: [mini], complex: [big]}
baseline: big
""")
    env = {"DATABASE_URL": pg_url, "XDG_DATA_HOME": str(tmp_path)}
    app = create_app(config, env=env, transport=httpx.MockTransport(provider))
    with ProxyServer(app) as server:
        client(server).chat.completions.create(model="mini", messages=HELLO)  # type: ignore[arg-type]
        assert wait_until(lambda: count(pg_url) == 1)
    ((cost, baseline, cached),) = query(
        pg_url, "SELECT cost_usd::text, baseline_cost_usd::text, cached_tokens FROM requests"
    )
    # 234564 uncached x 0.15 + 1000003 cached x 0.075 + 89013 x 0.60, per 1M, worked by hand
    assert cost == "0.163592625000"
    assert baseline == "2.726543750000"  # 234564 x 2.50 + 1000003 x 1.25 (big's cached price) + 89013 x 10.00
    assert cached == 1_000_003


def test_requests_answer_through_an_outage_and_every_row_arrives(
    fake: FakeOpenAI, env: dict[str, str], pg_url: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    with proxy_with_ledger(fake.url, env, flush_interval=0.01, memory_rows=8, spill_dir=str(spill)) as server:
        sdk = client(server)
        for _ in range(4):
            sdk.chat.completions.create(model="cheap", messages=HELLO)  # type: ignore[arg-type]
        assert wait_until(lambda: count(pg_url) == 4)
        with outage(pg_url):
            for i in range(30):
                started = time.perf_counter()
                if i % 3:
                    sdk.chat.completions.create(model="cheap", messages=HELLO)  # type: ignore[arg-type]
                else:
                    list(sdk.chat.completions.create(model="mid", messages=HELLO, stream=True))  # type: ignore[arg-type]
                assert time.perf_counter() - started < 1.0  # the ledger never holds a response
            # past memory_rows, the oldest rows wait on disk
            assert wait_until(lambda: any(spill.rglob("ledger-*")), timeout=20)
        assert wait_until(lambda: count(pg_url) == 34, timeout=40), count(pg_url)
        # the file goes once its last batch is written, a moment after the count arrives
        assert wait_until(lambda: not any(spill.rglob("ledger-*")))  # replayed, then removed
    assert count(pg_url) == 34
    assert query(pg_url, "SELECT count(DISTINCT id) FROM requests")[0][0] == 34


def test_after_the_server_cut_its_connections_the_next_row_is_written_at_once(
    fake: FakeOpenAI, env: dict[str, str], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Pool connections are not checked on the way out (a round trip per write): the write that
    # meets a dead one checks the pool and is tried again, without the writer's backoff.
    with proxy_with_ledger(fake.url, env, flush_interval=0.01) as server:
        sdk = client(server)
        sdk.chat.completions.create(model="cheap", messages=HELLO)  # type: ignore[arg-type]
        assert wait_until(lambda: count(pg_url) == 1)
        with caplog.at_level(logging.INFO, logger="smr.ledger"):
            assert terminate(pg_url) >= 1  # the pool's connection, as a Postgres restart would
            sdk.chat.completions.create(model="cheap", messages=HELLO)  # type: ignore[arg-type]
            started = time.monotonic()
            assert wait_until(lambda: count(pg_url) == 2, timeout=10)
            assert time.monotonic() - started < 1.0
        ledger_logs = [r.getMessage() for r in caplog.records if r.name == "smr.ledger"]
        assert not ledger_logs, ledger_logs  # no outage was reported: nothing waited for a retry


def test_shutdown_writes_the_queue(fake: FakeOpenAI, env: dict[str, str], pg_url: str) -> None:
    with proxy_with_ledger(fake.url, env, flush_interval=60, batch_rows=1000) as server:
        sdk = client(server)
        for _ in range(12):
            sdk.chat.completions.create(model="cheap", messages=HELLO)  # type: ignore[arg-type]
        time.sleep(0.2)
        assert count(pg_url) == 0  # still gathering a batch
    assert count(pg_url) == 12  # written on the way out, not a minute later


def test_rows_spilled_at_shutdown_during_an_outage_are_written_by_the_next_start(
    fake: FakeOpenAI, env: dict[str, str], pg_url: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    with outage(pg_url):
        with proxy_with_ledger(fake.url, env, spill_dir=str(spill), shutdown_timeout=1) as server:
            sdk = client(server)
            for _ in range(7):
                sdk.chat.completions.create(model="cheap", messages=HELLO)  # type: ignore[arg-type]
        files = list(spill.rglob("ledger-*.jsonl"))
        assert len(files) == 1 and len(files[0].read_text().splitlines()) == 7
    with proxy_with_ledger(fake.url, env, spill_dir=str(spill)):
        assert wait_until(lambda: count(pg_url) == 7)
    assert not any(spill.rglob("ledger-*"))


def test_stats_endpoint_and_cli_agree_with_the_rows(served: ProxyServer, pg_url: str, env: dict[str, str]) -> None:
    import subprocess
    import sys

    sdk = client(served)
    for _ in range(3):
        sdk.chat.completions.create(model="simple", messages=HELLO)  # type: ignore[arg-type]
    sdk.chat.completions.create(model="big", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="fail-500", messages=HELLO)  # type: ignore[arg-type]
    assert wait_until(lambda: count(pg_url) == 5)

    answer = httpx.get(served.url + "/stats", timeout=10)
    assert answer.status_code == 200
    stats = json.loads(answer.text, parse_float=Decimal)
    assert (stats["requests"], stats["errors"]) == (5, 1)
    assert stats["cost_usd"] == Decimal("0.000056")  # 4 answers x 0.000014
    assert stats["baseline_cost_usd"] == Decimal("0.00072")
    assert stats["savings_usd"] == Decimal("0.000664")
    assert stats["savings_pct"] == Decimal("92.22")
    assert stats["by_tier"]["simple"]["requests"] == 3 and stats["by_model"]["big"]["requests"] == 1
    assert stats["by_model"]["cheap"]["cost_usd"] == Decimal("0.000042")
    assert 0 < stats["latency_ms"]["p50"] <= stats["latency_ms"]["p95"]

    later = httpx.get(served.url + "/stats", params={"since": "2999-01-01T00:00:00Z"}, timeout=10).json()
    assert later["requests"] == 0 and later["savings_pct"] is None
    recent = httpx.get(served.url + "/stats", params={"window": "1h"}, timeout=10).json()
    assert recent["requests"] == 5
    bad = httpx.get(served.url + "/stats", params={"window": "soon"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "window"

    cli = [sys.executable, "-m", "proxy", "stats"]
    env = {**os.environ, **env}
    printed = subprocess.run([*cli, "--json"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(printed.stdout, parse_float=Decimal) == stats
    table = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "requests     5  (errors 1" in table and "$0.000056" in table and "92.22%" in table
