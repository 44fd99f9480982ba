"""The SSE decoder against the spec, with every input split at every byte offset."""

from __future__ import annotations

import pytest

from adapters.sse import MAX_EVENT_BYTES, EventTooLarge, ServerSentEvent, SSEDecoder, encode


def decode_split(data: bytes, *cuts: int) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    last = 0
    for cut in (*cuts, len(data)):
        events += decoder.feed(data[last:cut])
        last = cut
    return events + decoder.close()


STREAMS: dict[str, tuple[bytes, list[ServerSentEvent]]] = {
    "openai": (
        b'data: {"a":1}\n\ndata: {"b":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}\n\ndata: [DONE]\n\n',
        [ServerSentEvent('{"a":1}'), ServerSentEvent('{"b":"é€😀"}'), ServerSentEvent("[DONE]")],
    ),
    "crlf and cr": (
        b"event: ping\r\ndata: x\r\n\r\ndata: y\rdata: z\r\r",
        [ServerSentEvent("x", event="ping"), ServerSentEvent("y\nz")],
    ),
    "comments, bom, fields": (
        b'\xef\xbb\xbf: keep-alive\n\nid: 7\nretry: 1500\nevent: message_start\ndata:{"t":1}\n\n'
        b"data\n\nevent: lonely\n\n",
        [
            ServerSentEvent('{"t":1}', event="message_start", id="7", retry=1500),
            ServerSentEvent("", id="7", retry=1500),
        ],
    ),
    "no final blank line": (b"data: last", [ServerSentEvent("last")]),
    "one leading space only": (b"data:  two\n\n", [ServerSentEvent(" two")]),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_every_single_split_gives_the_same_events(name: str) -> None:
    data, expected = STREAMS[name]
    for cut in range(len(data) + 1):
        assert decode_split(data, cut) == expected, f"split at {cut}"


@pytest.mark.parametrize("name", list(STREAMS))
def test_byte_by_byte(name: str) -> None:
    data, expected = STREAMS[name]
    assert decode_split(data, *range(1, len(data))) == expected


def test_the_spec_example_with_multiline_data() -> None:
    data = b"data: YHOO\ndata: +2\ndata: 10\n\n"
    assert decode_split(data) == [ServerSentEvent("YHOO\n+2\n10")]


def test_encode_frames_one_event() -> None:
    assert encode(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert decode_split(encode(b'{"x":1}')) == [ServerSentEvent('{"x":1}')]


def test_a_line_or_an_event_that_never_ends_is_refused_not_buffered_forever() -> None:
    piece = b"x" * 65536
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    with pytest.raises(EventTooLarge):
        for _ in range(MAX_EVENT_BYTES // len(piece) + 2):  # one line, no end, in 64 KiB reads
            assert decoder.feed(piece) == []
    decoder = SSEDecoder()
    with pytest.raises(EventTooLarge):
        for _ in range(MAX_EVENT_BYTES // len(piece) + 2):  # data lines, never a blank line
            assert decoder.feed(b"data: " + piece + b"\n") == []
    # just under the limit is still one event, in order, however it was cut
    decoder = SSEDecoder()
    events = [e for chunk in (b"data: ", piece, piece, b"\n\n") for e in decoder.feed(chunk)]
    assert [len(e.data) for e in events] == [2 * len(piece)]
