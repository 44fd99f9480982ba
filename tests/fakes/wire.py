"""A tiny real HTTP/1.1 server for fake providers that replay recorded wire-format fixtures.

A fake subclasses `FixtureServer` and implements `answer(method, path, headers, body)`, returning
an `Answer`: a status, headers and either a whole body or a list of pieces sent with chunked
transfer encoding (so a stream really reaches the proxy split across many network reads).
`requests` keeps every (method, path, headers, JSON body) received, for tests to inspect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from adapters.sse import SSEDecoder

FIXTURES = Path(__file__).parent.parent / "fixtures"


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[bytes] | None = None  # set for a chunked (streamed) answer


def pieces(data: bytes, size: int = 7) -> list[bytes]:
    """A recorded stream cut into small pieces, so frames straddle network reads."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class FixtureServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        raise NotImplementedError

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                body = json.loads(raw) if raw else None
                self.requests.append((method, path, headers, body))
                await self._send(writer, self.answer(method, path, headers, body))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, answer: Answer) -> None:
        head = f"HTTP/1.1 {answer.status} Fake\r\ncontent-type: {answer.content_type}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
        if answer.pieces is None:
            writer.write(f"{head}content-length: {len(answer.body)}\r\n\r\n".encode() + answer.body)
            await writer.drain()
            return
        writer.write(f"{head}transfer-encoding: chunked\r\n\r\n".encode())
        for piece in answer.pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


S = TypeVar("S", bound=FixtureServer)


class Threaded(Generic[S]):
    """Runs a fake on its own event loop in a daemon thread: `with Threaded(Fake()) as fake:`."""

    def __init__(self, server: S) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-provider")

    def __enter__(self) -> S:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(5)
        return self.server

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def sse_events_split_everywhere(data: bytes) -> list[Any]:
    """The events of a recorded SSE stream, checked to be the same however the bytes are split.

    Feeds the decoder every two-piece split (data[:i], data[i:]) and one byte at a time; any
    difference from the unsplit decoding fails the calling test.
    """

    def decode(parts: list[bytes]) -> list[Any]:
        decoder = SSEDecoder()
        events = [event for part in parts for event in decoder.feed(part)]
        return events + decoder.close()

    reference = decode([data])
    for i in range(len(data) + 1):
        assert decode([data[:i], data[i:]]) == reference, f"split at byte {i} changed the events"
    assert decode([data[i : i + 1] for i in range(len(data))]) == reference, "byte-at-a-time changed the events"
    return reference
