"""The Anthropic adapter: recorded wire-format fixtures, byte-split streams, and end to end
through the proxy to a fake Anthropic server with the OpenAI SDK as the client."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from adapters import anthropic
from adapters.base import BadPayload, StreamFailure, Target
from adapters.sse import ServerSentEvent
from proxy.errors import from_provider
from tests.conftest import sdk_client
from tests.fakes.anthropic_provider import KEY, FakeAnthropic
from tests.fakes.wire import FIXTURES, Threaded, sse_events_split_everywhere

DIR = FIXTURES / "anthropic"
TARGET = Target(model="claude-sonnet-4-5", base_url="https://api.anthropic.com", api_key="sk-ant-test")
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
PNG = "data:image/png;base64,iVBORw0KGgo="


def sent(body: dict[str, Any], *, stream: bool = False) -> tuple[dict[str, Any], tuple[str, ...]]:
    request = anthropic.build_request(body, TARGET, stream=stream)
    return json.loads(request.body), request.notes


def run(events: list[ServerSentEvent]) -> tuple[anthropic.AnthropicStream, list[dict[str, Any]]]:
    state = anthropic.new_stream()
    chunks = [chunk for event in events for chunk in anthropic.reduce(state, event)]
    return state, chunks


def assemble(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, dict[str, str]], str | None]:
    """Text, tool calls by index and finish reason, accumulated the way OpenAI clients do."""
    text, finish = "", None
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.get("id") or ""
                slot["name"] += (call.get("function") or {}).get("name") or ""
                slot["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return text, calls, finish


# --- requests ------------------------------------------------------------------------------------


def test_request_translates_a_multi_turn_tool_conversation_without_touching_the_input() -> None:
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {"role": "user", "content": "Thanks. Tomorrow?"},
        ],
        "max_completion_tokens": 300,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": "END",
        "tools": [WEATHER],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "u-42",
    }
    before = copy.deepcopy(body)
    request = anthropic.build_request(body, TARGET, stream=True)
    assert body == before
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.notes == ()
    out = json.loads(request.body)
    assert out["model"] == "claude-sonnet-4-5" and out["stream"] is True
    assert out["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric units."}]
    assert out["max_tokens"] == 300 and out["temperature"] == 0.3 and out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "u-42"}
    assert out["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER["function"]["parameters"],
            "description": "Current weather in a city",
        }
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Weather here?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}},
    ]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}}
    ]
    # the tool result and the next user words form one user turn, the result first
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"},
        {"type": "text", "text": "Thanks. Tomorrow?"},
    ]


def test_request_defaults_max_tokens_and_reports_what_it_cannot_honour() -> None:
    out, notes = sent(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 1.7,
            "seed": 7,
            "response_format": {"type": "json_object"},
            "logit_bias": {"50256": -100},
            "n": 1,
            "stream_options": {"include_usage": True},
            "store": True,
        }
    )
    assert out["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS == 4096
    assert out["temperature"] == 1.0
    assert notes == (
        "max_tokens (required by anthropic, defaulted to 4096)",
        "temperature (clamped to 1)",
        "seed (unsupported, dropped)",
        "response_format (unsupported, dropped)",
        "logit_bias (unsupported, dropped)",
    )


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_maps_to_anthropic(choice: Any, expected: dict[str, Any]) -> None:
    out, notes = sent(
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "tools": [WEATHER], "tool_choice": choice}
    )
    assert out["tool_choice"] == expected
    assert notes == ()


# --- answers -------------------------------------------------------------------------------------


def test_plain_reply_counts_cache_tokens_in_the_prompt() -> None:
    reply = anthropic.parse_reply((DIR / "text.json").read_bytes())
    completion = ChatCompletion.model_validate_json(reply.body)
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 12 + 100 + 2048
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 2048
    assert completion.usage.total_tokens == 2160 + 12
    assert reply.usage is not None and reply.usage.cached_tokens == 2048
    assert reply.finish_reason == "stop" and reply.content == "Hello! How can I help you today?"


def test_tool_use_reply_becomes_tool_calls() -> None:
    reply = anthropic.parse_reply((DIR / "tools.json").read_bytes())
    body = json.loads(reply.body)
    ChatCompletion.model_validate(body)
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] == "I'll check the weather in Paris for you."
    assert message["reasoning_content"].startswith("The user wants the weather")
    (call,) = message["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris, France", "unit": "celsius"}


def test_a_reply_that_is_not_a_message_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload):
        anthropic.parse_reply(b"<html>oops</html>")
    with pytest.raises(BadPayload):
        anthropic.parse_reply(b'{"type":"completion"}')


@pytest.mark.parametrize(
    ("name", "status", "answer", "code", "err_type"),
    [
        ("overloaded", 529, 503, "upstream_overloaded", "api_error"),
        ("rate_limit", 429, 429, "rate_limit_exceeded", "rate_limit_error"),
        ("prompt_too_long", 400, 400, "context_length_exceeded", "invalid_request_error"),
        ("auth", 401, 502, "upstream_auth_error", "api_error"),
        ("bad_request", 400, 400, None, "invalid_request_error"),
    ],
)
def test_errors_map_to_openai_statuses(name: str, status: int, answer: int, code: str | None, err_type: str) -> None:
    headers = {"retry-after": "12"} if status == 429 else {}
    failure = anthropic.parse_error(status, headers, (DIR / f"error_{name}.json").read_bytes())
    error = from_provider(failure, provider="anthropic")
    assert (error.status, error.code, error.type) == (answer, code, err_type)
    assert failure.message and "{" not in failure.message
    assert error.headers == ({"retry-after": "12"} if status == 429 else {})


# --- streams -------------------------------------------------------------------------------------


def test_text_stream_split_at_every_byte_gives_openai_chunks() -> None:
    events = sse_events_split_everywhere((DIR / "text.sse").read_bytes())
    state, chunks = run(events)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert {c["id"] for c in chunks} == {"msg_01XFDUDYJgAACzvnptvVoYEL"}
    text, calls, finish = assemble(chunks)
    assert text == "Hello! How can I help you today? ☀️" and calls == {} and finish == "stop"
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["prompt_tokens"] == 2160
    assert last["usage"]["completion_tokens"] == 12
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 2048
    assert state.done and state.finish_reason == "stop" and state.content_chars == len(text)


def test_tool_stream_streams_calls_with_openai_indexes_ids_and_arguments() -> None:
    state, chunks = run(sse_events_split_everywhere((DIR / "tools.sse").read_bytes()))
    text, calls, finish = assemble(chunks)
    assert text == "Okay, let's check the weather in Paris and Tokyo:"
    assert finish == "tool_calls"
    assert calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and calls[1]["id"] == "toolu_01Kq8bS5UgYDnMxg9pCzHZFq"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris, France"}
    assert json.loads(calls[1]["arguments"]) == {"location": "Tokyo, Japan"}
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_weather"]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"])
    assert reasoning == "The user wants the weather in two cities."
    assert state.content_chars == len(text) + sum(len(c["arguments"]) for c in calls.values())
    assert state.usage is not None and state.usage.completion_tokens == 89 and state.usage.prompt_tokens == 472


def test_error_event_inside_a_stream_fails_it_as_overloaded() -> None:
    events = sse_events_split_everywhere((DIR / "stream_error.sse").read_bytes())
    state = anthropic.new_stream()
    with pytest.raises(StreamFailure) as caught:
        for event in events:
            anthropic.reduce(state, event)
    assert caught.value.failure.status == 529
    assert from_provider(caught.value.failure, provider="anthropic").status == 503


def test_unknown_events_and_deltas_are_skipped() -> None:
    state = anthropic.new_stream()
    assert anthropic.reduce(state, ServerSentEvent('{"type": "ping"}', event="ping")) == []
    assert anthropic.reduce(state, ServerSentEvent('{"type":"content_block_frobnicate","index":0}', event="x")) == []
    delta = '{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}'
    assert anthropic.reduce(state, ServerSentEvent(delta, event="content_block_delta")) == []
    assert not state.done and state.content_chars == 0


# --- end to end ----------------------------------------------------------------------------------

CONFIG = """
providers:
  anthropic: {{adapter: anthropic, base_url: "{url}", api_key_env: ANTHROPIC_KEY}}
