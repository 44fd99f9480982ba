"""OpenAI's chat completions wire format, spoken by OpenAI, Groq, Together, DeepSeek, vLLM, ...

Requests pass through as the client sent them, with only `model` replaced and, for streams,
usage always requested. Answers pass through as the provider's own bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from adapters.base import (
    BadPayload,
    HttpRequest,
    ProviderFailure,
    Reply,
    StreamFailure,
    StreamState,
    Target,
    json_decoder,
    usage_from_openai,
)
from adapters.sse import ServerSentEvent


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message | None = None
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] = []
    usage: dict[str, Any] | None = None


_completion = json_decoder(_Completion)
_any = json_decoder()


def build_request(body: Mapping[str, Any], target: Target, *, stream: bool) -> HttpRequest:
    out = dict(body)
    out["model"] = target.model
    if stream:
        out["stream"] = True
        out["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    headers.update(target.headers)
    return HttpRequest("POST", target.base_url.rstrip("/") + "/chat/completions", headers, msgspec.json.encode(out))


def parse_reply(body: bytes) -> Reply:
    try:
        view = _completion(body)
    except msgspec.DecodeError as exc:
        raise BadPayload(f"not an OpenAI chat completion: {exc}") from None
    first = view.choices[0] if view.choices else None
    return Reply(
        body=body,
        usage=usage_from_openai(view.usage),
        finish_reason=first.finish_reason if first else None,
        content=first.message.content if first and first.message else None,
    )


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderFailure:
    retry_after = headers.get("retry-after")
    try:
        raw = _any(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()[:500]
        return ProviderFailure(status, text, retry_after=retry_after)
    return _failure(status, raw, retry_after)


def _failure(status: int, raw: Any, retry_after: str | None) -> ProviderFailure:
    error = raw.get("error", raw) if isinstance(raw, dict) else raw
    if isinstance(error, dict):
        code = error.get("code")
        return ProviderFailure(
            status,
            str(error.get("message") or error.get("detail") or error),
            type=error.get("type") if isinstance(error.get("type"), str) else None,
            code=str(code) if code is not None else None,
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            retry_after=retry_after,
        )
    return ProviderFailure(status, str(error), retry_after=retry_after)


def new_stream() -> StreamState:
    return StreamState()


def reduce(state: StreamState, event: ServerSentEvent) -> list[dict[str, Any]]:
    if event.event not in ("message", "error"):
        return []
    if event.data == "[DONE]":
        state.done = True
        return []
    try:
        chunk = _any(event.data)
    except msgspec.DecodeError as exc:
        raise BadPayload(f"stream event is not JSON: {exc}") from None
    if not isinstance(chunk, dict):
        return []
    if "error" in chunk or event.event == "error":
        raise StreamFailure(_failure(500, chunk, None))
    usage = chunk.get("usage")
    if usage:
        state.usage = usage_from_openai(usage)
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            state.content_chars += len(content)
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
    return [chunk]
