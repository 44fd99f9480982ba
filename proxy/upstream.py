"""Upstream I/O: the only module that touches httpx, aiohttp and the `ollama` client library.

It sends the `HttpRequest`s adapters build and maps every transport failure into the error tree
in one place (`_mapped`), so the rest of the proxy never sees an httpx or ollama exception.

The proxy speaks httpx's interface; underneath, by default, is aiohttp's connection pool
(`AiohttpTransport`), measured at about twice the throughput of httpx's own pool for one
connection and four times for 32 (README, "Benchmarks").

Ollama requests go through `ollama.AsyncClient`, which answers parsed objects: they come back as
the plain dicts of Ollama's wire format, with its error answers as `Response`s like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import aiohttp
import httpx
import msgspec

from adapters.base import HttpRequest
from proxy.errors import UpstreamTimeout, UpstreamUnreachable

if TYPE_CHECKING:
    # imported where used: `import ollama` builds a client (and an SSL context) at import time,
    # which a proxy without Ollama models should not pay for at start-up
    import ollama

CONNECT_TIMEOUT = 10.0


class Response(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


@contextmanager
def _mapped(url: str, timeout: float) -> Iterator[None]:
    host = urlsplit(url).netloc
    try:
        yield
    except (httpx.TimeoutException, TimeoutError):
        raise UpstreamTimeout(f"{host} did not answer within {timeout:g} s") from None
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise UpstreamUnreachable(f"cannot reach {host}: {detail}") from None
    except ConnectionError as exc:  # what the ollama library turns httpx.ConnectError into
        raise UpstreamUnreachable(f"cannot reach {host}: {exc}") from None


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))


class Stream:
    """An open upstream response whose body is still to come. Always `aclose()` it."""

    def __init__(self, response: httpx.Response, url: str, timeout: float) -> None:
        self._response = response
        self._url = url
        self._timeout = timeout
        self.status = response.status_code
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers.raw}
        self.notes: tuple[str, ...] = ()  # the adapter's request notes, for the handler to report

    async def chunks(self) -> AsyncIterator[bytes]:
        with _mapped(self._url, self._timeout):
            async for chunk in self._response.aiter_raw():
                yield chunk

    async def read(self) -> bytes:
        with _mapped(self._url, self._timeout):
            return await self._response.aread()

    async def aclose(self) -> None:
        await self._response.aclose()


class _AiohttpBody(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the provider's next bytes") from None
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        self._response.close()  # close, not release: an unread body must not go back to the pool


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over aiohttp's connection pool and C-accelerated HTTP parser.

    httpx still builds requests and decodes content-encodings (aiohttp's own decompression is
    off); aiohttp's failures become the httpx exceptions `_mapped` already translates.
    """

    def __init__(self, connections: int = 2000, keepalive: float = 30) -> None:
        self._connections = connections
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # built on first use, inside the running loop that will own it
        connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=self._keepalive)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("user-agent", "accept-encoding", "content-type"),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k != b"Host"]
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=request.content,
                timeout=timeout,
                allow_redirects=False,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out waiting for the provider") from None
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc)) from None
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from None
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_AiohttpBody(response),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Upstream:
    """A pooled HTTP client for every provider. Built in the app's lifespan, closed with it.

    `transport` defaults to `AiohttpTransport`; `"httpx"` picks httpx's own pool; tests pass a
    transport of their own (e.g. `httpx.MockTransport`).
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | Literal["aiohttp", "httpx"] = "aiohttp") -> None:
        pool: httpx.AsyncBaseTransport | None
        if transport == "aiohttp":
            pool = AiohttpTransport()
        elif transport == "httpx":
            pool = None  # httpx's own
        else:
            pool = transport
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500, keepalive_expiry=30)
        self._client = httpx.AsyncClient(transport=pool, limits=limits, follow_redirects=False)
        self._transport = pool
        self._ollama: dict[tuple[str, tuple[tuple[str, str], ...], float], ollama.AsyncClient] = {}

    async def send(self, request: HttpRequest, timeout: float) -> Response:
        """The whole answer, within `timeout` seconds from first byte sent to last byte read."""
        with _mapped(request.url, timeout):
            async with asyncio.timeout(timeout):
                response = await self._client.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.body,
                    timeout=_timeout(timeout),
                )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers.raw}
        return Response(response.status_code, headers, response.content)

    async def open_stream(self, request: HttpRequest, timeout: float) -> Stream:
        """Send and wait for the status line; `timeout` also bounds each wait for the next chunk."""
        built = self._client.build_request(
            request.method, request.url, headers=request.headers, content=request.body, timeout=_timeout(timeout)
        )
        with _mapped(request.url, timeout):
            response = await self._client.send(built, stream=True)
        return Stream(response, request.url, timeout)

    def _ollama_client(self, request: HttpRequest, timeout: float) -> ollama.AsyncClient:
        """One library client per host, headers and timeout (the library fixes them per client)."""
        import ollama

        host = request.url.removesuffix("/api/chat")
        headers = tuple(sorted((k, v) for k, v in request.headers.items() if k != "content-type"))
        client = self._ollama.get((host, headers, timeout))
        if client is None:
            extra: dict[str, Any] = {"transport": self._transport} if self._transport else {}
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
