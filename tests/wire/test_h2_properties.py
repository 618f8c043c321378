"""infergraph's HTTP/2 frames and HPACK held against independent implementations: the
``hyperframe`` and ``hpack`` packages (what the ``h2`` library is built on).

Property tests, so hypothesis picks the header lists, frame sequences and the places a
byte stream is cut: the frame reader must see the same frames however the socket
delivers them, our frames must parse as hyperframe reads them, and our header blocks
must decode, and hpack's decode through ours, to the headers they were made from.
"""

from __future__ import annotations

from typing import Any

import hpack
import pytest
from hyperframe import frame as hf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infergraph.wire import http2

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# names as HTTP/2 sends them (lowercase tokens) and values of any octets but CR/LF/NUL
names = st.binary(min_size=1, max_size=40).map(
    lambda b: bytes(97 + c % 26 for c in b)  # a-z
) | st.sampled_from([b"content-type", b"user-agent", b"date", b"grpc-status", b"te"])
values = st.binary(max_size=300).map(lambda b: bytes(c for c in b if c not in (0, 10, 13)))
header_lists = st.lists(st.tuples(names, values), max_size=12)


@FAST
@given(header_lists, st.integers(100, 999))
def test_our_header_blocks_decode_with_hpack_to_what_we_encoded(
    headers: list[tuple[bytes, bytes]], status: int
) -> None:
    sent = [(b":status", str(status).encode()), *headers]
    block = http2.encode_headers(sent)
    decoder = hpack.Decoder()
    assert [(bytes(k), bytes(v)) for k, v in decoder.decode(block, raw=True)] == sent
    assert len(decoder.header_table.dynamic_entries) == 0  # we never index


@FAST
@given(st.lists(header_lists, min_size=1, max_size=8), st.data())
def test_hpack_blocks_decode_through_ours_across_a_connection(
    blocks: list[list[tuple[bytes, bytes]]], data: Any
) -> None:
    """hpack's encoder indexes, Huffman-codes and evicts from its dynamic table; our decoder
    (with its cache of blocks it has seen) must follow it block after block, repeats too."""
    table_size = data.draw(st.sampled_from([0, 256, 4096]))
    encoder = hpack.Encoder()
    encoder.header_table_size = table_size
    ours = http2.HeaderDecoder(1 << 20)
    order = data.draw(st.lists(st.sampled_from(range(len(blocks))), min_size=1, max_size=20))
    for i in order:
        sent = blocks[i]
        block = encoder.encode(sent, huffman=data.draw(st.booleans()))
        assert ours.decode(block) == sent


def test_a_header_list_over_the_limit_is_enhance_your_calm() -> None:
    block = hpack.Encoder().encode([(b"x", b"y" * 5000)])
    with pytest.raises(http2.ProtocolError) as caught:
        http2.HeaderDecoder(1024).decode(block)
    assert caught.value.code == http2.ENHANCE_YOUR_CALM


@FAST
@given(st.binary(max_size=200))
def test_garbage_header_blocks_are_a_compression_error_never_another_exception(
    garbage: bytes,
) -> None:
    try:
        http2.HeaderDecoder(1 << 16).decode(garbage)
    except http2.ProtocolError as exc:
        assert exc.code in (http2.COMPRESSION_ERROR, http2.ENHANCE_YOUR_CALM)


# ---------------------------------------------------------------- frames


def _parse(data: bytes) -> list[hf.Frame]:
    """Frames as hyperframe reads them, CONTINUATION left as it comes."""
    out = []
    while data:
        parsed, length = hf.Frame.parse_frame_header(memoryview(data[:9]))
        parsed.parse_body(memoryview(data[9 : 9 + length]))
        out.append(parsed)
        data = data[9 + length :]
    return out


@FAST
@given(
    st.integers(1, 2**31 - 1),
    st.binary(max_size=3000),
    st.booleans(),
    st.sampled_from([16, 100, 16_384]),
)
def test_our_header_frames_parse_as_hyperframe_reads_them(
    stream: int, block: bytes, end_stream: bool, max_frame: int
) -> None:
    frames = _parse(http2.headers_frames(stream, block, end_stream, max_frame))
    assert isinstance(frames[0], hf.HeadersFrame)
    assert all(isinstance(f, hf.ContinuationFrame) for f in frames[1:])
    assert all(f.stream_id == stream and len(f.data) <= max_frame for f in frames)
    assert b"".join(f.data for f in frames) == block
    assert ("END_STREAM" in frames[0].flags) == end_stream
    assert "END_HEADERS" in frames[-1].flags
    assert not any("END_HEADERS" in f.flags for f in frames[:-1])


@FAST
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=50))
def test_our_control_frames_parse_as_hyperframe_reads_them(
    stream: int, code: int, debug: bytes
) -> None:
    (goaway,) = _parse(http2.goaway(stream, code, debug))
    assert isinstance(goaway, hf.GoAwayFrame)
    assert (goaway.last_stream_id, goaway.error_code, goaway.additional_data) == (
        stream,
        code,
        debug,
    )
    (reset,) = _parse(http2.rst_stream(max(stream, 1), code))
    assert isinstance(reset, hf.RstStreamFrame) and reset.error_code == code
    (window,) = _parse(http2.window_update(stream, max(stream, 1)))
    assert isinstance(window, hf.WindowUpdateFrame)
    assert window.window_increment == max(stream, 1)
    settings_ = {http2.INITIAL_WINDOW_SIZE: code % 2**31, http2.MAX_FRAME_SIZE: 16_384}
    (sent,) = _parse(http2.frame(http2.SETTINGS, 0, 0, http2.settings_payload(settings_)))
    assert isinstance(sent, hf.SettingsFrame) and dict(sent.settings) == settings_
    assert http2.parse_settings(http2.settings_payload(settings_)) == settings_


