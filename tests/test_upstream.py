"""The upstream layer on both of its connection pools, against the fake provider on 127.0.0.1.

Whatever the pool, the rest of the proxy sees the same `Response`/`Stream` and the same errors.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.base import HttpRequest
from proxy.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from proxy.upstream import MAX_BODY_BYTES, Upstream
from tests.fakes.openai_provider import FakeOpenAI

POOLS = ["aiohttp", "httpx"]


@pytest.fixture
def provider(fake: FakeOpenAI) -> FakeOpenAI:
    return fake  # the session's fake provider, served from its own thread


@pytest.fixture(params=POOLS)
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    client = Upstream(request.param)
    yield client
    await client.aclose()


def chat(fake_url: str, model: str, *, stream: bool = False) -> HttpRequest:
    body = {"model": model, "messages": [{"role": "user", "content": "one two three"}], "stream": stream}
    return HttpRequest(
        "POST", fake_url + "/chat/completions", {"content-type": "application/json"}, json.dumps(body).encode()
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_plain_answer_and_error_status(provider: FakeOpenAI, upstream: Upstream) -> None:
    ok = await upstream.send(chat(provider.url, "fake-x"), 5)
    assert ok.status == 200 and ok.headers["content-type"] == "application/json"
    assert json.loads(ok.body)["choices"][0]["message"]["content"] == "You said: one two three"
    failed = await upstream.send(chat(provider.url, "fail-429"), 5)
    assert failed.status == 429 and failed.headers["retry-after"] == "7"
    assert json.loads(failed.body)["error"]["type"]


async def test_stream_arrives_whole_and_the_connection_is_reused(provider: FakeOpenAI, upstream: Upstream) -> None:
    for _ in range(3):
        stream = await upstream.open_stream(chat(provider.url, "fake-x", stream=True), 5)
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
        data = b"".join([c async for c in stream.chunks()])
        await stream.aclose()
        assert data.endswith(b"data: [DONE]\n\n") and data.count(b"data: ") >= 5
    error = await upstream.open_stream(chat(provider.url, "fail-500", stream=True), 5)
    assert error.status == 500 and json.loads(await error.read())["error"]
    await error.aclose()


async def test_transport_failures_become_the_proxy_errors(provider: FakeOpenAI, upstream: Upstream) -> None:
    with pytest.raises(UpstreamUnreachable, match=r"cannot reach 127\.0\.0\.1"):
        await upstream.send(chat(f"http://127.0.0.1:{free_port()}/v1", "fake-x"), 5)
    with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.3 s"):
        await upstream.send(chat(provider.url, "hang"), 0.3)
    with pytest.raises(UpstreamTimeout):
        await upstream.open_stream(chat(provider.url, "hang", stream=True), 0.3)
    with pytest.raises(UpstreamUnreachable):
        await upstream.send(chat(provider.url, "reset"), 5)
    stream = await upstream.open_stream(chat(provider.url, "cut", stream=True), 5)
    seen: list[bytes] = []
    with pytest.raises(UpstreamUnreachable):
        async for chunk in stream.chunks():
            seen.append(chunk)
    await stream.aclose()
    assert b"".join(seen).count(b"data: ") >= 1  # what came before the cut was handed on


async def test_a_stream_closed_early_frees_the_provider(provider: FakeOpenAI, upstream: Upstream) -> None:
    before = provider.disconnects
    stream = await upstream.open_stream(chat(provider.url, "drip", stream=True), 5)
    chunks = stream.chunks()
    await anext(chunks)
    await chunks.aclose()
    await stream.aclose()
    for _ in range(100):
        if provider.disconnects > before:
            break
        await asyncio.sleep(0.01)
    assert provider.disconnects > before, "the provider kept streaming to a closed response"


async def test_a_compressed_stream_arrives_decoded() -> None:
    sse = b'data: {"choices":[]}\n\ndata: [DONE]\n\n'

    def provider(request: httpx.Request) -> httpx.Response:
        assert "gzip" in request.headers.get("accept-encoding", "")  # httpx offers it by default
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=gzip.compress(sse))

    upstream = Upstream(httpx.MockTransport(provider))
    try:
        stream = await upstream.open_stream(chat("http://provider.test/v1", "x", stream=True), 5)
        assert b"".join([c async for c in stream.chunks()]) == sse
        await stream.aclose()
    finally:
        await upstream.aclose()


@pytest.mark.parametrize("pool", POOLS)
async def test_an_http_proxy_in_the_environment_is_used(
    provider: FakeOpenAI, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake answers absolute-form request lines too, so it can stand in for a forward proxy;
    # provider.invalid does not resolve, so an answer proves the request went through the proxy.
    monkeypatch.setenv("HTTP_PROXY", provider.url.removesuffix("/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream = Upstream(pool)  # type: ignore[arg-type]
    before = len(provider.requests)  # the fake is shared: other tests' late requests may land too
    try:
        answer = await upstream.send(chat("http://provider.invalid/v1", "fake-x"), 5)
        assert answer.status == 200
        paths = [path for path, _, _ in provider.requests[before:]]
        assert "http://provider.invalid/v1/chat/completions" in paths
    finally:
        await upstream.aclose()


DELTA = b"event: content_block_delta\ndata: "
# (adapter, streamed?, what the provider sends): valid JSON of a shape the adapter does not expect
ODD_ANSWERS = [
    ("gemini", False, b'{"candidates": "none today"}'),
    ("gemini", False, b'{"candidates": [{"content": {"parts": []}}], "usageMetadata": {"promptTokenCount": "x"}}'),
    ("gemini", True, b'data: {"candidates": [5]}\n\n'),
    # one event of 17 MiB: well-formed, but over what a chunk can be (adapters.sse.MAX_EVENT_BYTES)
    ("gemini", True, b'data: {"candidates": [], "pad": "' + b"x" * (17 * 1024 * 1024) + b'"}\n\n'),
    ("anthropic", True, DELTA + b'{"type": "content_block_delta", "index": 0, "delta": 5}\n\n'),
    ("anthropic", True, DELTA + b'{"type": "content_block_delta", "delta": {"type": "text_delta", "text": 7}}\n\n'),
]


@pytest.mark.parametrize(("name", "streamed", "answer"), ODD_ANSWERS)
async def test_an_answer_of_the_wrong_shape_is_a_bad_upstream_response(
    name: str, streamed: bool, answer: bytes
) -> None:
    import importlib

    from adapters.base import Target
    from proxy.errors import UpstreamError
    from proxy.relay import Deployment, complete, open_stream, relay

    adapter = importlib.import_module(f"adapters.{name}")
    headers = {"content-type": "text/event-stream" if streamed else "application/json"}
    upstream = Upstream(httpx.MockTransport(lambda request: httpx.Response(200, headers=headers, content=answer)))
    target = Target(model="m", base_url="http://provider.test", api_key="k")
    deployment = Deployment(name="m", provider=name, adapter=name, target=target, timeout=5)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        with pytest.raises(UpstreamError) as raised:
            if streamed:
                stream = await open_stream(upstream, adapter, deployment, body)
                try:
                    state = adapter.new_stream()
                    pieces = relay(stream, adapter, state, deployment, wants_usage=False, on_content=lambda: None)
                    async for _ in pieces:
                        pass
                finally:
                    await stream.aclose()
            else:
                await complete(upstream, adapter, deployment, body)
        assert raised.value.code == "bad_upstream_response" and "malformed answer" in str(raised.value)
    finally:
        await upstream.aclose()


@pytest.mark.parametrize("model", ["huge", "huge-cl"])  # chunked, and with a content-length
async def test_an_answer_over_the_body_limit_is_a_502_and_the_pool_goes_on(
    provider: FakeOpenAI, upstream: Upstream, model: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await upstream.send(chat(provider.url, model), 10)
    error = caught.value
    assert (error.status, error.code) == (502, "bad_upstream_response")
    assert f"over {MAX_BODY_BYTES >> 20} MiB" in error.message and "127.0.0.1" in error.message
    ok = await upstream.send(chat(provider.url, "fake-x"), 5)
    assert ok.status == 200 and json.loads(ok.body)["choices"]


async def test_a_stream_error_body_over_the_limit_is_a_502(provider: FakeOpenAI, upstream: Upstream) -> None:
    stream = await upstream.open_stream(chat(provider.url, "huge", stream=True), 10)
    try:
        assert stream.status == 500
        with pytest.raises(UpstreamError) as caught:
            await stream.read()
    finally:
        await stream.aclose()
    assert caught.value.code == "bad_upstream_response"
