"""Anthropic's Messages API (`POST {base_url}/v1/messages`) behind OpenAI's chat completions face.

Requests: system and developer messages become the top-level `system`; tool results become
`tool_result` blocks in a user turn; consecutive turns of one role are merged, as Anthropic
expects. `max_tokens` is required by Anthropic: without one from the client, DEFAULT_MAX_TOKENS is
sent and reported. Temperatures above Anthropic's maximum of 1 are clamped and reported. There is
no JSON mode, `seed`, penalties, `logit_bias` or `n`: those are dropped and reported.

Answers: text, `tool_use` and `thinking` blocks become content, tool calls and `reasoning_content`.
OpenAI's `prompt_tokens` counts every input token, so it is Anthropic's input plus cache-creation
plus cache-read tokens; the cache reads are the cached tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from adapters import shapes
from adapters.base import (
    BadPayload,
    HttpRequest,
    ProviderFailure,
    Reply,
    StreamFailure,
    StreamState,
    Target,
    Usage,
)
from adapters.sse import ServerSentEvent

FRAMING = "sse"
VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
MAX_TEMPERATURE = 1.0

_HANDLED = frozenset(
    {"max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools", "tool_choice"}
    | {"parallel_tool_calls", "user"}
)
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# the HTTP status each error type comes with, for errors that arrive inside a stream
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_OPENAI_TYPES = frozenset({"invalid_request_error", "rate_limit_error"})


# --- request -------------------------------------------------------------------------------------


def build_request(body: Mapping[str, Any], target: Target, *, stream: bool) -> HttpRequest:
    notes: list[str] = []
    system, messages = _messages(body.get("messages") or [], notes)
    out: dict[str, Any] = {"model": target.model, "messages": messages}
    if system:
        out["system"] = system
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if not max_tokens:
        max_tokens = DEFAULT_MAX_TOKENS
        notes.append(f"max_tokens (required by anthropic, defaulted to {DEFAULT_MAX_TOKENS})")
    out["max_tokens"] = max_tokens
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        if temperature > MAX_TEMPERATURE:
            notes.append(f"temperature (clamped to {MAX_TEMPERATURE:g})")
        out["temperature"] = min(temperature, MAX_TEMPERATURE)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if stop := shapes.stop_list(body.get("stop")):
        out["stop_sequences"] = stop
    tools = _tools(body.get("tools") or [], notes)
    if tools:
        out["tools"] = tools
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), notes)
    if choice and tools:
        out["tool_choice"] = choice
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    if stream:
        out["stream"] = True
    notes.extend(shapes.unhandled(body, _HANDLED))
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "anthropic-version": VERSION,
    }
    if target.api_key:
        headers["x-api-key"] = target.api_key
    headers.update(target.headers)
    base = target.base_url.rstrip("/")
    url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
    return HttpRequest("POST", url, headers, shapes.encode_json(out), tuple(notes))


def _messages(raw: list[Any], notes: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        role = message.get("role")
        if role in ("system", "developer"):
            if text := shapes.text_of(message.get("content")):
                system.append({"type": "text", "text": text})
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), i, notes)
        elif role == "assistant":
            blocks = _assistant_blocks(message, i, notes)
        elif role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": str(message.get("tool_call_id") or ""),
                    "content": shapes.text_of(message.get("content")),
                }
            ]
        else:
            notes.append(f"messages[{i}] (role {role!r} unsupported, dropped)")
            continue
        if not blocks:  # e.g. an assistant turn with neither text nor calls: Anthropic rejects it
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)  # a list this function built, not the client's
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _user_blocks(content: Any, i: int, notes: list[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text") or ""}
            if part.get("cache_control"):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        elif kind == "image_url":
            url = shapes.image_url(part)
            inline = shapes.data_url(url)
            source = (
                {"type": "base64", "media_type": inline[0], "data": inline[1]}
                if inline
                else {"type": "url", "url": url}
            )
            blocks.append({"type": "image", "source": source})
        elif kind == "file" and (inline := shapes.data_url(str((part.get("file") or {}).get("file_data") or ""))):
            blocks.append(
                {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
            )
        else:
            notes.append(f"messages[{i}].content[{j}] (type {kind!r} unsupported, dropped)")
    return blocks


def _assistant_blocks(message: Mapping[str, Any], i: int, notes: list[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if text := shapes.text_of(message.get("content")):
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        args = shapes.arguments(function.get("arguments"))
        if args is None:
            notes.append(f"messages[{i}].tool_calls[{j}].function.arguments (not a JSON object, sent as {{}})")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": args or {}})
    return blocks


def _tools(tools: list[Any], notes: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, function in shapes.function_tools(tools, notes):
        entry: dict[str, Any] = {
            "name": function.get("name"),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        if function.get("strict"):
            notes.append(f"tools[{i}].function.strict (unsupported, dropped)")
        out.append(entry)
    return out


def _tool_choice(choice: Any, parallel: Any, notes: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif isinstance(choice, str):
        mapped = {"auto": "auto", "none": "none", "required": "any"}.get(choice)
        out = {"type": mapped} if mapped else None
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        out = None
    if choice is not None and out is None:
        notes.append("tool_choice (unsupported value, dropped)")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# --- answers -------------------------------------------------------------------------------------


def _usage(raw: Any, base: Usage | None = None) -> Usage:
    """Anthropic usage over `base`: fields Anthropic leaves out or null keep their earlier counts."""
    usage = base or Usage()
    if not isinstance(raw, Mapping):
        return usage
    fresh = Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=int(raw.get("output_tokens") or 0) if "output_tokens" in raw else usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
    )
    if any(raw.get(k) is not None for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")):
        read = int(raw.get("cache_read_input_tokens") or 0)
        fresh.prompt_tokens = (
            int(raw.get("input_tokens") or 0) + int(raw.get("cache_creation_input_tokens") or 0) + read
        )
        fresh.cached_tokens = read
    return fresh


def parse_reply(body: bytes) -> Reply:
    raw = shapes.parse_json(body, "Anthropic message")
    if not isinstance(raw, dict) or raw.get("type") != "message":
        raise BadPayload("not an Anthropic message")
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in raw.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            calls.append(shapes.tool_call(str(block.get("id")), str(block.get("name")), _args(block.get("input"))))
    usage = _usage(raw.get("usage"))
    finish = _FINISH.get(str(raw.get("stop_reason")), "stop")
    message = shapes.message("".join(text), "".join(reasoning), calls)
    out = shapes.completion(str(raw.get("id")), int(time.time()), str(raw.get("model")), [(message, finish)], usage)
    return Reply(body=shapes.encode_json(out), usage=usage, finish_reason=finish, content=message["content"])


def _args(value: Any) -> str:
    return shapes.encode_json(value if value is not None else {}).decode()


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderFailure:
    """Anthropic's `{"type": "error", "error": {"type", "message"}}`; 529 means overloaded."""
    retry_after = headers.get("retry-after")
    try:
        raw = shapes.decode_json(body)
    except msgspec.DecodeError:
        return ProviderFailure(status, body.decode("utf-8", "replace").strip()[:500], retry_after=retry_after)
    error = raw.get("error") if isinstance(raw, dict) else None
    if not isinstance(error, dict):
        return ProviderFailure(status, str(raw)[:500], retry_after=retry_after)
    return _failure(status, error, retry_after)


