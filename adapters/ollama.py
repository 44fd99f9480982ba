"""Ollama's `/api/chat` behind OpenAI's face, driven through the `ollama` client library.

The adapter stays pure: `build_request` returns the `/api/chat` JSON body as an `HttpRequest`, and
the upstream layer hands its fields to `ollama.AsyncClient.chat`. Answers come back as the
library's responses dumped to plain dicts (bytes for a whole answer; one dict per streamed line),
which is Ollama's NDJSON wire format. FRAMING = "ollama" tells the relay to feed those dicts.

Sampling parameters go to `options` (`num_predict` is the token limit); JSON modes to `format`.
Ollama has no tool-call ids, no way to force a tool call, and takes images only as base64 bytes
(fetching an image URL would be I/O), so those are mapped where exact and otherwise reported.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import datetime
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
    json_decoder,
)
from adapters.sse import ServerSentEvent

FRAMING = "ollama"

_OPTIONS = {  # OpenAI parameter -> Ollama option, copied as is
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_HANDLED = frozenset(
    {*_OPTIONS, "max_tokens", "max_completion_tokens", "stop", "tools", "tool_choice", "response_format"}
)
_FINISH = {"stop": "stop", "length": "length"}


# --- request -------------------------------------------------------------------------------------


def build_request(body: Mapping[str, Any], target: Target, *, stream: bool) -> HttpRequest:
    notes: list[str] = []
    out: dict[str, Any] = {"model": target.model, "messages": _messages(body.get("messages") or [], notes)}
    out["stream"] = stream
    options = {option: body[name] for name, option in _OPTIONS.items() if body.get(name) is not None}
    if max_tokens := body.get("max_completion_tokens") or body.get("max_tokens"):
        options["num_predict"] = max_tokens
    if stop := shapes.stop_list(body.get("stop")):
        options["stop"] = stop
    if options:
        out["options"] = options
    fmt = body.get("response_format")
    fmt = fmt if isinstance(fmt, Mapping) else {}
    kind = fmt.get("type")
    if kind == "json_object":
        out["format"] = "json"
    elif kind == "json_schema" and isinstance(schema := (fmt.get("json_schema") or {}).get("schema"), Mapping):
        out["format"] = schema
    elif kind not in (None, "text"):
        notes.append(f"response_format (type {kind!r} unsupported, dropped)")
    choice = body.get("tool_choice")
    tools = _tools(body.get("tools") or [], notes)
    if tools and choice != "none":  # "none" is exactly "offer no tools"
        out["tools"] = tools
        if choice not in (None, "auto"):
            notes.append("tool_choice (ollama cannot force a tool call, dropped)")
    if body.get("parallel_tool_calls") is False:
        notes.append("parallel_tool_calls (unsupported, dropped)")
    notes.extend(shapes.unhandled(body, _HANDLED | {"parallel_tool_calls"}))
    headers = {"content-type": "application/json"}
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    headers.update(target.headers)
    url = target.base_url.rstrip("/").removesuffix("/api") + "/api/chat"
    return HttpRequest("POST", url, headers, shapes.encode_json(out), tuple(notes))


def _messages(raw: list[Any], notes: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for tool results
    for i, message in enumerate(raw):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": shapes.text_of(content)})
        elif role == "user":
            entry: dict[str, Any] = {"role": "user", "content": shapes.text_of(content)}
            if images := _images(content, i, notes):
                entry["images"] = images
            out.append(entry)
        elif role == "assistant":
            entry = {"role": "assistant", "content": shapes.text_of(content)}
            calls = []
            for j, call in enumerate(message.get("tool_calls") or []):
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name") or "")
                args = shapes.arguments(function.get("arguments"))
                if args is None:
                    notes.append(f"messages[{i}].tool_calls[{j}].function.arguments (not a JSON object, sent as {{}})")
                calls.append({"function": {"name": function.get("name"), "arguments": args or {}}})
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
        elif role == "tool":
            entry = {"role": "tool", "content": shapes.text_of(content)}
            if name := names.get(str(message.get("tool_call_id"))):
                entry["tool_name"] = name
            out.append(entry)
        else:
            notes.append(f"messages[{i}] (role {role!r} unsupported, dropped)")
    return out


def _images(content: Any, i: int, notes: list[str]) -> list[str]:
    images: list[str] = []
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type")
        if kind == "text":
            continue
        inline = shapes.data_url(shapes.image_url(part)) if kind == "image_url" else None
        if inline:
            images.append(inline[1])
        else:
            notes.append(f"messages[{i}].content[{j}] ({kind!r} other than a base64 data URL unsupported, dropped)")
    return images


def _tools(tools: list[Any], notes: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, function in shapes.function_tools(tools, notes):
        out.append({"type": "function", "function": {k: v for k, v in function.items() if k != "strict"}})
    return out


# --- answers -------------------------------------------------------------------------------------

_any = json_decoder()


def _usage(raw: Mapping[str, Any]) -> Usage | None:
    if raw.get("prompt_eval_count") is None and raw.get("eval_count") is None:
        return None
    return Usage(
        prompt_tokens=int(raw.get("prompt_eval_count") or 0), completion_tokens=int(raw.get("eval_count") or 0)
    )


def _created(raw: Mapping[str, Any]) -> int:
    try:
        return int(datetime.fromisoformat(str(raw.get("created_at"))).timestamp())
    except ValueError:
        return int(time.time())


def _id(raw: Mapping[str, Any]) -> str:
    """Ollama sends no id; one made from the answer's nanosecond timestamp is unique and stable."""
    seed = f"{raw.get('model')}|{raw.get('created_at')}".encode()
    return "chatcmpl-" + hashlib.sha256(seed).hexdigest()[:24]