class Recorder(http2.FrameReader):
    """A frame reader that writes down each frame it hands on."""

    def __init__(self, preface: bool = False) -> None:
        self._start_reading(preface)
        self.seen: list[tuple[Any, ...]] = []
        self.written: list[bytes] = []

    def _reading(self) -> bool:
        return True

    def _write(self, data: bytes) -> None:
        self.written.append(data)

    def _on_data(self, stream_id: int, flags: int, payload: Any, size: int) -> None:
        self.seen.append(("data", stream_id, flags & http2.END_STREAM, bytes(payload), size))

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        self.seen.append(("headers", stream_id, flags & http2.END_STREAM, bytes(block)))

    def _on_settings(self, flags: int, payload: bytes) -> None:
        self.seen.append(("settings", flags, bytes(payload)))

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        self.seen.append(("window", stream_id, increment))

    def _on_reset(self, stream_id: int, code: int) -> None:
        self.seen.append(("reset", stream_id, code))

    def _on_goaway(self, last_stream: int, code: int) -> None:
        self.seen.append(("goaway", last_stream, code))


streams = st.integers(1, 2**31 - 1)


@st.composite
def frame_and_expectation(draw: Any) -> tuple[bytes, list[tuple[Any, ...]]]:
    """One frame (or a HEADERS+CONTINUATION run) built by hyperframe, and what the reader
    must hand on for it."""
    kind = draw(st.sampled_from(["data", "headers", "settings", "window", "ping", "reset",
                                 "goaway", "priority", "unknown"]))  # fmt: skip
    stream = draw(streams)
    if kind == "data":
        body = draw(st.binary(max_size=5000))
        f: Any = hf.DataFrame(stream, body)
        end = draw(st.booleans())
        if end:
            f.flags.add("END_STREAM")
        pad = draw(st.integers(0, 20))
        if pad:
            f.flags.add("PADDED")
            f.pad_length = pad
        return f.serialize(), [("data", stream, int(end), body, len(f.serialize()) - 9)]
    if kind == "headers":
        block = draw(st.binary(max_size=400))
        cut = draw(st.lists(st.integers(0, len(block)), max_size=3, unique=True))
        edges = sorted(cut)
        parts = [block[a:b] for a, b in zip([0, *edges], [*edges, len(block)], strict=True)]
        first: Any = hf.HeadersFrame(stream, parts[0])
        end = draw(st.booleans())
        if end:
            first.flags.add("END_STREAM")
        if draw(st.booleans()):
            first.flags.add("PRIORITY")
            first.depends_on, first.stream_weight = draw(streams), draw(st.integers(0, 255))
        if len(parts) == 1:
            first.flags.add("END_HEADERS")
        wire = [first.serialize()]
        for i, part in enumerate(parts[1:], 2):
            more = hf.ContinuationFrame(stream, part)
            if i == len(parts):
                more.flags.add("END_HEADERS")
            wire.append(more.serialize())
        return b"".join(wire), [("headers", stream, int(end), block)]
    if kind == "settings":
        values = draw(st.dictionaries(st.integers(1, 6), st.integers(0, 2**31 - 1), max_size=4))
        f = hf.SettingsFrame(0, values)
        return f.serialize(), [("settings", 0, f.serialize()[9:])]
    if kind == "window":
        stream = draw(st.integers(0, 2**31 - 1))
        increment = draw(st.integers(1, 2**31 - 1))
        f = hf.WindowUpdateFrame(stream, increment)
        return f.serialize(), [("window", stream, increment)]
    if kind == "ping":
        f = hf.PingFrame(0, draw(st.binary(min_size=8, max_size=8)))
        return f.serialize(), []  # answered, not handed on
    if kind == "reset":
        code = draw(st.integers(0, 2**32 - 1))
        return hf.RstStreamFrame(stream, code).serialize(), [("reset", stream, code)]
    if kind == "goaway":
        last, code = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**32 - 1))
        f = hf.GoAwayFrame(0, last, code, draw(st.binary(max_size=30)))
        return f.serialize(), [("goaway", last, code)]
    if kind == "priority":
        f = hf.PriorityFrame(stream, draw(streams), draw(st.integers(0, 255)))
        return f.serialize(), []  # ignored, as RFC 9113 asks
    body = draw(st.binary(max_size=100))  # an extension frame type: ignored
    head = len(body).to_bytes(3, "big") + bytes((0xFA, 0)) + stream.to_bytes(4, "big")
    return head + body, []


@FAST
@given(st.lists(frame_and_expectation(), max_size=12), st.data())
def test_the_frame_reader_sees_the_same_frames_however_the_bytes_are_cut(
    frames: list[tuple[bytes, list[tuple[Any, ...]]]], data: Any
) -> None:
    stream = http2.PREFACE + b"".join(wire for wire, _ in frames)
    expected = [event for _, events in frames for event in events]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10, unique=True)))
    reader = Recorder(preface=True)
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.read(stream[a:b])
    assert reader.seen == expected
    pings = sum(1 for wire, _ in frames if wire[3] == http2.PING)
    assert len(reader.written) == pings
    assert all(_parse(w)[0].flags == {"ACK"} for w in reader.written)


@FAST
@given(st.binary(min_size=1, max_size=400), st.data())
def test_malformed_byte_streams_raise_protocol_errors_only(garbage: bytes, data: Any) -> None:
    reader = Recorder(preface=data.draw(st.booleans()))
    cut = data.draw(st.integers(0, len(garbage)))
    try:
        reader.read(garbage[:cut])
        reader.read(garbage[cut:])
    except http2.ProtocolError:
        pass
