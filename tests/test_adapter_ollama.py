"""The Ollama adapter and the upstream layer that drives the `ollama` library: recorded NDJSON
fixtures, and end to end through the proxy to a fake Ollama server with the OpenAI SDK."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from adapters import ollama
from adapters.base import BadPayload, StreamFailure, Target
from adapters.sse import ServerSentEvent
from proxy.errors import UpstreamUnreachable, from_provider
from proxy.upstream import Upstream
from tests.conftest import sdk_client
from tests.fakes.ollama_provider import FakeOllama
from tests.fakes.wire import FIXTURES, Threaded

DIR = FIXTURES / "ollama"
TARGET = Target(model="llama3.2", base_url="http://localhost:11434")
SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
WEATHER: Any = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}}


def lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DIR / name).read_text().splitlines()]


def run(events: list[Any]) -> tuple[ollama.OllamaStream, list[dict[str, Any]]]:
    state = ollama.new_stream()
    chunks = [chunk for event in events for chunk in ollama.reduce(state, event)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return state, chunks


# --- requests ------------------------------------------------------------------------------------


def test_request_is_the_api_chat_body_and_leaves_the_input_alone() -> None:
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        ],
        "max_completion_tokens": 128,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop": "END",
        "seed": 9,
        "tools": [WEATHER],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }
    before = copy.deepcopy(body)
    request = ollama.build_request(body, TARGET, stream=True)
    assert body == before
    assert request.url == "http://localhost:11434/api/chat" and request.notes == ()
    assert "authorization" not in request.headers
    out = json.loads(request.body)
    assert out == {
        "model": "llama3.2",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "Paris"}}}],
            },
            {"role": "tool", "content": "18C", "tool_name": "get_weather"},
        ],
        "options": {"temperature": 0.2, "top_p": 0.5, "seed": 9, "num_predict": 128, "stop": ["END"]},
        "format": "json",
        "tools": [WEATHER],
    }


def test_request_maps_json_schema_and_reports_what_ollama_cannot_honour() -> None:
    request = ollama.build_request(
        {
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
            "tools": [WEATHER],
            "tool_choice": "required",
            "logprobs": True,
        },
        Target(model="m", base_url="http://h:1/", api_key="k"),
        stream=False,
    )
    out = json.loads(request.body)
    assert out["format"] == SCHEMA and out["stream"] is False and "images" not in out["messages"][0]
    assert request.headers["authorization"] == "Bearer k"
    assert request.notes == (
        "messages[0].content[0] ('image_url' other than a base64 data URL unsupported, dropped)",
        "tool_choice (ollama cannot force a tool call, dropped)",
        "logprobs (unsupported, dropped)",
    )
    none = ollama.build_request({"messages": [], "tools": [WEATHER], "tool_choice": "none"}, TARGET, stream=False)
    assert "tools" not in json.loads(none.body) and none.notes == ()


# --- answers -------------------------------------------------------------------------------------


def test_plain_and_tool_replies() -> None:
    text = ollama.parse_reply((DIR / "text.json").read_bytes())
    completion = ChatCompletion.model_validate_json(text.body)
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        26,
        10,
    )
    assert completion.created == 1749564131
    tools = ChatCompletion.model_validate_json(ollama.parse_reply((DIR / "tools.json").read_bytes()).body)
    assert tools.choices[0].finish_reason == "tool_calls"
    (call,) = tools.choices[0].message.tool_calls or []
    assert call.id.startswith("call_") and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}  # type: ignore[union-attr]
    with pytest.raises(BadPayload):
        ollama.parse_reply(b"not json")


@pytest.mark.parametrize(
    ("name", "status", "answer", "code"),
    [
        ("not_found", 404, 502, "upstream_not_found"),
        ("bad_request", 400, 400, None),
        ("prompt_too_long", 400, 400, "context_length_exceeded"),
    ],
)
def test_errors_map_to_openai_statuses(name: str, status: int, answer: int, code: str | None) -> None:
    failure = ollama.parse_error(status, {}, (DIR / f"error_{name}.json").read_bytes())
    error = from_provider(failure, provider="ollama")
    assert (error.status, error.code) == (answer, code)
    assert "{" not in failure.message


# --- streams -------------------------------------------------------------------------------------


def test_text_stream_lines_become_chunks_then_finish_then_usage() -> None:
    state, chunks = run(lines("text.ndjson"))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hello"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello! How can I help you today? ☀️"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, None, "stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 36
    assert len({c["id"] for c in chunks}) == 1 and state.done and state.content_chars == len(text)


def test_tool_stream_numbers_calls_and_ends_with_tool_calls() -> None:
    state, chunks = run(lines("tools.ndjson"))
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [c["index"] for c in calls] == [0, 1]
    assert len({c["id"] for c in calls}) == 2
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"location": "Paris, France"},
        {"location": "Tokyo, Japan"},
    ]
    assert state.finish_reason == "tool_calls" and state.content_chars == sum(
        len(c["function"]["arguments"]) for c in calls
    )


def test_error_line_fails_the_stream_and_sse_wrapped_lines_are_read_too() -> None:
    state = ollama.new_stream()
    with pytest.raises(StreamFailure) as caught:
        for line in lines("stream_error.ndjson"):
            ollama.reduce(state, line)
    assert "unexpected EOF" in caught.value.failure.message
    as_sse = [ServerSentEvent(line) for line in (DIR / "text.ndjson").read_text().splitlines()]
    assert run(as_sse)[1] == run(lines("text.ndjson"))[1]


# --- the upstream layer against a real server ----------------------------------------------------


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOllama]:
    with Threaded(FakeOllama()) as fake:
        yield fake


async def test_upstream_drives_the_ollama_library(provider: FakeOllama) -> None:
    upstream = Upstream()
    try:
        target = Target(model="llama-text", base_url=provider.url)
        body = {"messages": [{"role": "user", "content": "Hi"}]}
        response = await upstream.send_ollama(ollama.build_request(body, target, stream=False), 5)
        assert response.status == 200 and json.loads(response.body)["message"]["content"].startswith("Hello!")
        stream = await upstream.open_ollama(ollama.build_request(body, target, stream=True), 5)
        got = [line async for line in stream.events()]
        await stream.aclose()
        assert stream.status == 200 and [g["done"] for g in got] == [False, False, False, True]
        missing = Target(model="llama-error-not_found", base_url=provider.url)
        failed = await upstream.open_ollama(ollama.build_request(body, missing, stream=True), 5)
        assert failed.status == 404 and b"not found" in await failed.read()
        broken = Target(model="llama-stream-error", base_url=provider.url)
        stream = await upstream.open_ollama(ollama.build_request(body, broken, stream=True), 5)
        got = [line async for line in stream.events()]
        await stream.aclose()
        assert got[-1] == {"error": "an error was encountered while running the model: unexpected EOF"}
        nowhere = Target(model="m", base_url="http://127.0.0.1:9")
        with pytest.raises(UpstreamUnreachable):
            await upstream.send_ollama(ollama.build_request(body, nowhere, stream=False), 5)
    finally:
        await upstream.aclose()


# --- end to end ----------------------------------------------------------------------------------

CONFIG = """
providers:
  local: {{adapter: ollama, base_url: "{url}"}}