def _calls(raw: Any, response_id: str, first: int) -> list[dict[str, Any]]:
    out = []
    for n, call in enumerate(raw or [], start=first):
        function = call.get("function") or {}
        arguments = shapes.encode_json(function.get("arguments") or {}).decode()
        out.append(shapes.tool_call(f"call_{response_id[9:]}_{n}", str(function.get("name")), arguments, n))
    return out


def parse_reply(body: bytes) -> Reply:
    try:
        raw = _any(body)
    except msgspec.DecodeError as exc:
        raise BadPayload(f"Ollama answer is not JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("message"), dict):
        raise BadPayload("not an Ollama chat response")
    response_id = _id(raw)
    message = raw["message"]
    calls = [{k: v for k, v in c.items() if k != "index"} for c in _calls(message.get("tool_calls"), response_id, 0)]
    finish = "tool_calls" if calls else _FINISH.get(str(raw.get("done_reason")), "stop")
    answer = shapes.message(str(message.get("content") or ""), str(message.get("thinking") or ""), calls)
    usage = _usage(raw)
    out = shapes.completion(response_id, _created(raw), str(raw.get("model") or ""), [(answer, finish)], usage)
    return Reply(body=shapes.encode_json(out), usage=usage, finish_reason=finish, content=answer["content"])


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderFailure:
    """Ollama's `{"error": "<message>"}`."""
    try:
        raw = _any(body)
    except msgspec.DecodeError:
        raw = body.decode("utf-8", "replace").strip()[:500]
    message = str(raw.get("error") if isinstance(raw, dict) else raw) or f"HTTP {status}"
    return _failure(status, message, headers.get("retry-after"))


def _failure(status: int, message: str, retry_after: str | None) -> ProviderFailure:
    code = "context_length_exceeded" if status == 400 and shapes.too_long(message) else None
    kind = "invalid_request_error" if status == 400 else None
    return ProviderFailure(status, message, type=kind, code=code, retry_after=retry_after)


# --- streams -------------------------------------------------------------------------------------


class OllamaStream(StreamState):
    __slots__ = ("calls", "created", "id", "model", "started")

    def __init__(self) -> None:
        super().__init__()
        self.id = ""
        self.model = ""
        self.created = 0
        self.started = False
        self.calls = 0


def new_stream() -> OllamaStream:
    return OllamaStream()


def reduce(state: OllamaStream, event: Mapping[str, Any] | ServerSentEvent) -> list[dict[str, Any]]:
    """OpenAI chunks for one streamed `/api/chat` line: a dict, or an SSE event whose data is one."""
    if state.done:
        return []
    if isinstance(event, ServerSentEvent):
        try:
            event = _any(event.data)
        except msgspec.DecodeError as exc:
            raise BadPayload(f"stream line is not JSON: {exc}") from None
        if not isinstance(event, dict):
            return []
    if "error" in event:
        raise StreamFailure(_failure(500, str(event["error"]), None))
    if not state.started:
        state.id, state.model, state.created = _id(event), str(event.get("model") or ""), _created(event)
    message = event.get("message") or {}
    delta: dict[str, Any] = {}
    if not state.started:
        state.started = True
        delta = {"role": "assistant", "content": ""}
    if content := message.get("content"):
        delta["content"] = content
        state.content_chars += len(content)
    if thinking := message.get("thinking"):
        delta["reasoning_content"] = thinking
    if calls := _calls(message.get("tool_calls"), state.id, state.calls):
        state.calls += len(calls)
        state.content_chars += sum(len(c["function"]["arguments"]) for c in calls)
        delta["tool_calls"] = calls
    out = [shapes.chunk(state.id, state.created, state.model, delta)] if delta else []
    if event.get("done"):
        state.done = True
        state.finish_reason = "tool_calls" if state.calls else _FINISH.get(str(event.get("done_reason")), "stop")
        out.append(shapes.chunk(state.id, state.created, state.model, {}, state.finish_reason))
        state.usage = _usage(event)
        if state.usage:
            out.append(shapes.usage_chunk(state.id, state.created, state.model, state.usage))
    return out
