"""A fake OpenAI-compatible provider: a real HTTP/1.1 server on 127.0.0.1, no framework.

It speaks OpenAI's exact chat-completions wire format, plain and streamed (including the
`usage: null` fields and the final usage chunk that `stream_options.include_usage` asks for).
What it does is chosen by the upstream model name, so a test config picks a behaviour per model:

    anything else    answers "You said: <last user message>" (streamed one word a chunk)
    fail-<status>    answers that HTTP status with OpenAI's error body (429 adds retry-after: 7)
    hang             never answers (and counts a disconnect when the caller gives up)
    flaky-S-N[-tag]  fails with HTTP S for its first N requests (429s say retry-after: 0.2), then answers
    reset            drops the connection without an answer
    cut0             streams the role-only opening chunk, then drops the connection
    errmid           streams one content chunk and an error event in the same write, then ends
    hedge            answers "I'm not sure, ..." (a low-confidence answer)
    empty            answers with empty content
    drip             streams 200 chunks, 20 ms apart (for timing and disconnect tests)
    stream-N-MS      streams N chunks, MS milliseconds apart (for benchmarks)
    cut              streams two chunks, then drops the connection without [DONE]
    garbage          answers 200 with a body that is not JSON
    deep             answers 200 with JSON nested 5,000 levels deep (a stream: one such event)
    no-usage         answers without any usage object
    huge[-cl]        answers 65 MiB of JSON, chunked (with `-cl`: with its content-length);
                     streamed: as an HTTP 500 error body

Run it alone for benchmarks: `python -m tests.fakes.openai_provider --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from typing import Any

_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def answer_for(body: dict[str, Any]) -> str:
    if body.get("model") == "hedge":
        return "I'm not sure, but it might be 42."
    if body.get("model") == "empty":
        return ""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return "You said: " + (_text(users[-1].get("content")) if users else "")


def usage_for(body: dict[str, Any], answer: str) -> dict[str, Any]:
    prompt = sum(len(_text(m.get("content")).split()) + 4 for m in body.get("messages", []))
    completion = len(answer.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _paced(model: str) -> tuple[int, float]:
    """(chunks, seconds between them) for `drip` and `stream-N-MS`; (0, 0) for an ordinary answer."""
    if model == "drip":
        return 200, 0.02
    if model.startswith("stream-"):
        count, ms = model.removeprefix("stream-").split("-")
        return int(count), int(ms) / 1000
    return 0, 0.0


class FakeOpenAI:
    """The server. `requests` records every (path, headers, body) it received, in order."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.disconnects = 0  # streams whose client went away before the end
        self.counts: dict[str, int] = {}  # requests seen per flaky model
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body = json.loads(raw) if raw else {}
        self.requests.append((path, headers, body))
        if method != "POST" or not path.endswith("/chat/completions"):
            await self._send(
                writer,
                404,
                {"error": {"message": "no such route", "type": "invalid_request_error", "param": None, "code": None}},
            )
            return True
        model = str(body.get("model", ""))
        if model.startswith("fail-"):
            status = int(model.removeprefix("fail-"))
            extra = {"retry-after": "7"} if status == 429 else {}
            await self._send(
                writer,
                status,
                {
                    "error": {
                        "message": f"fake failure {status}",
                        "type": "server_error" if status >= 500 else "invalid_request_error",
                        "param": None,
                        "code": f"fake_{status}",
                    }
                },
                extra,
            )
            return True
        if model.startswith("flaky-"):
            _, status_text, count, *_ = model.split("-")
            seen = self.counts.get(model, 0)
            self.counts[model] = seen + 1
            if seen < int(count):
                status = int(status_text)
                extra = {"retry-after": "0.2"} if status == 429 else {}
                error = {"message": f"flaky {status}", "type": "server_error", "param": None, "code": None}
                await self._send(writer, status, {"error": error}, extra)
                return True
        if model == "hang":
            if not await reader.read(1):
                self.disconnects += 1
            return False
        if model == "reset":
            writer.transport.abort()
            return False
        if model == "garbage":
            await self._send_raw(writer, 200, b"<html>oops</html>", "text/html")
            return True
        if model == "deep":
            nested = b'{"id": "chatcmpl-deep", "choices": ' + b"[" * 5000 + b"]" * 5000 + b"}"
            if body.get("stream"):
                await self._send_raw(writer, 200, b"data: " + nested + b"\n\ndata: [DONE]\n\n", "text/event-stream")
            else:
                await self._send_raw(writer, 200, nested, "application/json")
            return True
        if model in ("huge", "huge-cl"):
            return await self._huge(writer, 500 if body.get("stream") else 200, chunked=model == "huge")
        if body.get("stream"):
            return await self._stream(writer, body, model)
        answer = answer_for(body)
        reply = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        }
        if model != "no-usage":
            reply["usage"] = usage_for(body, answer)
        await self._send(writer, 200, reply)
        return True

    async def _stream(self, writer: asyncio.StreamWriter, body: dict[str, Any], model: str) -> bool:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        answer = answer_for(body)
        count, gap = _paced(model)
        words = [f"w{i} " for i in range(count)] if count else [w + " " for w in answer.split(" ")]
        words[-1] = words[-1].rstrip()
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj: dict[str, Any] = {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                obj["usage"] = None
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
        )
        try:
            await self._chunk(writer, chunk({"role": "assistant", "content": "", "refusal": None}))
            if model == "errmid":
                error = {"error": {"message": "overloaded mid-stream", "type": "server_error", "code": None}}
                both = chunk({"content": "partial"}) + b"data: " + json.dumps(error).encode() + b"\n\n"
                await self._chunk(writer, both)
                await self._chunk(writer, b"")
                return True
            for i, word in enumerate(words):
                if (model == "cut" and i == 2) or model == "cut0":
                    writer.transport.abort()
                    return False
                await self._chunk(writer, chunk({"content": word}))
                if gap:
                    await asyncio.sleep(gap)
            await self._chunk(writer, chunk({}, "stop"))
            if include_usage and model != "no-usage":
                usage = {**base, "choices": [], "usage": usage_for(body, "".join(words))}
                await self._chunk(writer, b"data: " + json.dumps(usage).encode() + b"\n\n")
            await self._chunk(writer, b"data: [DONE]\n\n")
            await self._chunk(writer, b"")
        except ConnectionError:
            self.disconnects += 1
            return False
        return True

    async def _huge(self, writer: asyncio.StreamWriter, status: int, *, chunked: bool) -> bool:
        mib = b"a" * (1 << 20)
        head, tail = b'{"error": {"message": "', b'"}}'
        size = len(head) + 65 * len(mib) + len(tail)
        framing = b"transfer-encoding: chunked" if chunked else b"content-length: %d" % size
        writer.write(b"HTTP/1.1 %d Huge\r\ncontent-type: application/json\r\n%s\r\n\r\n" % (status, framing))
        try:
            for part in (head, *[mib] * 65, tail):
                if chunked:
                    await self._chunk(writer, part)
                else:
                    writer.write(part)
                    await writer.drain()
            if chunked:
                await self._chunk(writer, b"")
        except ConnectionError:
            self.disconnects += 1
            return False
        return True

    @staticmethod
    async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, obj: Any, extra: dict[str, str] | None = None
    ) -> None:
        await self._send_raw(writer, status, json.dumps(obj).encode(), "application/json", extra)

    @staticmethod
    async def _send_raw(
        writer: asyncio.StreamWriter, status: int, data: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Status')}\r\ncontent-type: {ctype}\r\n"
            f"content-length: {len(data)}\r\n"
        )
        head += "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()


class ThreadedFake:
    """Runs a `FakeOpenAI` on its own event loop in a daemon thread, for tests of any flavour."""

    def __init__(self) -> None:
        self.fake = FakeOpenAI()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-openai")

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(5)
        return self.fake

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()

    async def serve() -> None:
        fake = FakeOpenAI()
        fake.requests = _Discard()  # type: ignore[assignment]
        await fake.start(args.port)
        print(f"fake OpenAI provider on {fake.url}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve())


class _Discard(list):  # type: ignore[type-arg]
    """A long-running fake keeps no request log."""

    def append(self, _: object) -> None:
        pass


if __name__ == "__main__":
    main()
