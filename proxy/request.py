"""The small view of a chat request the proxy reads; everything else is forwarded untouched."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from adapters.base import json_decoder
from proxy.errors import InvalidRequest

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Message(msgspec.Struct, frozen=True):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None  # only its shape: the adapters read the items


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct, frozen=True):
    model: str
    messages: Annotated[list[Message], msgspec.Meta(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Positive | None = None
    max_completion_tokens: Positive | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    tools: list[dict[str, Any]] | None = None  # only its shape: the adapters read the items

    @property
    def wants_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


_json = json_decoder()  # nesting past the recursion limit is a DecodeError too
_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def decode(body: bytes) -> tuple[dict[str, Any], ChatRequest]:
    """The body as the client sent it (to forward) and its validated view (to act on)."""
    try:
        raw = _json(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        view = msgspec.convert(raw, ChatRequest)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = _PATH.search(text) or _MISSING.search(text)
        param = where.group(1) if where and where.group(1) else None
        raise InvalidRequest(f"Invalid request: {text}", param=param, code="invalid_value") from None
    return raw, view
