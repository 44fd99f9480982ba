"""Streaming against the real server: no buffering, disconnects reach the provider, SSE as curl sees it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import pytest

from tests.conftest import MemoryLedger, ProxyServer
from tests.fakes.openai_provider import FakeOpenAI


def drip_request(proxy: ProxyServer) -> httpx.Request:
    body = {"model": "drip", "messages": [{"role": "user", "content": "go"}], "stream": True}
    return httpx.Request("POST", proxy.url + "/chat/completions", json=body)


def test_chunks_are_forwarded_as_they_arrive(proxy: ProxyServer) -> None:
    with httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        response = client.send(drip_request(proxy), stream=True)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-router-model"] == "drip"
        arrivals: list[float] = []
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.perf_counter() - started)
            if len(arrivals) == 12:
                break
        response.close()
    # the provider needs 4 s for its 200 chunks at 20 ms each: a buffering proxy would show nothing for 4 s
    assert arrivals[0] < 1.0
    assert arrivals[-1] - arrivals[1] >= 0.15, "chunks arrived together: something buffers"


def test_client_disconnect_closes_the_upstream_call(proxy: ProxyServer, fake: FakeOpenAI, ledger: MemoryLedger) -> None:
    before_disconnects = fake.disconnects
    before_rows = len(ledger.rows)
    with httpx.Client(timeout=10) as client:
        response = client.send(drip_request(proxy), stream=True)
        lines = response.iter_lines()
        while not next(lines).startswith("data: "):
            pass
        response.close()
    left = time.perf_counter()
    while fake.disconnects == before_disconnects and time.perf_counter() - left < 3:
        time.sleep(0.002)
    closed_after = time.perf_counter() - left
    assert fake.disconnects > before_disconnects, "the provider kept streaming to nobody"
    assert closed_after < 0.5  # bounded by the fake's 20 ms between writes, not by the stream's 4 s
    row = ledger.wait_for(before_rows + 1)[-1]
    assert row.status == "client_closed" and row.model == "drip"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_raw_sse_as_curl_sees_it(proxy: ProxyServer) -> None:
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hello curl"}], "stream": True})
    run = subprocess.run(
        ["curl", "-sN", "-D", "-", proxy.url + "/chat/completions", "-H", "content-type: application/json", "-d", body],
        capture_output=True,
        timeout=30,
        check=True,
    )
    head, _, payload = run.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"x-router-tier: simple" in head and b"content-type: text/event-stream" in head
    events = payload.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-2]]
    assert all(e.startswith(b"data: ") for e in events[:-1])
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "You said: hello curl"
    assert all("usage" not in c for c in chunks)
