"""End to end through the real proxy server with the official OpenAI SDK as the client."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MemoryLedger, ProxyServer
from tests.fakes.openai_provider import FakeOpenAI

HARD = "Design a rate limiter for 1M rps across 5 regions; discuss consistency trade-offs and failure modes."


def sync_client(proxy: ProxyServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key="unused", max_retries=0)


def test_auto_routes_rewrites_model_and_says_why(proxy: ProxyServer, fake: FakeOpenAI) -> None:
    client = sync_client(proxy)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hi there"
    assert raw.headers["x-router-tier"] == "simple"
    assert raw.headers["x-router-model"] == "cheap"
    assert "score" in raw.headers["x-router-reason"]
    path, headers, body = fake.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["model"] == "fake-cheap"
    assert headers["authorization"] == "Bearer sk-fake"

    hard = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": HARD}])
    assert hard.headers["x-router-tier"] == "complex"
    assert fake.requests[-1][2]["model"] == "fake-big"


def test_tier_and_named_model(proxy: ProxyServer, fake: FakeOpenAI) -> None:
    client = sync_client(proxy)
    raw = client.chat.completions.with_raw_response.create(model="medium", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-router-tier"] == "medium" and fake.requests[-1][2]["model"] == "fake-mid"
    raw = client.chat.completions.with_raw_response.create(model="big", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-router-tier"] == "none" and raw.headers["x-router-model"] == "big"
    assert raw.headers["x-router-reason"] == "model requested"
    assert fake.requests[-1][2]["model"] == "fake-big"


def test_unmodelled_fields_are_forwarded_untouched(proxy: ProxyServer, fake: FakeOpenAI) -> None:
    client = sync_client(proxy)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    client.chat.completions.create(
        model="cheap",
        messages=[{"role": "user", "content": "hello"}],
        temperature=0.3,
        seed=42,
        logit_bias={"50256": -100},
        tools=tools,
        tool_choice="auto",
        max_tokens=17,
        extra_body={"vendor_knob": {"nested": [1, 2.5, None, True]}},
    )
    sent = fake.requests[-1][2]
    assert sent["temperature"] == 0.3 and sent["seed"] == 42 and sent["logit_bias"] == {"50256": -100}
    assert sent["tools"] == tools and sent["tool_choice"] == "auto" and sent["max_tokens"] == 17
    assert sent["vendor_knob"] == {"nested": [1, 2.5, None, True]}


def test_stream_without_usage_request_hides_usage(proxy: ProxyServer, fake: FakeOpenAI) -> None:
    client = sync_client(proxy)
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hello streaming world"}], stream=True
        )
    )
    assert fake.requests[-1][2]["stream_options"] == {"include_usage": True}  # always asked upstream
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: hello streaming world"
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach a client that did not ask"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_with_usage_request_passes_it_on(proxy: ProxyServer, ledger: MemoryLedger) -> None:
    client = sync_client(proxy)
    before = len(ledger.rows)
    stream = client.chat.completions.create(
        model="mid",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    usage = chunks[-1].usage
    row = ledger.wait_for(before + 1)[-1]
    assert (row.prompt_tokens, row.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert row.stream and row.status == "ok" and row.model == "mid" and row.ttft_ms is not None


async def test_async_client_plain_and_streamed(proxy: ProxyServer) -> None:
    async with openai.AsyncOpenAI(base_url=proxy.url, api_key="unused", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "async hello"}]
        )
        assert completion.choices[0].message.content == "You said: async hello"
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(parts) == "You said: async stream"


def test_models_list_and_retrieve(proxy: ProxyServer) -> None:
    client = sync_client(proxy)
    ids = [m.id for m in client.models.list()]
    assert ids[:4] == ["auto", "simple", "medium", "complex"]
    assert {"cheap", "mid", "big", "base"} <= set(ids)
    assert client.models.retrieve("big").owned_by == "fake"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_cost_row_prices_tokens_exactly(proxy: ProxyServer, ledger: MemoryLedger) -> None:
    from decimal import Decimal

    client = sync_client(proxy)
    before = len(ledger.rows)
    completion = client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "one two"}])
    assert completion.usage is not None
    row = ledger.wait_for(before + 1)[-1]
    p, c = completion.usage.prompt_tokens, completion.usage.completion_tokens
    assert row.cost_usd == (Decimal(p) * Decimal("1.00") + Decimal(c) * Decimal("2.00")) / Decimal(1_000_000)
    assert row.baseline_cost_usd == (Decimal(p) * Decimal("10.00") + Decimal(c) * Decimal("30.00")) / Decimal(1_000_000)
    assert row.requested_model == "cheap" and row.status == "ok" and row.http_status == 200


def test_health(proxy: ProxyServer) -> None:
    import httpx

    assert httpx.get(proxy.url.removesuffix("/v1") + "/health").json() == {"status": "ok"}