models:
  claude-text: {{provider: anthropic, input: 3.00, cached_input: 0.30, output: 15.00}}
  claude-tools: {{provider: anthropic, input: 3.00, output: 15.00}}
  claude-stream-error: {{provider: anthropic, input: 3.00, output: 15.00}}
  claude-error-overloaded: {{provider: anthropic, input: 3.00, output: 15.00}}
  claude-error-rate-limit: {{provider: anthropic, input: 3.00, output: 15.00, upstream: claude-error-rate_limit}}
  claude-error-prompt-too-long: {{provider: anthropic, input: 3, output: 15, upstream: claude-error-prompt_too_long}}
tiers: {{simple: [claude-text], medium: [claude-text], complex: [claude-text]}}
baseline: claude-text
resilience: {{retries: 0, breaker_failures: 1000}}  # these tests are about translation, one call each
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeAnthropic]:
    with Threaded(FakeAnthropic()) as fake:
        yield fake


@pytest.fixture(scope="module")
def client(provider: FakeAnthropic) -> Iterator[openai.OpenAI]:
    with sdk_client(CONFIG.format(url=provider.url), {"ANTHROPIC_KEY": KEY}) as sdk:
        yield sdk


def test_sdk_plain_answer_and_the_header_that_reports_the_default(
    client: openai.OpenAI, provider: FakeAnthropic
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude-text", messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    )
    assert raw.headers["x-router-dropped-params"] == "max_tokens (required by anthropic, defaulted to 4096)"
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2160
    _, path, headers, body = provider.requests[-1]
    assert path == "/v1/messages" and headers["anthropic-version"] == "2023-06-01"
    assert body["system"] == [{"type": "text", "text": "Be kind."}] and body["max_tokens"] == 4096


def test_sdk_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-text",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello! How can I help you today? ☀️"
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens_details is not None
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 2048


def test_sdk_tool_round_trip_plain_and_streamed(client: openai.OpenAI, provider: FakeAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    first = client.chat.completions.create(model="claude-tools", messages=messages, tools=[WEATHER], max_tokens=200)
    call = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    with client.chat.completions.stream(
        model="claude-tools", messages=messages, tools=[WEATHER], max_tokens=200
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"location": "Paris, France"},
        {"location": "Tokyo, Japan"},
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    sent_body = provider.requests[-1][3]
    assert sent_body["messages"][1]["content"][-1] == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": {"location": "Paris, France", "unit": "celsius"},
    }
    assert sent_body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]


def test_sdk_sees_openai_errors(client: openai.OpenAI) -> None:
    hi: Any = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.InternalServerError) as overloaded:
        client.chat.completions.create(model="claude-error-overloaded", messages=hi, max_tokens=5)
    assert overloaded.value.status_code == 503 and overloaded.value.code == "upstream_overloaded"
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="claude-error-rate-limit", messages=hi, max_tokens=5)
    assert limited.value.response.headers["retry-after"] == "12"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="claude-error-prompt-too-long", messages=hi, max_tokens=5)
    assert too_long.value.code == "context_length_exceeded"
    # the error may arrive before any content (an HTTP error from create) or after (an error event)
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(client.chat.completions.create(model="claude-stream-error", messages=hi, max_tokens=5, stream=True))


def test_an_image_url_given_as_a_bare_string_reaches_every_translating_adapter() -> None:
    from adapters import gemini, ollama

    for form in ({"url": PNG}, PNG):  # OpenAI's object, and the bare string some clients send
        body = {"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": form}]}]}
        claude = json.loads(anthropic.build_request(body, TARGET, stream=False).body)
        assert claude["messages"][0]["content"][0]["source"] == {
            "type": "base64",
            "media_type": "image/png",
            "data": "iVBORw0KGgo=",
        }
        target = Target(model="m", base_url="http://127.0.0.1:1", api_key="k")
        parts = json.loads(gemini.build_request(body, target, stream=False).body)["contents"][0]["parts"]
        assert parts == [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]
        assert json.loads(ollama.build_request(body, target, stream=False).body)["messages"][0]["images"] == [
            "iVBORw0KGgo="
        ]
