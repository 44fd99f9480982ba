"""Upstream I/O: the only module that touches httpx, aiohttp and the `ollama` client library.

It sends the `HttpRequest`s adapters build and maps every transport failure into the error tree
in one place (`_mapped`), so the rest of the proxy never sees an httpx, aiohttp or ollama
exception.

Two connection pools, chosen by `server.upstream_transport`: aiohttp's (the default) or httpx's.
aiohttp is called directly: its pool and C parser doubled the throughput of httpx's own pool, and
dropping httpx's client layers on top of it saved another ~0.2 ms a request (bench/README.md).
Tests hand in an httpx transport of their own (e.g. `httpx.MockTransport`).

Ollama requests go through `ollama.AsyncClient`, which answers parsed objects: they come back as
the plain dicts of Ollama's wire format, with its error answers as `Response`s like any other.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import aiohttp
import httpx
import msgspec

from adapters.base import HttpRequest
from proxy.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable

if TYPE_CHECKING:
    # imported where used: `import ollama` builds a client (and an SSL context) at import time,
    # which a proxy without Ollama models should not pay for at start-up
    import ollama

CONNECT_TIMEOUT = 10.0
MAX_CONNECTIONS = 2000
KEEPALIVE_S = 30.0
# The largest answer body read whole (a non-streamed answer, or a stream's error body): a provider
# that sends more gets a 502 instead of the proxy's memory. A streamed answer is bounded per event
# (adapters.sse.MAX_EVENT_BYTES).
MAX_BODY_BYTES = 64 * 1024 * 1024


class Response(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


@contextmanager
def _mapped(url: str, timeout: float) -> Iterator[None]:
    host = urlsplit(url).netloc
    try:
        yield
    except (httpx.TimeoutException, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        raise UpstreamTimeout(f"{host} did not answer within {timeout:g} s") from None
    except (httpx.TransportError, aiohttp.ClientError) as exc:
        detail = str(exc) or type(exc).__name__
        raise UpstreamUnreachable(f"cannot reach {host}: {detail}") from None
    except ConnectionError as exc:  # what the ollama library turns httpx.ConnectError into
        raise UpstreamUnreachable(f"cannot reach {host}: {exc}") from None


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))


def _proxy_in_env() -> bool:
    return any(
        os.environ.get(name) or os.environ.get(name.lower()) for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
    )


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


def _httpx_request(client: httpx.AsyncClient, request: HttpRequest, timeout: float) -> httpx.Request:
    return client.build_request(
        request.method, request.url, headers=request.headers, content=request.body, timeout=_timeout(timeout)
    )


def _too_large(url: str) -> UpstreamError:
    return UpstreamError(
        f"{urlsplit(url).netloc} sent an answer over {MAX_BODY_BYTES >> 20} MiB", code="bad_upstream_response"
    )


async def _gathered(chunks: AsyncIterator[bytes], url: str) -> bytes:
    """A body read whole, up to MAX_BODY_BYTES."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(url)
        parts.append(chunk)
    return b"".join(parts)


async def _aiohttp_body(answer: aiohttp.ClientResponse, url: str) -> bytes:
    length = answer.content_length
    if length is None or "content-encoding" in answer.headers:  # the size is known once it is read
        return await _gathered(answer.content.iter_any(), url)
    if length > MAX_BODY_BYTES:
        raise _too_large(url)  # said so up front: not one byte of it is read
    return await answer.read()


class Stream:
    """An open upstream response whose body is still to come. Always `aclose()` it."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        body: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]],
        url: str,
        timeout: float,
    ) -> None:
        self.status = status
        self.headers = headers
        self.notes: tuple[str, ...] = ()  # the adapter's request notes, for the handler to report
        self._body = body
        self._close = close
        self._url = url
        self._timeout = timeout

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, content-encoding removed; `timeout` bounds each wait."""
        with _mapped(self._url, self._timeout):
            async for chunk in self._body:
                yield chunk

    async def read(self) -> bytes:
        """The rest of the body, up to MAX_BODY_BYTES (an error answer's, in practice)."""
        return await _gathered(self.chunks(), self._url)

    async def aclose(self) -> None:
        await self._close()


