"""Upstream I/O: the only module that touches httpx.

It sends the `HttpRequest`s adapters build and maps every transport failure into the error tree
in one place (`_mapped`), so the rest of the proxy never sees an httpx exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import msgspec

from adapters.base import HttpRequest
from proxy.errors import UpstreamTimeout, UpstreamUnreachable

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

    async def chunks(self) -> AsyncIterator[bytes]:
        with _mapped(self._url, self._timeout):
            async for chunk in self._response.aiter_raw():
                yield chunk

    async def read(self) -> bytes:
        with _mapped(self._url, self._timeout):
            return await self._response.aread()

    async def aclose(self) -> None:
        await self._response.aclose()


class Upstream:
    """A pooled HTTP client for every provider. Built in the app's lifespan, closed with it."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500, keepalive_expiry=30)
        self._client = httpx.AsyncClient(transport=transport, limits=limits, follow_redirects=False)

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

    async def aclose(self) -> None:
        await self._client.aclose()
