"""The contract every provider adapter meets, and the plain data that crosses it.

An adapter never performs I/O. The proxy hands it the client's request body (a dict it must not
mutate) and a `Target`; it returns an `HttpRequest` for the upstream layer to send. Answers come
back as bytes (`parse_reply`, `parse_error`) or, for streams, as decoded server-sent events fed one
at a time to `reduce`, which updates the adapter's own stream state and returns the OpenAI
`chat.completion.chunk` objects to send on. Events it does not know are skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import msgspec

from adapters.sse import ServerSentEvent


class Target(msgspec.Struct, frozen=True):
    """Where one model lives: the provider's own model name, API root and credentials."""

    model: str
    base_url: str
    api_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class HttpRequest(msgspec.Struct, frozen=True):
    """What to send. `notes` name the client parameters the adapter mapped or dropped because the
    provider cannot honour them as sent (e.g. "seed (unsupported, dropped)"); the proxy reports them
    in the `x-router-dropped-params` response header, so no request changes meaning silently."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    notes: tuple[str, ...] = ()


class Usage(msgspec.Struct):
    """Token counts as the provider reported them; `cached_tokens` are part of `prompt_tokens`."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class Reply(msgspec.Struct):
    """A complete (non-streamed) answer, already in OpenAI's `chat.completion` form."""

    body: bytes
    usage: Usage | None
    finish_reason: str | None
    content: str | None
    notes: tuple[str, ...] = ()  # the request's notes, attached by the relay for the handler


class ProviderFailure(msgspec.Struct):
    """What a provider's error answer said, before the proxy maps it to its own error tree."""

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    retry_after: str | None = None


class BadPayload(Exception):
    """The provider answered 2xx with something that is not its wire format."""


class StreamFailure(Exception):
    """The provider reported an error inside a stream that had already begun."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class StreamState:
    """What every adapter's stream state tracks; adapters subclass it for their own needs."""

    __slots__ = ("content_chars", "done", "finish_reason", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.content_chars = 0
        self.done = False


S = TypeVar("S", bound=StreamState)


class Adapter(Protocol[S]):
    """A provider wire format. Implemented by modules: see `adapters.openai`.

    A module may set `FRAMING` to say how its stream reaches `reduce`: "sse" (the default) feeds
    decoded `ServerSentEvent`s; "ollama" feeds the plain dicts the upstream layer gets from the
    `ollama` client library, whose adapter accepts both.
    """

    def build_request(self, body: Mapping[str, Any], target: Target, *, stream: bool) -> HttpRequest: ...

    def parse_reply(self, body: bytes) -> Reply: ...

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderFailure: ...

    def new_stream(self) -> S: ...

    def reduce(self, state: S, event: ServerSentEvent) -> list[dict[str, Any]]: ...


def json_decoder(type_: Any = Any) -> Callable[[bytes | str], Any]:
    """msgspec's JSON decoder for `type_`, which reports nesting deeper than the interpreter's
    recursion limit (msgspec counts against it) as the `msgspec.DecodeError` it is, not a
    RecursionError: a provider's malformed body is a bad payload, never the proxy's own failure."""
    decode = msgspec.json.Decoder(type_).decode

    def decoding(data: bytes | str) -> Any:
        try:
            return decode(data)
        except RecursionError:
            raise msgspec.DecodeError("JSON is nested too deeply") from None

    return decoding


def usage_from_openai(raw: Mapping[str, Any] | None) -> Usage | None:
    """OpenAI's `usage` object (also what Groq, DeepSeek, vLLM and Together send)."""
    if not raw:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        # DeepSeek reports cache hits as prompt_cache_hit_tokens
        cached_tokens=int(prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )
