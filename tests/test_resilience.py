"""Fault injection through the real proxy: retries, fallbacks, escalation, breakers, honest streams."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from proxy import config as configuration
from proxy.app import create_app
from tests.conftest import MemoryLedger, ProxyServer
from tests.fakes.openai_provider import FakeOpenAI

USER = [{"role": "user", "content": "hello there"}]


def config_text(url: str, models: dict[str, str], tiers: dict[str, list[str]], resilience: str) -> str:
    lines = "\n".join(
        f"  {name}: {{provider: fake, input: 1.00, output: 2.00, upstream: {upstream}, timeout: 0.5}}"
        for name, upstream in models.items()
    )
    return f"""
providers:
  fake: {{adapter: openai, base_url: {url}}}
models:
{lines}
  base: {{provider: fake, input: 10.00, output: 30.00, upstream: fake-base}}
tiers: {{simple: {tiers["simple"]}, medium: {tiers["medium"]}, complex: {tiers["complex"]}}}
baseline: base
router: {{classifier: rules}}
resilience: {resilience}
"""


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


class Harness:
    def __init__(self, proxy: ProxyServer, ledger: MemoryLedger, fake: FakeOpenAI) -> None:
        self.proxy, self.ledger, self.fake = proxy, ledger, fake
        self.client = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)

    def rows_for(self, request_id: str) -> list[object]:
        return [r for r in self.ledger.rows if r.id == request_id or r.id.startswith(request_id + ".")]


def harness(
    fake: FakeOpenAI, models: dict[str, str], tiers: dict[str, list[str]], resilience: str = "{}"
) -> Iterator[Harness]:
    ledger = MemoryLedger()
    config = configuration.parse(config_text(fake.url, models, tiers, resilience))
    with ProxyServer(create_app(config, env={}, ledger=ledger)) as proxy:
        yield Harness(proxy, ledger, fake)


@pytest.fixture
def falls_back(fake: FakeOpenAI, tag: str) -> Iterator[Harness]:
    yield from harness(
        fake,
        {
            "dead": "fail-500",
            "ok": "fake-ok",
            "hangs": "hang",
            "resets": "reset",
            "flaky": f"flaky-500-1-{tag}",
            "limited": f"flaky-429-1-{tag}",
            "cut0": "cut0",
            "hedge": "hedge",
            "empty": "empty",
            "strong": "fake-strong",
        },
        {"simple": ["dead", "ok"], "medium": ["hedge", "strong"], "complex": ["strong"]},
        "{retries: 1, backoff_base: 0.01, backoff_max: 0.05, breaker_failures: 1000}",
    )


def test_a_failing_model_falls_back_within_the_tier(falls_back: Harness) -> None:
    raw = falls_back.client.chat.completions.with_raw_response.create(model="simple", messages=USER)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content == "You said: hello there"
    assert raw.headers["x-router-model"] == "ok" and raw.headers["x-router-tier"] == "simple"
    trail = raw.headers["x-router-fallbacks"]
    assert "dead: retry after 502" in trail and "dead: 502 fake_500" in trail
    rows = falls_back.ledger.wait_for(3)
    request_row = next(r for r in rows if r.attempt == 0)
    attempts = sorted((r for r in rows if r.attempt), key=lambda r: r.attempt)
    assert request_row.model == "ok" and request_row.status == "ok"
    assert [(r.model, r.status, r.id) for r in attempts] == [
        ("dead", "error", request_row.id + ".1"),
        ("dead", "error", request_row.id + ".2"),
    ]
    assert all(r.cost_usd == 0 and r.baseline_cost_usd == 0 for r in attempts)


def test_a_flaky_model_is_retried_not_abandoned(falls_back: Harness) -> None:
    raw = falls_back.client.chat.completions.with_raw_response.create(model="flaky", messages=USER)  # type: ignore[arg-type]
    assert raw.headers["x-router-model"] == "flaky"
    assert "flaky: retry after 502" in raw.headers["x-router-fallbacks"]


def test_retry_after_is_honoured(falls_back: Harness) -> None:
    started = time.perf_counter()
    completion = falls_back.client.chat.completions.create(model="limited", messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "You said: hello there"
    assert time.perf_counter() - started >= 0.2  # the fake's retry-after, not our 10-50 ms backoff


@pytest.mark.parametrize("model", ["hangs", "resets"])
@pytest.mark.parametrize("stream", [False, True])
def test_hangs_and_resets_end_in_an_error_within_the_timeout(falls_back: Harness, model: str, stream: bool) -> None:
    started = time.perf_counter()
    response = httpx.post(
        falls_back.proxy.url + "/chat/completions", json={"model": model, "messages": USER, "stream": stream}
    )
    assert response.status_code in (502, 504)
    assert response.json()["error"]["code"] in ("timeout", "upstream_unreachable")
    assert time.perf_counter() - started < 3


def test_a_stream_that_dies_before_content_falls_back(fake: FakeOpenAI) -> None:
    for h in harness(
        fake,
        {"cut0": "cut0", "ok": "fake-ok"},
        {"simple": ["cut0", "ok"], "medium": ["ok"], "complex": ["ok"]},
        "{retries: 0}",
    ):
        raw = h.client.chat.completions.with_raw_response.create(model="simple", messages=USER, stream=True)  # type: ignore[arg-type]
        chunks = list(raw.parse())
        assert raw.headers["x-router-model"] == "ok" and "cut0" in raw.headers["x-router-fallbacks"]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "You said: hello there"
        roles = [c.choices[0].delta.role for c in chunks if c.choices[0].delta.role]
        assert roles == ["assistant"]  # the dead stream's opening chunk was held back, never sent


@pytest.mark.parametrize(("model", "reason"), [("hedge", "refusal"), ("empty", "empty")])
def test_low_confidence_answers_escalate_and_both_are_costed(fake: FakeOpenAI, model: str, reason: str) -> None:
    for h in harness(
        fake,
        {model: model, "strong": "fake-strong"},
        {"simple": [model], "medium": ["strong"], "complex": ["strong"]},
        "{retries: 0}",
    ):
        raw = h.client.chat.completions.with_raw_response.create(model="simple", messages=USER)  # type: ignore[arg-type]
        assert raw.parse().choices[0].message.content == "You said: hello there"
        assert raw.headers["x-router-model"] == "strong" and raw.headers["x-router-tier"] == "medium"
        assert f"{model}: escalated ({reason})" in raw.headers["x-router-fallbacks"]
        rows = h.ledger.wait_for(2)
        first = next(r for r in rows if r.attempt == 1)
        final = next(r for r in rows if r.attempt == 0)
        assert first.status == "escalated" and first.model == model and first.cost_usd and first.cost_usd > 0
        assert first.baseline_cost_usd == 0  # the baseline is priced once, on the answer
        assert final.model == "strong" and final.cost_usd and final.baseline_cost_usd


def test_escalation_is_off_when_configured(fake: FakeOpenAI) -> None:
    for h in harness(
        fake,
        {"hedge": "hedge", "strong": "fake-strong"},
        {"simple": ["hedge"], "medium": ["strong"], "complex": ["strong"]},
        "{escalate: false}",
    ):
        raw = h.client.chat.completions.with_raw_response.create(model="simple", messages=USER)  # type: ignore[arg-type]
        assert raw.headers["x-router-model"] == "hedge" and "x-router-fallbacks" not in raw.headers


def test_the_breaker_skips_a_dead_deployment_then_probes_it(fake: FakeOpenAI) -> None:
    for h in harness(
        fake,
        {"dead": "fail-503", "ok": "fake-ok"},
        {"simple": ["dead", "ok"], "medium": ["ok"], "complex": ["ok"]},
        "{retries: 0, breaker_failures: 2, breaker_cooldown: 0.5}",
    ):
        calls_to_dead = lambda: sum(1 for _, _, b in fake.requests if b.get("model") == "fail-503")  # noqa: E731
        before = calls_to_dead()
        for _ in range(2):
            h.client.chat.completions.create(model="simple", messages=USER)  # type: ignore[arg-type]
        assert calls_to_dead() == before + 2
        raw = h.client.chat.completions.with_raw_response.create(model="simple", messages=USER)  # type: ignore[arg-type]
        assert "dead: circuit open" in raw.headers["x-router-fallbacks"] and calls_to_dead() == before + 2
        time.sleep(0.6)
        h.client.chat.completions.create(model="simple", messages=USER)  # type: ignore[arg-type]
        assert calls_to_dead() == before + 3  # one half-open probe


def test_every_request_gets_an_answer_or_a_proper_error_under_concurrency(falls_back: Harness) -> None:
    models = ["simple", "ok", "dead", "hangs", "resets", "cut0", "flaky"] * 12

    async def one(client: openai.AsyncOpenAI, model: str, stream: bool) -> str:
        try:
            if stream:
                chunks = [
                    c async for c in await client.chat.completions.create(model=model, messages=USER, stream=True)
                ]  # type: ignore[arg-type]
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            else:
                completion = await client.chat.completions.create(model=model, messages=USER)  # type: ignore[arg-type]
                text = completion.choices[0].message.content or ""
            return "answer" if text == "You said: hello there" else f"wrong answer {text!r}"
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            return "error" if exc.status_code >= 400 and {"message", "type", "code"} <= set(body) else f"bad {exc}"

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=falls_back.proxy.url, api_key="x", max_retries=0, timeout=10) as c:
            return await asyncio.gather(*(one(c, m, i % 2 == 0) for i, m in enumerate(models)))

    outcomes = asyncio.run(run())
    assert all(o in ("answer", "error") for o in outcomes), [o for o in outcomes if o not in ("answer", "error")]
    answered = {m for m, o in zip(models, outcomes, strict=True) if o == "answer"}
    assert {"simple", "ok"} <= answered and not {"dead", "hangs", "resets"} & answered
    rows = falls_back.ledger.wait_for(len(models) + 1)
    assert len([r for r in rows if r.attempt == 0]) == len(models)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream-before-first-token"])
def test_a_client_that_leaves_before_the_answer_cancels_the_provider_call(fake: FakeOpenAI, stream: bool) -> None:
    errors = Collect(logging.ERROR)
    for name in ("uvicorn.error", "smr", "litestar"):
        logging.getLogger(name).addHandler(errors)
    for h in harness(
        fake, {"hangs": "hang"}, {"simple": ["hangs"], "medium": ["hangs"], "complex": ["hangs"]}, "{retries: 0}"
    ):
        config = h.proxy.server.config.app.state.services.config
        assert config.models["hangs"].timeout == 0.5
        before = fake.disconnects
        body = {"model": "hangs", "messages": USER, "stream": stream}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(h.proxy.url + "/chat/completions", json=body, timeout=0.15)
        left = time.perf_counter()
        while fake.disconnects == before and time.perf_counter() - left < 0.3:
            time.sleep(0.002)
        assert fake.disconnects > before, "the provider call outlived the client"
        assert time.perf_counter() - left < 0.3  # well before the model's own 0.5 s timeout
        row = h.ledger.wait_for(1)[-1]
        assert row.status == "client_closed" and row.http_status == 499 and row.stream is stream
        assert not errors.records, "a departure is not a server error"
    for name in ("uvicorn.error", "smr", "litestar"):
        logging.getLogger(name).removeHandler(errors)


class Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