def _failure(status: int, error: Mapping[str, Any], retry_after: str | None) -> ProviderFailure:
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or f"HTTP {status}")
    code = "context_length_exceeded" if status in (400, 413) and shapes.too_long(message) else None
    return ProviderFailure(
        status, message, type=kind if kind in _OPENAI_TYPES else None, code=code, retry_after=retry_after
    )


# --- streams -------------------------------------------------------------------------------------


class AnthropicStream(StreamState):
    """Anthropic content-block indexes map to OpenAI tool-call indexes, which count tools only."""

    __slots__ = ("created", "id", "model", "tools")

    def __init__(self) -> None:
        super().__init__()
        self.id = "chatcmpl-anthropic"
        self.model = ""
        self.created = int(time.time())
        self.tools: dict[int, int] = {}


def new_stream() -> AnthropicStream:
    return AnthropicStream()


def reduce(state: AnthropicStream, event: ServerSentEvent) -> list[dict[str, Any]]:
    """OpenAI chunks for one Anthropic event; `ping` and unknown events give none."""
    if state.done or event.event == "ping":
        return []
    data = shapes.parse_json(event.data, "stream event")
    if not isinstance(data, dict):
        return []
    kind = data.get("type") or event.event
    if kind == "error":
        error = data.get("error")
        error = error if isinstance(error, dict) else {}
        raise StreamFailure(_failure(_ERROR_STATUS.get(str(error.get("type")), 500), error, None))
    handler = _HANDLERS.get(str(kind))
    return handler(state, data) if handler else []


