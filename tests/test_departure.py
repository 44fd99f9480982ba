"""The disconnect watcher and the streamed response, driven through ASGI's receive/send directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from proxy.departure import ClientClosed, Departure


class Client:
    """ASGI receive/send for one request whose body was already read: receive blocks until `leave()`."""

    def __init__(self) -> None:
        self.left = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.finished: list[bool] = []  # what the stream's `finish(gone)` was called with

    def leave(self) -> None:
        self.left.set()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        await asyncio.sleep(0)

    async def finish(self, gone: bool) -> None:
        self.finished.append(gone)


async def test_guard_returns_the_result_while_the_client_stays() -> None:
    client = Client()
    departure = Departure(client.receive)
    assert await departure.guard(asyncio.sleep(0.01, result="answer")) == "answer"
    departure.stop()
    assert not departure.gone


async def test_guard_cancels_the_work_when_the_client_leaves() -> None:
    client = Client()
    departure = Departure(client.receive)
    cancelled = asyncio.Event()

    async def provider_call() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "too late"

    asyncio.get_running_loop().call_later(0.02, client.leave)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ClientClosed):
        await departure.guard(provider_call())
    assert cancelled.is_set() and asyncio.get_running_loop().time() - started < 1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0, "the request task must not stay marked as cancelled"
    await asyncio.sleep(0)  # and it is not cancelled later either


async def test_a_client_gone_before_the_wait_never_starts_the_work() -> None:
    client = Client()
    departure = Departure(client.receive)
    client.leave()
    await asyncio.sleep(0.01)
    started: list[bool] = []

    async def provider_call() -> None:
        started.append(True)

    work = provider_call()
    with pytest.raises(ClientClosed):
        await departure.guard(work)
    assert started == [] and work.cr_frame is None, "the work must be closed, not left never awaited"


async def test_a_cancellation_that_is_not_the_clients_goes_through() -> None:
    client = Client()
    departure = Departure(client.receive)
    task = asyncio.ensure_future(departure.guard(asyncio.sleep(10)))
    await asyncio.sleep(0.01)
    task.cancel()  # e.g. the server shutting down
    with pytest.raises(asyncio.CancelledError):
        await task
    departure.stop()


async def pieces(closed: list[str], count: int, gap: float) -> AsyncGenerator[bytes, None]:
    try:
        for i in range(count):
            await asyncio.sleep(gap)
            yield b"data: %d\n\n" % i
    finally:
        closed.append("upstream closed")


async def test_stream_sends_every_piece_then_ends_and_finishes_once() -> None:
    client = Client()
    departure = Departure(client.receive)
    closed: list[str] = []
    await departure.stream(client.send, [(b"content-type", b"text/event-stream")], pieces(closed, 3, 0), client.finish)
    assert client.sent[0] == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/event-stream")],
    }
    assert [m["body"] for m in client.sent[1:]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
    assert [m["more_body"] for m in client.sent[1:]] == [True, True, True, False]
    assert client.finished == [False] and closed == ["upstream closed"]


async def test_stream_stops_when_the_client_leaves_and_says_so() -> None:
    client = Client()
    departure = Departure(client.receive)
    closed: list[str] = []
    asyncio.get_running_loop().call_later(0.05, client.leave)
    started = asyncio.get_running_loop().time()
    await departure.stream(client.send, [], pieces(closed, 1000, 0.01), client.finish)  # returns, does not raise
    assert asyncio.get_running_loop().time() - started < 1, "kept streaming to nobody"
    assert client.finished == [True] and closed == ["upstream closed"]
    assert client.sent[-1]["more_body"] is True  # no clean end was sent
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
