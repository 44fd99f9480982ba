"""Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`) behind OpenAI's face.

Requests: system and developer messages become `systemInstruction`; assistant turns are the
`model` role; tool calls and results become `functionCall` / `functionResponse` parts (Gemini
matches results to calls by function name, found from the client's `tool_call_id`). Sampling
parameters go to `generationConfig`, JSON modes to `responseMimeType` / `responseJsonSchema`, tool
schemas to `parametersJsonSchema` (full JSON Schema, not Gemini's OpenAPI subset).

Answers: Gemini has no tool-call ids, so they are made from the response id and position. Its
`candidatesTokenCount` leaves out thinking, while OpenAI's `completion_tokens` includes reasoning:
completion tokens are candidates plus thoughts. Streams have no end marker; a candidate's
`finishReason` ends it, and its chunk carries the final `usageMetadata`.
"""

from __future__ import annotations

import math
import mimetypes
import time
from collections.abc import Mapping
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
# Gemini 3 rejects a replayed functionCall without the thoughtSignature it came with, which OpenAI
# clients cannot send back; Google documents this value to skip that check.
SKIP_SIGNATURE = "skip_thought_signature_validator"

_CONFIG = {  # OpenAI parameter -> generationConfig field, copied as is
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_HANDLED = frozenset(
    {*_CONFIG, "max_tokens", "max_completion_tokens", "stop", "tools", "tool_choice", "response_format"}
)
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_STATUS = {  # google.rpc status names, for errors whose numeric code is missing
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


# --- request -------------------------------------------------------------------------------------


def build_request(body: Mapping[str, Any], target: Target, *, stream: bool) -> HttpRequest:
    notes: list[str] = []
    model = target.model.removeprefix("models/")
    signed = model.startswith(("gemini-3.", "gemini-3-"))
    system, contents = _contents(body.get("messages") or [], notes, signed=signed)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    config = {field: body[name] for name, field in _CONFIG.items() if body.get(name) is not None}
    if max_tokens := body.get("max_completion_tokens") or body.get("max_tokens"):
        config["maxOutputTokens"] = max_tokens
    if stop := shapes.stop_list(body.get("stop")):
        config["stopSequences"] = stop
    _response_format(body.get("response_format"), config, notes)
    if config:
        out["generationConfig"] = config
    if declarations := _declarations(body.get("tools") or [], notes):
        out["tools"] = [{"functionDeclarations": declarations}]
        if (tool_config := _tool_config(body.get("tool_choice"), notes)) is not None:
            out["toolConfig"] = {"functionCallingConfig": tool_config}
    if body.get("parallel_tool_calls") is False:
        notes.append("parallel_tool_calls (unsupported, dropped)")
    notes.extend(shapes.unhandled(body, _HANDLED | {"parallel_tool_calls"}))
    base = target.base_url.rstrip("/")
    if not base.endswith(("/v1beta", "/v1")):
        base += "/v1beta"
    url = f"{base}/models/{model}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    headers.update(target.headers)
    return HttpRequest("POST", url, headers, shapes.encode_json(out), tuple(notes))


def _contents(raw: list[Any], notes: list[str], *, signed: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for functionResponse parts
    for i, message in enumerate(raw):
        role = message.get("role")
        if role in ("system", "developer"):
            if text := shapes.text_of(message.get("content")):
                system.append({"text": text})
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), i, notes)
        elif role == "assistant":
            role = "model"
            parts = _model_parts(message, names, i, notes)
            if signed and (first := next((p for p in parts if "functionCall" in p), None)):
                first["thoughtSignature"] = SKIP_SIGNATURE  # the first call of a turn carries it
        elif role == "tool":
            role = "user"
            name = names.get(str(message.get("tool_call_id")), "")
            parts = [{"functionResponse": {"name": name, "response": _result(message.get("content"))}}]
        else:
            notes.append(f"messages[{i}] (role {role!r} unsupported, dropped)")
            continue
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)  # a list this function built, not the client's
        else:
            out.append({"role": role, "parts": parts})
    return system, out


def _user_parts(content: Any, i: int, notes: list[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text") or ""})
        elif kind == "image_url":
            parts.append(_media(shapes.image_url(part)))
        elif kind == "file" and (data := str((part.get("file") or {}).get("file_data") or "")):
            parts.append(_media(data))
        elif kind == "input_audio" and isinstance(audio := part.get("input_audio"), Mapping):
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio.get("data")}})
        else:
            notes.append(f"messages[{i}].content[{j}] (type {kind!r} unsupported, dropped)")
    return parts


def _media(url: str) -> dict[str, Any]:
    if inline := shapes.data_url(url):
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _model_parts(message: Mapping[str, Any], names: dict[str, str], i: int, notes: list[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if text := shapes.text_of(message.get("content")):
        parts.append({"text": text})
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        names[str(call.get("id"))] = name
        args = shapes.arguments(function.get("arguments"))
        if args is None:
            notes.append(f"messages[{i}].tool_calls[{j}].function.arguments (not a JSON object, sent as {{}})")
        parts.append({"functionCall": {"name": name, "args": args or {}}})
    return parts


def _result(content: Any) -> dict[str, Any]:
    """A `functionResponse.response`, which must be an object: the tool's JSON object, or wrapped."""
    text = shapes.text_of(content)
    value = shapes.arguments(text) if text.lstrip().startswith("{") else None
    return value if value is not None else {"result": text}


def _response_format(fmt: Any, config: dict[str, Any], notes: list[str]) -> None:
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind in (None, "text"):
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema" and isinstance(schema := (fmt.get("json_schema") or {}).get("schema"), Mapping):
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = schema
    else:
        notes.append(f"response_format (type {kind!r} unsupported, dropped)")


def _declarations(tools: list[Any], notes: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, function in shapes.function_tools(tools, notes):
        entry: dict[str, Any] = {"name": function.get("name"), "description": function.get("description") or ""}
        if function.get("parameters"):
            entry["parametersJsonSchema"] = function["parameters"]
        out.append(entry)
    return out


def _tool_config(choice: Any, notes: list[str]) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in ("auto", "none", "required"):
        return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    notes.append("tool_choice (unsupported value, dropped)")
    return None


# --- answers -------------------------------------------------------------------------------------


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        prompt_tokens=int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0),
        completion_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _call_id(response_id: str, index: int, call: Mapping[str, Any]) -> str:
    return str(call.get("id") or f"call_{response_id}_{index}")


def _finish(reason: Any, has_calls: bool) -> str:
    finish = _FINISH.get(str(reason), "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def parse_reply(body: bytes) -> Reply:
    raw = shapes.parse_json(body, "Gemini response")
    if not isinstance(raw, dict) or not ("candidates" in raw or "promptFeedback" in raw):
        raise BadPayload("not a Gemini GenerateContentResponse")
    response_id = str(raw.get("responseId") or "gemini")
    choices: list[tuple[dict[str, Any], str | None]] = []
    for candidate in raw.get("candidates") or []:
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            if isinstance(call := part.get("functionCall"), Mapping):
                call_id = _call_id(response_id, len(calls), call)
                calls.append(shapes.tool_call(call_id, str(call.get("name")), _args(call.get("args"))))
            elif "text" in part:
                (reasoning if part.get("thought") else text).append(str(part["text"]))
        message = shapes.message("".join(text), "".join(reasoning), calls)
        choices.append((message, _finish(candidate.get("finishReason"), bool(calls))))
    if not choices:  # the prompt itself was blocked: promptFeedback.blockReason
        choices.append((shapes.message("", "", []), "content_filter"))
    usage = _usage(raw.get("usageMetadata"))
    out = shapes.completion(response_id, int(time.time()), str(raw.get("modelVersion") or ""), choices, usage)
    first, finish = choices[0]
    return Reply(body=shapes.encode_json(out), usage=usage, finish_reason=finish, content=first["content"])


def _args(value: Any) -> str:
    return shapes.encode_json(value if value is not None else {}).decode()


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderFailure:
    """Google's `{"error": {"code", "message", "status", "details"}}` (a one-item list on some paths)."""
    try:
        raw = shapes.decode_json(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()[:500]
        return ProviderFailure(status, text, retry_after=headers.get("retry-after"))
    if isinstance(raw, list) and raw:
        raw = raw[0]
    error = raw.get("error") if isinstance(raw, dict) else None
    if not isinstance(error, dict):
        return ProviderFailure(status, str(raw)[:500], retry_after=headers.get("retry-after"))
    return _failure(status, error, headers.get("retry-after"))


def _failure(status: int, error: Mapping[str, Any], retry_after: str | None) -> ProviderFailure:
    message = str(error.get("message") or error.get("status") or f"HTTP {status}")
    details = [d for d in error.get("details") or [] if isinstance(d, Mapping)]
    if any(d.get("reason") == "API_KEY_INVALID" for d in details):
        status = 401  # Google answers a bad key with 400 INVALID_ARGUMENT; it is the proxy's credential
    for detail in details:
        delay = str(detail.get("retryDelay") or "")
        if not retry_after and delay.endswith("s"):
            try:
                retry_after = str(math.ceil(float(delay[:-1])))
            except ValueError:
                pass
    code = "context_length_exceeded" if status == 400 and shapes.too_long(message) else None
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(status)
    return ProviderFailure(status, message, type=kind, code=code, retry_after=retry_after)


# --- streams -------------------------------------------------------------------------------------


class GeminiStream(StreamState):
    """Per candidate: whether its first chunk (with the role) went out, and its tool-call count."""

    __slots__ = ("calls", "created", "finished", "id", "model", "started")

    def __init__(self) -> None:
        super().__init__()
        self.id = "gemini"
        self.model = ""
        self.created = int(time.time())
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.calls: dict[int, int] = {}


def new_stream() -> GeminiStream:
    return GeminiStream()


def reduce(state: GeminiStream, event: ServerSentEvent) -> list[dict[str, Any]]:
    """OpenAI chunks for one `GenerateContentResponse`; the usage chunk follows the last finish."""
    if state.done or event.event != "message":
        return []
    data = shapes.parse_json(event.data, "stream event")
    if not isinstance(data, dict):
        return []
    if isinstance(error := data.get("error"), dict):
        code = error.get("code")
        raise StreamFailure(
            _failure(code if isinstance(code, int) else _STATUS.get(str(error.get("status")), 500), error, None)
        )
    state.id = str(data.get("responseId") or state.id)
    state.model = str(data.get("modelVersion") or state.model)
    state.usage = _usage(data.get("usageMetadata")) or state.usage
    out: list[dict[str, Any]] = []
    candidates = data.get("candidates") or []
    if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
        candidates = [{"index": 0, "finishReason": "PROHIBITED_CONTENT"}]
    for candidate in candidates:
        out.extend(_candidate(state, candidate))
    if state.started and state.finished >= state.started:
        state.done = True
        if state.usage:
            out.append(shapes.usage_chunk(state.id, state.created, state.model, state.usage))
    return out


def _candidate(state: GeminiStream, candidate: Mapping[str, Any]) -> list[dict[str, Any]]:
    index = int(candidate.get("index") or 0)
    out: list[dict[str, Any]] = []
    delta: dict[str, Any] = {}
    if index not in state.started:
        state.started.add(index)
        delta = {"role": "assistant", "content": ""}
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if isinstance(call := part.get("functionCall"), Mapping):
            position = state.calls.get(index, 0)
            state.calls[index] = position + 1
            args = _args(call.get("args"))
            state.content_chars += len(args)
            calls.append(shapes.tool_call(_call_id(state.id, position, call), str(call.get("name")), args, position))
        elif "text" in part:
            (reasoning if part.get("thought") else text).append(str(part["text"]))
    if text:
        delta["content"] = "".join(text)
        state.content_chars += len(delta["content"])
    if reasoning:
        delta["reasoning_content"] = "".join(reasoning)
    if calls:
        delta["tool_calls"] = calls
    if delta:
        out.append(shapes.chunk(state.id, state.created, state.model, delta, index=index))
    if reason := candidate.get("finishReason"):
        finish = _finish(reason, bool(state.calls.get(index)))
        state.finished.add(index)
        if index == 0 or state.finish_reason is None:
            state.finish_reason = finish
        out.append(shapes.chunk(state.id, state.created, state.model, {}, finish, index=index))
    return out
