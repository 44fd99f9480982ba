"""The server's coalescing transport: a response head goes out with the first body bytes, in order."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from proxy.serving import Coalescing
from tests.conftest import ProxyServer

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class Recording:
    """The part of a transport `Coalescing` calls, recording each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def coalescing() -> tuple[Coalescing, Recording]:
    recording = Recording()
    return Coalescing(recording, asyncio.get_running_loop()), recording  # type: ignore[arg-type]


async def test_head_and_first_body_leave_in_one_write() -> None:
    transport, recording = coalescing()
    transport.write(HEAD)
    assert recording.writes == []
    assert transport.get_write_buffer_size() == len(HEAD)
    transport.write(b"5\r\nhello\r\n")
    transport.write(b"0\r\n\r\n")
    assert recording.writes == [HEAD + b"5\r\nhello\r\n", b"0\r\n\r\n"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert len(recording.writes) == 2


async def test_a_head_alone_goes_out_on_the_loops_next_turn() -> None:
    transport, recording = coalescing()
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert recording.writes == [HEAD]
    transport.write(b"5\r\nhello\r\n")
    assert recording.writes == [HEAD, b"5\r\nhello\r\n"]


async def test_other_writes_pass_straight_through() -> None:
    transport, recording = coalescing()
    transport.write(b"5\r\nhello\r\n")
    transport.write(b"HTTP/1.1 100 Continue")  # not a whole head: no \r\n\r\n
    assert recording.writes == [b"5\r\nhello\r\n", b"HTTP/1.1 100 Continue"]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's own


async def test_close_sends_a_held_head_first_and_abort_drops_it() -> None:
    transport, recording = coalescing()
    transport.write(HEAD)
    transport.close()
    assert recording.writes == [HEAD] and recording.closed
    transport, recording = coalescing()
    transport.write(HEAD)
    transport.abort()
    await asyncio.sleep(0)
    assert recording.writes == [] and recording.aborted


async def late_body(scope: Any, receive: Any, send: Any) -> None:
    """Sends its head at once and its body 300 ms later."""
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"].removeprefix("lifespan.")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await asyncio.sleep(0.3)
    await send({"type": "http.response.body", "body": b"late", "more_body": False})


def test_the_server_sends_a_head_before_a_late_body() -> None:
    with ProxyServer(late_body) as server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        first = sock.recv(65536)
        waited = time.monotonic() - started
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"late" not in first and waited < 0.25  # the head did not wait for the body
        rest = b""
        while b"late" not in rest:
            rest += sock.recv(65536)