models:
  llama-text: {{provider: local, input: 0, output: 0}}
  llama-tools: {{provider: local, input: 0, output: 0}}
  llama-stream-error: {{provider: local, input: 0, output: 0}}
  llama-error-not-found: {{provider: local, input: 0, output: 0, upstream: llama-error-not_found}}
tiers: {{simple: [llama-text], medium: [llama-text], complex: [llama-text]}}
baseline: llama-text
resilience: {{retries: 0, breaker_failures: 1000}}  # these tests are about translation, one call each
"""


@pytest.fixture(scope="module")
def client(provider: FakeOllama) -> Iterator[openai.OpenAI]:
    with sdk_client(CONFIG.format(url=provider.url), {}) as sdk:
        yield sdk


def test_sdk_plain_and_streamed_text(client: openai.OpenAI, provider: FakeOllama) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="llama-text", messages=[{"role": "user", "content": "Hi"}], max_tokens=20, logit_bias={"1": 1}
    )
    assert raw.headers["x-router-dropped-params"] == "logit_bias (unsupported, dropped)"
    assert raw.parse().choices[0].message.content == "Hello! How can I help you today?"
    method, path, _, body = provider.requests[-1]
    assert (method, path, body["options"], body["stream"]) == ("POST", "/api/chat", {"num_predict": 20}, False)
    stream = client.chat.completions.create(
        model="llama-text",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello! How can I help you today? ☀️"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 26


def test_sdk_tool_round_trip_plain_and_streamed(client: openai.OpenAI, provider: FakeOllama) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="llama-tools", messages=messages, tools=[WEATHER])
    call = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    with client.chat.completions.stream(model="llama-tools", messages=messages, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"location": "Paris, France"},
        {"location": "Tokyo, Japan"},
    ]
    sent = provider.requests[-1][3]["messages"]
    assert sent[1]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "18C", "tool_name": "get_weather"}


def test_sdk_sees_openai_errors(client: openai.OpenAI) -> None:
    hi: Any = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.APIStatusError) as missing:
        client.chat.completions.create(model="llama-error-not-found", messages=hi)
    assert missing.value.status_code == 502 and missing.value.code == "upstream_not_found"
    with pytest.raises(openai.APIStatusError) as missing_stream:
        client.chat.completions.create(model="llama-error-not-found", messages=hi, stream=True)
    assert missing_stream.value.status_code == 502
    with pytest.raises(openai.APIError, match="unexpected EOF"):
        list(client.chat.completions.create(model="llama-stream-error", messages=hi, stream=True))
