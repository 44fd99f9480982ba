"""The Gemini adapter: recorded wire-format fixtures, byte-split streams, and end to end through
the proxy to a fake Gemini server with the OpenAI SDK as the client."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from adapters import gemini
from adapters.base import BadPayload, StreamFailure, Target
from adapters.sse import ServerSentEvent
from proxy.errors import from_provider
from tests.conftest import sdk_client
from tests.fakes.gemini_provider import KEY, FakeGemini
from tests.fakes.wire import FIXTURES, Threaded, sse_events_split_everywhere

DIR = FIXTURES / "gemini"
TARGET = Target(model="gemini-2.5-flash", base_url="https://generativelanguage.googleapis.com", api_key="AIza-test")
SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
WEATHER: Any = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}}


def run(events: list[ServerSentEvent]) -> tuple[gemini.GeminiStream, list[dict[str, Any]]]:
    state = gemini.new_stream()
    return state, [chunk for event in events for chunk in gemini.reduce(state, event)]


def assemble(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, dict[str, str]], str | None]:
    text, finish = "", None
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.get("id") or ""
                slot["name"] += call["function"].get("name") or ""
                slot["arguments"] += call["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return text, calls, finish


# --- requests ------------------------------------------------------------------------------------


def test_request_translates_a_multi_turn_tool_conversation_without_touching_the_input() -> None:
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Metric units."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"celsius": 18}'},
            {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
        ],
        "max_tokens": 256,
        "temperature": 1.4,
        "top_p": 0.8,
        "stop": ["END", "STOP"],
        "seed": 3,
        "n": 2,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
    }
    before = copy.deepcopy(body)
    request = gemini.build_request(body, TARGET, stream=True)
    assert body == before
    assert request.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert request.headers["x-goog-api-key"] == "AIza-test" and "authorization" not in request.headers
    assert request.notes == ()
    out = json.loads(request.body)
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Metric units."}]}
    assert out["generationConfig"] == {
        "temperature": 1.4,
        "topP": 0.8,
        "candidateCount": 2,
        "seed": 3,
        "maxOutputTokens": 256,
        "stopSequences": ["END", "STOP"],
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA,
    }
    assert out["tools"] == [
        {"functionDeclarations": [{"name": "get_weather", "description": "Weather", "parametersJsonSchema": SCHEMA}]}
    ]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert out["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "Weather here?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}],
        },
        {
            "role": "model",
            "parts": [{"text": "Checking."}, {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"celsius": 18}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
            ],
        },
    ]
    assert gemini.build_request(body, TARGET, stream=False).url.endswith("/models/gemini-2.5-flash:generateContent")


def test_gemini_3_replayed_calls_carry_the_documented_signature_sentinel() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call, call]}]}
    three = json.loads(gemini.build_request(body, Target("gemini-3-pro-preview", "https://g"), stream=False).body)
    assert [p.get("thoughtSignature") for p in three["contents"][1]["parts"]] == [gemini.SKIP_SIGNATURE, None]
    two = json.loads(gemini.build_request(body, TARGET, stream=False).body)
    assert all("thoughtSignature" not in p for p in two["contents"][1]["parts"])


def test_request_reports_what_gemini_cannot_honour() -> None:
    request = gemini.build_request(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "logit_bias": {"1": 2},
            "parallel_tool_calls": False,
            "reasoning_effort": "high",
            "tools": [WEATHER, {"type": "custom", "custom": {"name": "x"}}],
            "response_format": {"type": "json_object"},
        },
        TARGET,
        stream=False,
    )
    out = json.loads(request.body)
    assert out["generationConfig"] == {"responseMimeType": "application/json"}
    assert len(out["tools"][0]["functionDeclarations"]) == 1
    assert request.notes == (
        "tools[1] (type 'custom' unsupported, dropped)",
        "parallel_tool_calls (unsupported, dropped)",
        "logit_bias (unsupported, dropped)",
        "reasoning_effort (unsupported, dropped)",
    )


# --- answers -------------------------------------------------------------------------------------


def test_plain_reply_with_thoughts_and_cache_in_usage() -> None:
    reply = gemini.parse_reply((DIR / "text.json").read_bytes())
    completion = ChatCompletion.model_validate_json(reply.body)
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == 2060 and usage.completion_tokens == 9 + 52
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 2048
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 52
    assert usage.total_tokens == 2121


def test_function_call_reply_becomes_tool_calls() -> None:
    reply = gemini.parse_reply((DIR / "tools.json").read_bytes())
    completion = ChatCompletion.model_validate_json(reply.body)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_9i6RaKXzD5eZ1MkP6MvO-Qg_0"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"location": "Paris, France", "unit": "celsius"}  # type: ignore[union-attr]


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    body = b'{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}'
    reply = gemini.parse_reply(body)
    assert reply.finish_reason == "content_filter"
    ChatCompletion.model_validate_json(reply.body)
    with pytest.raises(BadPayload):
        gemini.parse_reply(b'{"kind":"other"}')


@pytest.mark.parametrize(
    ("name", "status", "answer", "code", "retry_after"),
    [
        ("rate_limit", 429, 429, "rate_limit_exceeded", "37"),
        ("auth", 400, 502, "upstream_auth_error", None),
        ("prompt_too_long", 400, 400, "context_length_exceeded", None),
        ("overloaded", 503, 503, "upstream_overloaded", None),
        ("bad_request", 400, 400, None, None),
    ],
)
def test_errors_map_to_openai_statuses(
    name: str, status: int, answer: int, code: str | None, retry_after: str | None
) -> None:
    failure = gemini.parse_error(status, {}, (DIR / f"error_{name}.json").read_bytes())
    error = from_provider(failure, provider="gemini")
    assert (error.status, error.code) == (answer, code)
    assert failure.retry_after == retry_after
    assert error.headers.get("retry-after") == retry_after


def test_an_error_as_a_one_item_list_is_read_too() -> None:
    body = b'[{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}]'
    assert gemini.parse_error(429, {"retry-after": "3"}, body).message == "Resource exhausted"


# --- streams -------------------------------------------------------------------------------------


def test_text_stream_split_at_every_byte_ends_on_finish_reason_with_usage() -> None:
    state, chunks = run(sse_events_split_everywhere((DIR / "text.sse").read_bytes()))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text, calls, finish = assemble(chunks)
    assert text == "Hello! How can I help you today? ☀️" and calls == {} and finish == "stop"
    assert state.done and state.content_chars == len(text)
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["prompt_tokens"] == 2060 and usage["completion_tokens"] == 11 + 52
    assert usage["prompt_tokens_details"]["cached_tokens"] == 2048
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 52
    assert gemini.reduce(state, ServerSentEvent('{"candidates": []}')) == []  # nothing after the end


def test_tool_stream_gives_each_call_an_index_id_and_whole_arguments() -> None:
    state, chunks = run(sse_events_split_everywhere((DIR / "tools.sse").read_bytes()))
    text, calls, finish = assemble(chunks)
    assert text == "Okay, let's check the weather in Paris and Tokyo:" and finish == "tool_calls"
    assert [c["id"] for c in calls.values()] == ["call_9i6RaKXzD5eZ1MkP6MvO-Qg_0", "call_9i6RaKXzD5eZ1MkP6MvO-Qg_1"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"location": "Paris, France"},
        {"location": "Tokyo, Japan"},
    ]
    assert state.content_chars == len(text) + sum(len(c["arguments"]) for c in calls.values())


def test_error_inside_a_stream_fails_it() -> None:
    state = gemini.new_stream()
    with pytest.raises(StreamFailure) as caught:
        for event in sse_events_split_everywhere((DIR / "stream_error.sse").read_bytes()):
            gemini.reduce(state, event)
    assert caught.value.failure.status == 503
    unknown_status = ServerSentEvent('{"error": {"message": "slow down", "status": "RESOURCE_EXHAUSTED"}}')
    with pytest.raises(StreamFailure) as limited:
        gemini.reduce(gemini.new_stream(), unknown_status)
    assert limited.value.failure.status == 429


def test_unknown_fields_and_part_kinds_are_skipped() -> None:
    state = gemini.new_stream()
    odd = '{"candidates":[{"content":{"parts":[{"executableCode":{"code":"1"}}],"role":"model"},"index":0}],"novel":1}'
    chunks = gemini.reduce(state, ServerSentEvent(odd))
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}]
    assert gemini.reduce(state, ServerSentEvent("{}", event="heartbeat")) == []
    assert not state.done and state.content_chars == 0


# --- end to end ----------------------------------------------------------------------------------

CONFIG = """
providers:
  google: {{adapter: gemini, base_url: "{url}", api_key_env: GEMINI_KEY}}
