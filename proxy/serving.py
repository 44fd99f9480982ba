"""The HTTP server: uvicorn (httptools), with each response's head and first body bytes in one write.

uvicorn writes a response's status line and headers the moment the app sends
`http.response.start`, and the body with the next message: two `send` syscalls, and on a small VM
two wake-ups of the client, for an answer that is ready at once (the proxy sends a stream's start
only when its first content is in hand). `Coalescing` holds a response head until the next write
on the connection, or until the event loop's next turn if none comes in this one, and sends them
together. Measured in bench/README.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class Coalescing:
    """A transport that sends a held response head together with the write that follows it.

    Order is kept: held bytes always go out before anything written after them, and before the
    connection closes. Everything but `write`, `close`, `abort` and the buffer size is the wrapped
    transport's own.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self.flush)  # a head alone waits one turn of the loop at most
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `Coalescing` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Coalescing(transport, self.loop))  # type: ignore[arg-type]


def config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's config for serving `app` with `Protocol`; `smr serve` and the tests both use it."""
    return uvicorn.Config(app, host=host, port=port, http=Protocol, access_log=False, **options)