def _chunk(state: AnthropicStream, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return shapes.chunk(state.id, state.created, state.model, delta, finish)


def _message_start(state: AnthropicStream, data: dict[str, Any]) -> list[dict[str, Any]]:
    message = data.get("message") or {}
    state.id = str(message.get("id") or state.id)
    state.model = str(message.get("model") or state.model)
    state.usage = _usage(message.get("usage"), state.usage)
    return [_chunk(state, {"role": "assistant", "content": "", "refusal": None})]


def _block_start(state: AnthropicStream, data: dict[str, Any]) -> list[dict[str, Any]]:
    block = data.get("content_block") or {}
    if block.get("type") == "tool_use":
        index = state.tools[int(data.get("index") or 0)] = len(state.tools)
        call = shapes.tool_call(str(block.get("id")), str(block.get("name")), "", index)
        return [_chunk(state, {"tool_calls": [call]})]
    if block.get("type") == "text" and block.get("text"):
        state.content_chars += len(block["text"])
        return [_chunk(state, {"content": block["text"]})]
    return []


def _block_delta(state: AnthropicStream, data: dict[str, Any]) -> list[dict[str, Any]]:
    delta = data.get("delta") or {}
    kind = delta.get("type")
    if kind == "text_delta" and delta.get("text"):
        state.content_chars += len(delta["text"])
        return [_chunk(state, {"content": delta["text"]})]
    if kind == "input_json_delta" and delta.get("partial_json"):
        index = state.tools.get(int(data.get("index") or 0))
        if index is None:
            return []
        state.content_chars += len(delta["partial_json"])
        return [_chunk(state, {"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})]
    if kind == "thinking_delta" and delta.get("thinking"):
        return [_chunk(state, {"reasoning_content": delta["thinking"]})]
    return []


def _message_delta(state: AnthropicStream, data: dict[str, Any]) -> list[dict[str, Any]]:
    state.usage = _usage(data.get("usage"), state.usage)
    reason = (data.get("delta") or {}).get("stop_reason")
    if not reason:
        return []
    state.finish_reason = _FINISH.get(str(reason), "stop")
    return [_chunk(state, {}, state.finish_reason)]


def _message_stop(state: AnthropicStream, data: dict[str, Any]) -> list[dict[str, Any]]:
    state.done = True
    usage = state.usage
    return [shapes.usage_chunk(state.id, state.created, state.model, usage)] if usage else []


_HANDLERS: dict[str, Callable[[AnthropicStream, dict[str, Any]], list[dict[str, Any]]]] = {
    "message_start": _message_start,
    "content_block_start": _block_start,
    "content_block_delta": _block_delta,
    "message_delta": _message_delta,
    "message_stop": _message_stop,
}
