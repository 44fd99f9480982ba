"""The one generic driver: runs any adapter over the upstream layer, plain or streamed.

It knows nothing of HTTP servers. It builds the adapter's request, checks the provider's status
before anything reaches the client, and turns a provider stream into OpenAI SSE bytes, keeping
the adapter's stream state for the ledger. An adapter's `FRAMING` says how its stream arrives:
"sse" bytes to decode (the default), or "ollama", the ollama library's parsed lines.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import msgspec

from adapters.base import Adapter, BadPayload, Reply, StreamFailure, StreamState, Target
from adapters.sse import DONE, EventTooLarge, SSEDecoder, encode
from proxy.errors import StreamInterrupted, UpstreamError, from_provider
from proxy.upstream import OllamaStream, Stream, Upstream


class Deployment(msgspec.Struct, frozen=True):
    """A configured model, resolved and ready to call."""

    name: str
    provider: str
    adapter: str
    target: Target
    timeout: float
    missing_key: str | None = None  # the env var that should hold the provider's key, if unset


def _framing(adapter: Adapter[Any]) -> str:
    framing: str = getattr(adapter, "FRAMING", "sse")
    return framing


def _check_key(deployment: Deployment) -> None:
    if deployment.missing_key:
        raise UpstreamError(
            f"provider {deployment.provider!r} has no API key: set {deployment.missing_key} in the proxy's environment",
            code="provider_key_missing",
        )


# What an adapter's pure functions raise on a provider payload of a shape they do not expect (a
# string where an object was due, a count that is not a number): an answer the proxy cannot read,
# so the client gets 502 bad_upstream_response, never the 500 of a failure of the proxy's own.
_UNREADABLE = (BadPayload, AttributeError, KeyError, IndexError, TypeError, ValueError)


def _bad_payload(deployment: Deployment, exc: Exception) -> UpstreamError:
    what = str(exc) if isinstance(exc, BadPayload) else f"{type(exc).__name__}: {exc}"
    return UpstreamError(
        f"provider {deployment.provider!r} sent a malformed answer: {what}", code="bad_upstream_response"
    )


async def complete(upstream: Upstream, adapter: Adapter[Any], deployment: Deployment, body: Mapping[str, Any]) -> Reply:
    _check_key(deployment)
    request = adapter.build_request(body, deployment.target, stream=False)
    if _framing(adapter) == "ollama":
        response = await upstream.send_ollama(request, deployment.timeout)
    else:
        response = await upstream.send(request, deployment.timeout)
    if response.status >= 400:
        failure = adapter.parse_error(response.status, response.headers, response.body)
        raise from_provider(failure, provider=deployment.provider)
    try:
        reply = adapter.parse_reply(response.body)
    except _UNREADABLE as exc:
        raise _bad_payload(deployment, exc) from None
    reply.notes = request.notes
    return reply


async def open_stream(
    upstream: Upstream, adapter: Adapter[Any], deployment: Deployment, body: Mapping[str, Any]
) -> Stream | OllamaStream:
    """The upstream stream, once its status says it will succeed; else the provider's error."""
    _check_key(deployment)
    request = adapter.build_request(body, deployment.target, stream=True)
    stream: Stream | OllamaStream
    if _framing(adapter) == "ollama":
        stream = await upstream.open_ollama(request, deployment.timeout)
    else:
        stream = await upstream.open_stream(request, deployment.timeout)
    stream.notes = request.notes
    if stream.status >= 400:
        try:
            raw = await stream.read()
        finally:
            await stream.aclose()
        raise from_provider(adapter.parse_error(stream.status, stream.headers, raw), provider=deployment.provider)
    return stream


def _content(choice: Any) -> bool:
    delta = choice.get("delta") if isinstance(choice, dict) else None
    return isinstance(delta, dict) and isinstance(delta.get("content"), str) and bool(delta["content"])


async def relay(
    stream: Stream | OllamaStream,
    adapter: Adapter[Any],
    state: StreamState,
    deployment: Deployment,
    *,
    wants_usage: bool,
    on_content: Callable[[], None],
    text: list[str] | None = None,
) -> AsyncGenerator[bytes, None]:
    """OpenAI SSE bytes from a provider stream; the caller closes `stream`.

    The usage chunk is always asked of the provider (for the ledger) and passed on only when the
    client asked for it. A stream that breaks raises `UpstreamError`; one that ends before the
    provider said it was complete raises `StreamInterrupted`, so a cut answer never looks whole.
    The content sent is appended to `text`, if given, for the ledger to count when usage is missing.
    """
    decoder = SSEDecoder()
    encoder = msgspec.json.Encoder()
    failed: list[Exception] = []

    async def batches() -> AsyncIterator[list[Any]]:
        """The provider's events, a network read at a time."""
        if isinstance(stream, OllamaStream):
            async for line in stream.events():
                yield [line]
        else:
            try:
                async for data in stream.chunks():
                    yield decoder.feed(data)
                yield decoder.close()
            except EventTooLarge as exc:
                raise _bad_payload(deployment, exc) from None

    def translate(events: list[Any]) -> bytes:
        """OpenAI SSE for these events; an error stops the batch but keeps what came before it."""
        out: list[bytes] = []
        try:
            for event in events:
                for chunk in adapter.reduce(state, event):
                    if text is not None:
                        text.extend(c["delta"]["content"] for c in chunk.get("choices") or () if _content(c))
                    if not wants_usage and "usage" in chunk:
                        if not chunk.get("choices"):
                            continue
                        del chunk["usage"]
                    out.append(encode(encoder.encode(chunk)))
        except (StreamFailure, *_UNREADABLE) as exc:
            failed.append(exc)
        return b"".join(out)

    seen_content = False
    async for events in batches():
        out = translate(events)
        if out:
            if not seen_content and state.content_chars:
                seen_content = True
                on_content()
            yield out
        if failed:
            error = failed[0]
            if isinstance(error, StreamFailure):
                raise from_provider(error.failure, provider=deployment.provider)
            raise _bad_payload(deployment, error)
        if state.done:
            break
    if not (state.done or state.finish_reason):
        raise StreamInterrupted(f"provider {deployment.provider!r} ended the stream before it was complete")
    yield DONE
