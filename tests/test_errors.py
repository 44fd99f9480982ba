"""Bad input and provider failures become OpenAI-shaped errors with the right status; never a 500."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from proxy import config as configuration
from proxy.app import create_app
from tests.conftest import MemoryLedger, ProxyServer, fake_config
from tests.fakes.openai_provider import FakeOpenAI


def post(proxy: ProxyServer, body: bytes | dict[str, Any], **kwargs: Any) -> httpx.Response:
    url = proxy.url + "/chat/completions"
    if isinstance(body, dict):
        return httpx.post(url, json=body, timeout=10, **kwargs)
    return httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=10, **kwargs)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return error


USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'"just a string"', None),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}",
            None,
        ),
        ({"messages": USER}, "model"),
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": 7, "messages": USER}, "model"),
        ({"model": "auto", "messages": "hi"}, "messages"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "auto", "messages": [{"content": "x"}]}, None),
        ({"model": "auto", "messages": USER, "stream": "yes"}, "stream"),
        ({"model": "auto", "messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"model": "auto", "messages": USER, "tools": "weather"}, "tools"),
        ({"model": "auto", "messages": USER, "tools": [5]}, "tools[0]"),
        ({"model": "auto", "messages": [*USER, {"role": "assistant", "tool_calls": "f"}]}, "messages[1].tool_calls"),
    ],
)
def test_malformed_requests_are_400(proxy: ProxyServer, body: Any, param: str | None) -> None:
    error = assert_openai_error(post(proxy, body), 400)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


def test_malformed_requests_still_get_a_row(proxy: ProxyServer, ledger: MemoryLedger) -> None:
    before = len(ledger.rows)
    post(proxy, b"{oops")
    row = ledger.wait_for(before + 1)[-1]
    assert row.status == "error" and row.http_status == 400 and "invalid_json" in (row.error or "")


def test_unknown_model_is_404_model_not_found(proxy: ProxyServer) -> None:
    error = assert_openai_error(post(proxy, {"model": "gpt-9", "messages": USER}), 404, "model_not_found")
    assert error["param"] == "model"
    client = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=USER)  # type: ignore[arg-type]


def test_body_over_the_limit_is_413_with_a_row(proxy: ProxyServer, ledger: MemoryLedger) -> None:
    before = len(ledger.rows)
    big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 200_000}]}
    assert_openai_error(post(proxy, big), 413, "request_too_large")  # refused on its content-length

    def chunked() -> Iterator[bytes]:  # no content-length: refused once the bytes read pass the limit
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 10_000
        yield b'"}]}'

    assert_openai_error(post(proxy, chunked()), 413, "request_too_large")
    rows = ledger.wait_for(before + 2)[before:]
    assert [(r.status, r.http_status) for r in rows] == [("error", 413)] * 2


def test_a_client_that_leaves_while_sending_its_body_gets_a_499_row(proxy: ProxyServer, ledger: MemoryLedger) -> None:
    before = len(ledger.rows)
    host, port = proxy.url.removeprefix("http://").removesuffix("/v1").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"model": "auto", "messages"'
        )
        time.sleep(0.2)
    row = ledger.wait_for(before + 1)[-1]
    assert (row.status, row.http_status) == ("client_closed", 499)


def test_unknown_route_and_method(proxy: ProxyServer) -> None:
    base = proxy.url.removesuffix("/v1")
    assert_openai_error(httpx.get(base + "/v1/nothing"), 404)
    for method in ("GET", "PUT", "DELETE"):
        wrong = httpx.request(method, proxy.url + "/chat/completions")
        assert_openai_error(wrong, 405, "method_not_allowed")
        assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("model", "status", "code", "sdk_error"),
    [
        ("fail-400", 400, "fake_400", openai.BadRequestError),
        ("fail-401", 502, "fake_401", openai.InternalServerError),
        ("fail-404", 502, "fake_404", openai.InternalServerError),
        ("fail-413", 413, "fake_413", openai.APIStatusError),
        ("fail-429", 429, "fake_429", openai.RateLimitError),
        ("fail-500", 502, "fake_500", openai.InternalServerError),
        ("fail-503", 503, "fake_503", openai.InternalServerError),
        ("fail-529", 503, "fake_529", openai.InternalServerError),
        ("garbage", 502, "bad_upstream_response", openai.InternalServerError),
        ("deep", 502, "bad_upstream_response", openai.InternalServerError),
        ("huge", 502, "bad_upstream_response", openai.InternalServerError),  # 65 MiB, over upstream.MAX_BODY_BYTES
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_provider_errors_are_mapped(
    proxy: ProxyServer, model: str, status: int, code: str, sdk_error: type[Exception], stream: bool
) -> None:
    response = post(proxy, {"model": model, "messages": USER, "stream": stream})
    # streamed or not, a failure before the first content byte is a proper error status, not a 200;
    # HTML where SSE was due reads as a stream that ended before it was complete
    if model == "garbage" and stream:
        code = "stream_interrupted"
    error = assert_openai_error(response, status, code)
    if model == "fail-429":
        assert response.headers["retry-after"] == "7"
        assert error["type"] == "rate_limit_error"
    if model == "fail-401":
        assert "credentials" in error["message"]
    client = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
    with pytest.raises(sdk_error):
        client.chat.completions.create(model=model, messages=USER, stream=stream)  # type: ignore[call-overload]


def test_cut_stream_ends_with_an_error_event_not_a_done(proxy: ProxyServer, ledger: MemoryLedger) -> None:
    client = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
    before = len(ledger.rows)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model="cut", messages=[{"role": "user", "content": "a b c d e"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert received  # content had started
    row = ledger.wait_for(before + 1)[-1]
    assert row.status == "error" and row.model == "cut"


def test_content_before_a_mid_stream_error_still_reaches_the_client(proxy: ProxyServer) -> None:
    client = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
    received: list[str] = []
    with pytest.raises(openai.APIError, match="overloaded mid-stream"):
        for chunk in client.chat.completions.create(model="errmid", messages=USER, stream=True):  # type: ignore[arg-type]
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "partial"


def test_unreachable_and_hanging_providers(fake: FakeOpenAI) -> None:
    text = fake_config(fake.url, timeout="0.5").replace(
        "  base: {provider: fake",
        "  dead: {provider: nowhere, input: 1, output: 1}\n  base: {provider: fake",
    )
    text = text.replace("providers:\n", "providers:\n  nowhere: {adapter: openai, base_url: http://127.0.0.1:9/v1}\n")
    app = create_app(configuration.parse(text), env={"FAKE_KEY": "k"}, ledger=MemoryLedger())
    with ProxyServer(app) as proxy:
        for stream in (False, True):
            assert_openai_error(
                post(proxy, {"model": "dead", "messages": USER, "stream": stream}), 502, "upstream_unreachable"
            )
            assert_openai_error(post(proxy, {"model": "hang", "messages": USER, "stream": stream}), 504, "timeout")


def test_missing_provider_key_is_explained(fake: FakeOpenAI) -> None:
    app = create_app(configuration.parse(fake_config(fake.url)), env={}, ledger=MemoryLedger())
    with ProxyServer(app) as proxy:
        error = assert_openai_error(post(proxy, {"model": "cheap", "messages": USER}), 502, "provider_key_missing")
        assert "FAKE_KEY" in error["message"]
