"""Server-sent events, decoded per the WHATWG spec and encoded the way OpenAI streams them.

The decoder is incremental: feed it bytes exactly as they arrive, split anywhere (inside a
UTF-8 character, between CR and LF), and it returns the events completed so far.
"""

from __future__ import annotations

import msgspec

# An event bigger than this (its data lines together, or one line still waiting for its end) is
# not a provider's chunk but a broken stream: buffered, it would grow without bound.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class EventTooLarge(ValueError):
    """A stream's event, or one line of it, is over MAX_EVENT_BYTES."""


class ServerSentEvent(msgspec.Struct, frozen=True):
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns a byte stream into `ServerSentEvent`s.

    Line ends are CRLF, LF or CR; a leading BOM is dropped; comment lines (":") are skipped;
    an event without data is not dispatched. At end of stream `close()` returns an event whose
    blank line never came: providers that forget it should not lose their last message.
    """

    __slots__ = (
        "_buffer",
        "_data",
        "_data_size",
        "_event",
        "_id",
        "_retry",
        "_skip_lf",
        "_started",
        "_tail",
        "_tail_size",
    )

    def __init__(self) -> None:
        self._buffer = b""  # the first bytes, until a BOM can be told apart
        self._tail: list[bytes] = []  # an unterminated line, in the pieces it came in
        self._tail_size = 0
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._skip_lf = False
        self._started = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if not self._started:
            chunk = self._buffer + chunk
            self._buffer = b""
            if len(chunk) < 3 and b"\xef\xbb\xbf".startswith(chunk):
                self._buffer = chunk
                return []
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
        if b"\n" not in chunk and b"\r" not in chunk:  # a line still going on: keep the piece, join later
            self._keep(chunk)
            return []
        data = b"".join((*self._tail, chunk)) if self._tail else chunk
        self._tail, self._tail_size = [], 0
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._keep(lines.pop())
        if lines and lines[-1].endswith(b"\r"):
            self._skip_lf = True  # the LF of a CRLF may open the next chunk
        events: list[ServerSentEvent] = []
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream: process a last unterminated line and dispatch what is pending."""
        events: list[ServerSentEvent] = []
        if self._tail or self._buffer:
            line = b"".join(self._tail) or self._buffer
            self._tail, self._tail_size, self._buffer = [], 0, b""
            self._line(line.decode("utf-8", "replace"))
        event = self._line("")
        if event is not None:
            events.append(event)
        return events

    def _keep(self, piece: bytes) -> None:
        self._tail.append(piece)
        self._tail_size += len(piece)
        if self._tail_size > MAX_EVENT_BYTES:
            raise EventTooLarge(f"a stream line is over {MAX_EVENT_BYTES} bytes")

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(
                data="\n".join(self._data), event=self._event or "message", id=self._id, retry=self._retry
            )
            self._data, self._data_size = [], 0
            self._event = ""
            return event
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data_size += len(value)
            if self._data_size > MAX_EVENT_BYTES:
                raise EventTooLarge(f"a stream event is over {MAX_EVENT_BYTES} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def encode(data: bytes) -> bytes:
    """One `data:` event, as OpenAI frames it. `data` must hold no line breaks (JSON does not)."""
    return b"data: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