class Upstream:
    """A pooled HTTP client for every provider. Built in the app's lifespan, closed with it.

    `transport`: "aiohttp" (the default) or "httpx" picks the pool; an httpx transport object
    (tests) is used through httpx.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | Literal["aiohttp", "httpx"] = "aiohttp") -> None:
        self._session: aiohttp.ClientSession | None = None
        self._client: httpx.AsyncClient | None = None
        self._transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        if transport != "aiohttp":
            limits = httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=500, keepalive_expiry=KEEPALIVE_S
            )
            self._client = httpx.AsyncClient(transport=self._transport, limits=limits, follow_redirects=False)
        self._ollama: dict[tuple[str, tuple[tuple[str, str], ...], float], ollama.AsyncClient] = {}

    def _aiohttp(self) -> aiohttp.ClientSession:
        # built on first use, inside the running loop that will own it
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(
                connector=connector,
                skip_auto_headers=("user-agent", "accept-encoding", "content-type"),
                # HTTP(S)_PROXY / NO_PROXY, as httpx honours them; only when one is set, since
                # aiohttp then re-reads the environment (and ~/.netrc) on every request
                trust_env=_proxy_in_env(),
            )
        return self._session

    def _aiohttp_request(self, request: HttpRequest, timeout: float) -> Any:
        """aiohttp's request, awaitable (the response) or `async with` (released after the block)."""
        return self._aiohttp().request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(timeout, CONNECT_TIMEOUT), sock_read=timeout),
            allow_redirects=False,
        )

    async def send(self, request: HttpRequest, timeout: float) -> Response:
        """The whole answer, within `timeout` seconds from first byte sent to last byte read.

        A body over MAX_BODY_BYTES is an `UpstreamError` (502 bad_upstream_response).
        """
        with _mapped(request.url, timeout):
            async with asyncio.timeout(timeout):
                if self._client is None:
                    async with self._aiohttp_request(request, timeout) as answer:
                        body = await _aiohttp_body(answer, request.url)
                        return Response(answer.status, _headers(answer.raw_headers), body)
                response = await self._client.send(_httpx_request(self._client, request, timeout), stream=True)
                try:
                    body = await _gathered(response.aiter_bytes(), request.url)
                finally:
                    await response.aclose()
        return Response(response.status_code, _headers(response.headers.raw), body)

    async def open_stream(self, request: HttpRequest, timeout: float) -> Stream:
        """Send and wait for the status line; `timeout` also bounds each wait for the next chunk."""
        with _mapped(request.url, timeout):
            if self._client is None:
                answer = await self._aiohttp_request(request, timeout)

                async def close() -> None:
                    answer.close()  # close, not release: an unread body must not go back to the pool

                body = answer.content.iter_any()
                return Stream(answer.status, _headers(answer.raw_headers), body, close, request.url, timeout)
            response = await self._client.send(_httpx_request(self._client, request, timeout), stream=True)
        headers = _headers(response.headers.raw)
        return Stream(response.status_code, headers, response.aiter_bytes(), response.aclose, request.url, timeout)

    def _ollama_client(self, request: HttpRequest, timeout: float) -> ollama.AsyncClient:
        """One library client per host, headers and timeout (the library fixes them per client)."""
        import ollama

        host = request.url.removesuffix("/api/chat")
        headers = tuple(sorted((k, v) for k, v in request.headers.items() if k != "content-type"))
        client = self._ollama.get((host, headers, timeout))
        if client is None:
            extra: dict[str, Any] = {"transport": self._transport} if self._transport is not None else {}
            client = ollama.AsyncClient(
                host=host, headers=dict(headers), timeout=_timeout(timeout), follow_redirects=False, **extra
            )
            self._ollama[host, headers, timeout] = client
        return client

    async def send_ollama(self, request: HttpRequest, timeout: float) -> Response:
        """An `/api/chat` answer via the ollama library, as Ollama's JSON (or its error) in a `Response`."""
        import ollama

        client = self._ollama_client(request, timeout)
        with _mapped(request.url, timeout):
            async with asyncio.timeout(timeout):
                try:
                    answer = await client.chat(**_chat_args(request.body), stream=False)
                except ollama.ResponseError as exc:
                    return _ollama_failure(exc)
                except (ollama.RequestError, ValueError) as exc:  # the library refused the body
                    return Response(400, {}, msgspec.json.encode({"error": str(exc)}))
        return Response(200, {}, msgspec.json.encode(answer.model_dump(mode="json", exclude_none=True)))

    async def open_ollama(self, request: HttpRequest, timeout: float) -> OllamaStream:
        """A streamed `/api/chat` answer, once its first line (or its error status) has come."""
        import ollama

        client = self._ollama_client(request, timeout)
        with _mapped(request.url, timeout):
            try:
                parts = await client.chat(**_chat_args(request.body), stream=True)
            except (ollama.RequestError, ValueError) as exc:
                return OllamaStream(400, request.url, timeout, body=msgspec.json.encode({"error": str(exc)}))
            stream = OllamaStream(200, request.url, timeout, parts=parts)
            try:
                async with asyncio.timeout(timeout):
                    await stream.start()
            except ollama.ResponseError as exc:
                failure = _ollama_failure(exc)
                return OllamaStream(failure.status, request.url, timeout, body=failure.body)
            except BaseException:
                await stream.aclose()
                raise
        return stream

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._client is not None:
            await self._client.aclose()
        for client in self._ollama.values():
            await client.close()  # type: ignore[no-untyped-call]  # the library leaves it unannotated
        self._ollama.clear()


