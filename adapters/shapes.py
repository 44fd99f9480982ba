"""OpenAI's chat shapes, built by the adapters that translate from another wire format.

Anthropic, Gemini and Ollama answers are rebuilt here into exactly what OpenAI sends, so the
OpenAI SDK cannot tell: `chat.completion` bodies, `chat.completion.chunk` objects, the final
usage chunk with `choices: []`. Also the few request-side helpers those adapters share: reading
text out of content parts, data URLs, tool-call arguments, and the parameters an adapter did not
honour (which the proxy reports in `x-router-dropped-params`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from adapters.base import BadPayload, Usage, json_decoder

decode_json = json_decoder()
encode_json = msgspec.json.Encoder().encode

# Fields that carry no meaning a provider could fail to honour (or that the proxy itself
# handles), so dropping them is never reported.
NEUTRAL = frozenset(
    {"model", "messages", "stream", "stream_options", "user", "store", "metadata", "service_tier"}
    | {"prompt_cache_key", "safety_identifier"}
)

_TOO_LONG = re.compile(
    r"prompt is too long|context (length|window|limit)|maximum context|too many tokens"
    r"|input token count.*exceeds|exceeds? the maximum number of tokens",
    re.IGNORECASE,
)


def usage_dict(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage` object; `prompt_tokens` already includes the cached tokens."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0},
    }


def chunk(
    id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0
) -> dict[str, Any]:
    """One `chat.completion.chunk` with a single choice."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(id: str, created: int, model: str, usage: Usage) -> dict[str, Any]:
    """The last chunk of a stream, as `stream_options.include_usage` makes OpenAI send it."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [],
        "usage": usage_dict(usage),
    }


def completion(
    id: str, created: int, model: str, choices: list[tuple[dict[str, Any], str | None]], usage: Usage | None
) -> dict[str, Any]:
    """A `chat.completion` from (message, finish_reason) pairs, one per choice."""
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            for i, (message, finish) in enumerate(choices)
        ],
    }
    if usage is not None:
        body["usage"] = usage_dict(usage)
    return body


def message(text: str, reasoning: str, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """An assistant message; `content` is null when the answer is only tool calls, as OpenAI does."""
    out: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None, "refusal": None}
    if reasoning:
        # DeepSeek's field name, which OpenAI-compatible clients already read for thinking text
        out["reasoning_content"] = reasoning
    if tool_calls:
        out["tool_calls"] = tool_calls
    return out


def tool_call(id: str, name: str, arguments: str, index: int | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
    if index is not None:
        call = {"index": index, **call}
    return call


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or p.get("refusal") or "")
            for p in content
            if isinstance(p, Mapping) and p.get("type") in ("text", "refusal", None)
        )
    return ""


def image_url(part: Mapping[str, Any]) -> str:
    """The URL of an `image_url` content part: `{"url": ...}` as OpenAI documents it, or the bare
    string some clients send; "" when there is none."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    return url if isinstance(url, str) else ""


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, comma, data = url[5:].partition(",")
    if not comma or not head.endswith(";base64"):
        return None
    return head.removesuffix(";base64") or "application/octet-stream", data


def arguments(raw: Any) -> dict[str, Any] | None:
    """A tool call's `arguments` JSON string as an object; None when it is not one."""
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = decode_json(raw) if isinstance(raw, str | bytes) and raw else {}
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def stop_list(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str)]
    return []


def is_default(name: str, value: Any) -> bool:
    """Whether a parameter's value asks for nothing beyond the default, so ignoring it is exact."""
    return (
        value is None
        or (name == "n" and value == 1)
        or (name == "parallel_tool_calls" and value is True)
        or (name == "logprobs" and value is False)
        or (name in ("frequency_penalty", "presence_penalty") and value == 0)
    )


def unhandled(body: Mapping[str, Any], handled: Iterable[str]) -> list[str]:
    """Notes for every client parameter the adapter neither translated nor can ignore safely."""
    known = NEUTRAL.union(handled)
    return [
        f"{name} (unsupported, dropped)"
        for name, value in body.items()
        if name not in known and not is_default(name, value)
    ]


def too_long(message: str) -> bool:
    """Whether a provider's error message says the prompt does not fit the model's context."""
    return bool(_TOO_LONG.search(message))


def parse_json(data: bytes | str, what: str) -> Any:
    """Decode a provider's JSON; anything else is `BadPayload` naming `what` it should have been."""
    try:
        return decode_json(data)
    except msgspec.DecodeError as exc:
        raise BadPayload(f"{what} is not JSON: {exc}") from None


def function_tools(tools: Iterable[Any], notes: list[str]) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, `function`) of each OpenAI function tool; tools of any other type are dropped and noted."""
    out: list[tuple[int, Mapping[str, Any]]] = []
    for i, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, Mapping):
            notes.append(f"tools[{i}] (type {tool.get('type')!r} unsupported, dropped)")
            continue
        out.append((i, function))
    return out
