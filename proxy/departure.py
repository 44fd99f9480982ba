"""Noticing a client that leaves, and answers (whole or streamed) as bare ASGI apps.

One watcher task per request waits for `http.disconnect`. While the request's own task is inside
a guarded wait (the provider call, the stream), the watcher cancels that task, so the provider
call closes at once; the guard turns the cancellation into `ClientClosed`. Outside a guard it only
notes that the client left. One task instead of two per wait, and no Litestar task group per
stream, took ~0.15 ms off the time to first token (bench/README.md).

uvicorn's `send` returns silently once the client is gone, so without the watcher a stream would
keep reading (and paying for) the provider's answer until its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class ClientClosed(Exception):
    """The client left before its answer was ready."""


class Departure:
    """Watches one request's connection; see the module docstring."""

    __slots__ = ("_armed", "_task", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None, "a Departure is made inside the request's task"
        self._task = task
        self._armed = False
        self.gone = False
        self._watcher: asyncio.Task[None] | None = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self._armed:
            self._task.cancel()

    def stop(self) -> None:
        """No more watching (the answer is complete, or handed to another watcher)."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def _arm(self, work: Awaitable[Any] | None = None) -> None:
        if self.gone:
            if asyncio.iscoroutine(work):
                work.close()  # never started: nothing to cancel, and no "never awaited" warning
            raise ClientClosed
        self._armed = True

    def _ours(self, exc: BaseException) -> bool:
        # The watcher cancels at most once, and only while armed: a cancellation seen then, with
        # the client gone, is ours. uncancel() keeps the task from being cancelled again later.
        if isinstance(exc, asyncio.CancelledError) and self.gone and self._task.cancelling():
            self._task.uncancel()
            return True
        return False

    async def guard(self, work: Awaitable[T]) -> T:
        """`work`'s result; `ClientClosed` (with `work` cancelled) if the client leaves first."""
        self._arm(work)
        try:
            return await work
        except asyncio.CancelledError as exc:
            if self._ours(exc):
                raise ClientClosed from None
            raise
        finally:
            self._armed = False

    async def stream(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        body: AsyncGenerator[bytes, None],
        finish: Callable[[bool], Awaitable[None]],
    ) -> None:
        """Send a 200 start, then each piece of `body`; `finish(gone)` runs last, whatever happens.

        A client that leaves cancels the wait for the next piece; `body` is closed (its upstream
        with it) and `finish(True)` records it.
        """
        gone = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            self._arm()
            try:
                async for piece in body:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
            except asyncio.CancelledError as exc:
                if not self._ours(exc):
                    raise
                gone = True
                return
            finally:
                self._armed = False
            # uvicorn answers `receive` with a disconnect once the response is complete: stop first
            self.stop()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ClientClosed:
            gone = True
        finally:
            self.stop()
            await body.aclose()
            await finish(gone)


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class Answer:
    """A whole JSON answer: the head and the body in two sends, which `serving.py` writes at once."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        self.headers += _encoded(headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class SSEResponse:
    """A streamed answer: the chat handler awaits it with its own scope, receive and send."""

    __slots__ = ("body", "departure", "finish", "headers")

    def __init__(
        self,
        departure: Departure,
        headers: Mapping[str, str],
        body: AsyncGenerator[bytes, None],
        finish: Callable[[bool], Awaitable[None]],
    ) -> None:
        self.departure = departure
        self.headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        self.headers += _encoded(headers)
        self.body = body
        self.finish = finish

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.departure.stream(send, self.headers, self.body, self.finish)