models:
  gemini-text: {{provider: google, input: 0.30, cached_input: 0.03, output: 2.50}}
  gemini-tools: {{provider: google, input: 0.30, output: 2.50}}
  gemini-stream-error: {{provider: google, input: 0.30, output: 2.50}}
  gemini-error-rate-limit: {{provider: google, input: 0.30, output: 2.50, upstream: gemini-error-rate_limit}}
  gemini-error-auth: {{provider: google, input: 0.30, output: 2.50}}
tiers: {{simple: [gemini-text], medium: [gemini-text], complex: [gemini-text]}}
baseline: gemini-text
resilience: {{retries: 0, breaker_failures: 1000}}  # these tests are about translation, one call each
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeGemini]:
    with Threaded(FakeGemini()) as fake:
        yield fake


@pytest.fixture(scope="module")
def client(provider: FakeGemini) -> Iterator[openai.OpenAI]:
    with sdk_client(CONFIG.format(url=provider.url), {"GEMINI_KEY": KEY}) as sdk:
        yield sdk


def test_sdk_plain_and_streamed_text(client: openai.OpenAI, provider: FakeGemini) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-text", messages=[{"role": "user", "content": "Hi"}], max_completion_tokens=64, seed=1
    )
    assert "x-router-dropped-params" not in raw.headers
    assert raw.parse().choices[0].message.content == "Hello! How can I help you today?"
    _, path, headers, body = provider.requests[-1]
    assert path == "/v1beta/models/gemini-text:generateContent" and headers["x-goog-api-key"] == KEY
    assert body["generationConfig"] == {"seed": 1, "maxOutputTokens": 64}
    stream = client.chat.completions.create(
        model="gemini-text",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello! How can I help you today? ☀️"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 63
    assert provider.requests[-1][1] == "/v1beta/models/gemini-text:streamGenerateContent?alt=sse"


def test_sdk_tool_round_trip_plain_and_streamed(client: openai.OpenAI, provider: FakeGemini) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="gemini-tools", messages=messages, tools=[WEATHER])
    call = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    with client.chat.completions.stream(model="gemini-tools", messages=messages, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]
    assert final.choices[0].finish_reason == "tool_calls"
    contents = provider.requests[-1][3]["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris, France", "unit": "celsius"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}}],
    }


def test_sdk_sees_openai_errors(client: openai.OpenAI) -> None:
    hi: Any = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gemini-error-rate-limit", messages=hi)
    assert limited.value.response.headers["retry-after"] == "37"
    with pytest.raises(openai.APIStatusError) as auth:
        client.chat.completions.create(model="gemini-error-auth", messages=hi)
    assert auth.value.status_code == 502 and auth.value.code == "upstream_auth_error"
    with pytest.raises(openai.APIError, match="overloaded"):
        list(client.chat.completions.create(model="gemini-stream-error", messages=hi, stream=True))