_CHAT_ARGS = ("model", "messages", "tools", "format", "options", "think", "keep_alive")


def _chat_args(body: bytes) -> dict[str, Any]:
    raw: Mapping[str, Any] = msgspec.json.decode(body)
    return {name: raw[name] for name in _CHAT_ARGS if name in raw}


def _ollama_failure(exc: ollama.ResponseError) -> Response:
    # a status below 400 means the error came as a line inside a 200 answer
    status = exc.status_code if exc.status_code >= 400 else 500
    return Response(status, {}, msgspec.json.encode({"error": str(exc.error)}))


class OllamaStream:
    """A streamed `/api/chat` answer from the ollama library; its lines come as plain dicts.

    An `{"error": ...}` line, which the library raises, is handed on as the dict it was on the
    wire, so the adapter reports it like any other stream error. Always `aclose()` it.
    """

    def __init__(
        self,
        status: int,
        url: str,
        timeout: float,
        *,
        parts: AsyncIterator[ollama.ChatResponse] | None = None,
        body: bytes = b"",
    ) -> None:
        self.status = status
        self.headers: dict[str, str] = {}
        self.notes: tuple[str, ...] = ()
        self._url = url
        self._timeout = timeout
        self._parts = parts
        self._first: dict[str, Any] | None = None
        self._body = body

    async def start(self) -> None:
        """Wait for the first line, so an error status is known before the client gets a 200."""
        if self._parts is not None:
            try:
                self._first = _dump(await anext(self._parts))
            except StopAsyncIteration:
                self._parts = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        import ollama

        if self._first is not None:
            first, self._first = self._first, None
            yield first
        if self._parts is None:
            return
        with _mapped(self._url, self._timeout):
            try:
                async for part in self._parts:
                    yield _dump(part)
            except ollama.ResponseError as exc:
                yield {"error": str(exc.error)}

    async def read(self) -> bytes:
        return self._body

    async def aclose(self) -> None:
        if isinstance(self._parts, AsyncGenerator):
            await self._parts.aclose()


def _dump(part: ollama.ChatResponse) -> dict[str, Any]:
    dumped: dict[str, Any] = part.model_dump(mode="json", exclude_none=True)
    return dumped
