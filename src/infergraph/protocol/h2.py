"""The parts of HTTP/2 (RFC 9113) and HPACK (RFC 7541) that infergraph's gRPC server
(``transport.grpc_native``) and client (``graph.grpc_client``) speak; pure, no I/O.

Frames are built and split by hand (:class:`FrameReader` reads a peer's): a 9-byte header
(24-bit length, type, flags, 31-bit stream id) and a payload. Header blocks we send use no
dynamic table and no Huffman coding (``literal without indexing``, with the static table's
index for a known name), so the encoder keeps no state. Header blocks we receive are
decoded by ``hpack`` (the python-hyper decoder) behind a per-connection cache: a peer sends
the same bytes for the same headers once its dynamic table holds them (ours send stateless
literals), so a block that changed nothing in the table is decoded once and then looked
up. A block that did change the table empties the cache, since the same bytes may then
name other headers.
"""

from __future__ import annotations

import struct
from urllib.parse import quote, unquote

import hpack

__all__ = [
    "PREFACE",
    "HeaderDecoder",
    "ProtocolError",
    "encode_headers",
    "frame",
    "grpc_message",
    "read_grpc_message",
    "settings_payload",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9

# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE = 1, 2, 3, 4
MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 5, 6

# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 5, 6, 7, 8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 9, 11

DEFAULT_WINDOW = 65_535
DEFAULT_FRAME_SIZE = 16_384
MAX_WINDOW = 2**31 - 1

_U32 = struct.Struct(">I")
_SETTING = struct.Struct(">HI")
_GRPC_PREFIX = struct.Struct(">BI")


class ProtocolError(Exception):
    """The peer broke HTTP/2, or one of our limits: the connection ends with GOAWAY
    carrying ``code``. ``limit`` names the limit that tripped, if one did
    (``http2.max_continuations``, a field of ``infergraph.wire.limits.Http2Limits``)."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR, limit: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.limit = limit


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte header and ``payload``."""
    n = len(payload)
    return bytes((n >> 16, (n >> 8) & 0xFF, n & 0xFF, kind, flags)) + _U32.pack(stream) + payload


def frame_header(kind: int, flags: int, stream: int, length: int) -> bytes:
    """The 9-byte header of a frame whose payload is written separately."""
    return bytes((length >> 16, (length >> 8) & 0xFF, length & 0xFF, kind, flags)) + _U32.pack(
        stream
    )


def settings_payload(settings: dict[int, int]) -> bytes:
    return b"".join(_SETTING.pack(key, value) for key, value in settings.items())


def parse_settings(payload: bytes) -> dict[int, int]:
    if len(payload) % 6:
        raise ProtocolError("SETTINGS payload is not a multiple of 6 bytes", FRAME_SIZE_ERROR)
    return {key: value for key, value in _SETTING.iter_unpack(payload)}


def u32(payload: bytes, offset: int = 0) -> int:
    return int(_U32.unpack_from(payload, offset)[0])


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, _U32.pack(increment))


def headers_frames(stream: int, block: bytes, end_stream: bool, max_frame: int) -> bytes:
    """HEADERS carrying ``block``, its rest in CONTINUATION frames where it is longer than
    the peer's frame size (a long ``grpc-message``, much trailing metadata): one frame over
    that size is an error that ends the whole connection."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        return frame(HEADERS, flags | END_HEADERS, stream, block)
    parts = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    out = [frame(HEADERS, flags, stream, parts[0])]
    out += [frame(CONTINUATION, 0, stream, part) for part in parts[1:-1]]
    out.append(frame(CONTINUATION, END_HEADERS, stream, parts[-1]))
    return b"".join(out)


def goaway(last_stream: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, _U32.pack(last_stream) + _U32.pack(code) + debug)


def rst_stream(stream: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream, _U32.pack(code))


# ---------------------------------------------------------------- HPACK, our side

# names of the static table (RFC 7541 Appendix A) we send, by index
_STATIC_NAMES = {
    b":status": 8,
    b"content-type": 31,
    b"date": 33,
    b"user-agent": 58,
}
_STATUS = {200: b"\x88", 204: b"\x89", 206: b"\x8a", 304: b"\x8b", 400: b"\x8c", 404: b"\x8d"}


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK's prefixed integer (RFC 7541 §5.1) with ``first``'s high bits set."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0) + value


def encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A header block that leaves both dynamic tables alone: ``:status`` from the static
    table where it is there, everything else a literal without indexing."""
    out = []
    for name, value in headers:
        if name == b":status":
            code = int(value)
            if code in _STATUS:
                out.append(_STATUS[code])
                continue
        index = _STATIC_NAMES.get(name, 0)
        if index:
            out.append(_integer(index, 4, 0x00) + _string(value))
        else:
            out.append(b"\x00" + _string(name) + _string(value))
    return b"".join(out)


# ---------------------------------------------------------------- HPACK, the peer's side


class HeaderDecoder:
    """Decodes a connection's header blocks, each block's bytes at most once while the
    dynamic table stands still."""

    __slots__ = ("_cache", "_decoder", "max_list_size")

    CACHE_LIMIT = 256

    def __init__(self, max_list_size: int) -> None:
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = max_list_size
        self._cache: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self.max_list_size = max_list_size

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        before = self._table_state()
        try:
            headers = [(bytes(k), bytes(v)) for k, v in self._decoder.decode(block, raw=True)]
        except hpack.OversizedHeaderListError as exc:
            raise ProtocolError(
                f"header list too large: {exc}", ENHANCE_YOUR_CALM, "http2.max_header_list_size"
            ) from exc
        except hpack.HPACKError as exc:
            raise ProtocolError(f"bad header block: {exc}", COMPRESSION_ERROR) from exc
        after = self._table_state()
        if after[0] != before[0] or after[1] is not before[1] or after[2] != before[2]:
            self._cache.clear()  # the same bytes may now name other headers
        elif len(self._cache) < self.CACHE_LIMIT:
            self._cache[block] = headers
        return headers

    def _table_state(self) -> tuple[int, object, int]:
        """What a block can change of the dynamic table: its length, its newest entry and
        its size limit (a size update replayed from the cache would be lost). The entry is
        held, not its ``id()``: a block whose new entries evict as many old ones leaves the
        length as it was, and a freed entry's address is soon a new entry's."""
        table = self._decoder.header_table
        entries = table.dynamic_entries
        return len(entries), entries[0] if entries else None, table.maxsize


# ---------------------------------------------------------------- gRPC messages


def grpc_message(payload: bytes) -> bytes:
    """A length-prefixed gRPC message, uncompressed."""
    return _GRPC_PREFIX.pack(0, len(payload)) + payload


def read_grpc_message(data: bytes | bytearray | memoryview, offset: int) -> tuple[int, int] | None:
    """(compressed flag, length) of the message prefixed at ``offset``, or None when fewer
    than five bytes are there."""
    if len(data) - offset < 5:
        return None
    flag, length = _GRPC_PREFIX.unpack_from(data, offset)
    return int(flag), int(length)


_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if c != 0x25)


def encode_grpc_message(text: str) -> bytes:
    """``grpc-message``'s percent-encoding: printable ASCII but ``%`` stays as it is, but for
    a space at either end: HTTP/2 forbids a field value to start or end with whitespace
    (RFC 9113 §8.2.1), and strict clients drop the connection over it."""
    value = quote(text, safe=_MESSAGE_SAFE, encoding="utf-8")
    if value[:1] == " ":
        value = "%20" + value[1:]
    if value[-1:] == " ":
        value = value[:-1] + "%20"
    return value.encode("ascii")


def decode_grpc_message(value: bytes) -> str:
    return unquote(value.decode("ascii", "replace"))


# ---------------------------------------------------------------- reading a peer's frames

VIEW_FROM = 4096
"""DATA payloads this large are handed on as views of the bytes received, not copies."""


class FrameReader:
    """Turns the bytes a connection receives into calls of its ``_on_*`` methods, one per
    frame: what our gRPC server and our gRPC client share of reading HTTP/2.

    A frame that arrives in pieces is kept until it is whole and joined once. HEADERS'
    padding and priority fields are stripped, and a header block split over CONTINUATION
    frames is put back together before ``_on_header_block`` sees it, its size kept as it
    grows and its frames counted (``header_limit``, ``continuation_limit``). PING is
    answered here; PRIORITY and unknown frame types are ignored, as RFC 9113 asks. Anything
    malformed raises :class:`ProtocolError`, whose ``code`` the connection's GOAWAY carries.
    """

    frame_limit = 1 << 20
    """The largest frame we accept (we advertise it as SETTINGS_MAX_FRAME_SIZE)."""
    header_limit = 64 << 10
    """The largest header block we accept (SETTINGS_MAX_HEADER_LIST_SIZE)."""
    continuation_limit = 64
    """The most CONTINUATION frames one header block may take."""

    def _start_reading(self, preface: bool) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._needed = 0
        self._awaiting_preface = preface
        self._continuation: tuple[int, int, list[bytes]] | None = None
        self._block_size = 0
        """Bytes of the header block in ``_continuation`` so far."""
        self._block_frames = 0
        """Its CONTINUATION frames so far."""

    # the connection's side
    def _reading(self) -> bool:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _on_data(self, stream_id: int, flags: int, payload: bytes | memoryview, size: int) -> None:
        """``payload`` without padding; ``size`` the frame's, which flow control counts."""
        raise NotImplementedError

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        raise NotImplementedError

    def _on_settings(self, flags: int, payload: bytes) -> None:
        raise NotImplementedError

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        raise NotImplementedError

    def _on_reset(self, stream_id: int, code: int) -> None:
        raise NotImplementedError

    def _on_goaway(self, last_stream: int, code: int) -> None:
        raise NotImplementedError

    def _on_idle_frame(self) -> None:
        """A PING, PRIORITY or unknown frame came: work for us that asks no call (a server
        counts them against a flood budget)."""

    # reading
    def read(self, data: bytes) -> None:
        """Take the bytes the socket delivered; raises ProtocolError."""
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return
            buf = b"".join(self._pending)
            self._pending = []
        else:
            buf = data
        try:
            pos = self._frames(buf)
        except (ValueError, IndexError) as exc:  # a malformed frame not foreseen below
            raise ProtocolError(f"malformed frame: {exc}") from None
        if pos < len(buf):
            rest = buf[pos:]
            self._pending, self._pending_size = [rest], len(rest)
            if self._awaiting_preface:
                self._needed = len(PREFACE)
            elif len(rest) < 9:
                self._needed = 9
            else:
                self._needed = 9 + ((rest[0] << 16) | (rest[1] << 8) | rest[2])

    def _preface(self, buf: bytes) -> int:
        if len(buf) < len(PREFACE):
            if not PREFACE.startswith(buf):
                raise ProtocolError("not an HTTP/2 connection preface")
            return 0
        if not buf.startswith(PREFACE):
            raise ProtocolError(
                "not an HTTP/2 connection preface (this port speaks gRPC; "
                "is a REST client pointed at it?)"
            )
        self._awaiting_preface = False
        return len(PREFACE)

    def _frames(self, buf: bytes) -> int:
        pos = self._preface(buf) if self._awaiting_preface else 0
        end = len(buf)
        while end - pos >= 9 and not self._awaiting_preface and self._reading():
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if length > self.frame_limit:
                raise ProtocolError(f"frame of {length} bytes", FRAME_SIZE_ERROR)
            if end - pos - 9 < length:
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            stream_id = u32(buf, pos + 5) & 0x7FFFFFFF
            start, pos = pos + 9, pos + 9 + length
            if self._continuation is not None and kind != CONTINUATION:
                raise ProtocolError("expected CONTINUATION")
            if kind == DATA:  # a large one (a tensor's bytes) as a view, not a copy
                if not stream_id:
                    raise ProtocolError("DATA on stream 0")
                payload: bytes | memoryview = (
                    memoryview(buf)[start:pos] if length >= VIEW_FROM else buf[start:pos]
                )
                if flags & PADDED:
                    payload = _unpad(payload)
                self._on_data(stream_id, flags, payload, length)
            else:
                self._control(kind, flags, stream_id, buf[start:pos])
        return pos

    def _control(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if kind == HEADERS:
            self._headers(stream_id, flags, payload)
        elif kind == CONTINUATION:
            self._continue_headers(stream_id, flags, payload)
        elif kind == SETTINGS:
            if stream_id:
                raise ProtocolError("SETTINGS on a stream")
            self._on_settings(flags, payload)
        elif kind == WINDOW_UPDATE:
            if len(payload) != 4:
                raise ProtocolError("bad WINDOW_UPDATE", FRAME_SIZE_ERROR)
            self._on_window_update(stream_id, u32(payload) & 0x7FFFFFFF)
        elif kind == PING:
            if len(payload) != 8 or stream_id:
                raise ProtocolError("bad PING", FRAME_SIZE_ERROR)
            self._on_idle_frame()
            if not flags & ACK:
                self._write(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            if len(payload) != 4:
                raise ProtocolError("bad RST_STREAM", FRAME_SIZE_ERROR)
            self._on_reset(stream_id, u32(payload))
        elif kind == GOAWAY:
            if len(payload) < 8:
                raise ProtocolError("bad GOAWAY", FRAME_SIZE_ERROR)
            self._on_goaway(u32(payload) & 0x7FFFFFFF, u32(payload, 4))
        elif kind == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE: push is not enabled")
        else:  # PRIORITY, or a type we do not know
            self._on_idle_frame()

    def _headers(self, stream_id: int, flags: int, payload: bytes) -> None:
        if not stream_id:
            raise ProtocolError("HEADERS on stream 0")
        start, end = 0, len(payload)
        if flags & PADDED:
            if not payload:
                raise ProtocolError("bad padding")
            start, end = 1, end - payload[0]
        if flags & PRIORITY_FLAG:
            start += 5
        if start > end:
            raise ProtocolError("bad padding")
        fragment = payload[start:end]
        if len(fragment) > self.header_limit:
            raise _too_large(len(fragment), self.header_limit)
        if flags & END_HEADERS:
            self._on_header_block(stream_id, flags, fragment)
        else:
            self._continuation = (stream_id, flags, [fragment])
            self._block_size, self._block_frames = len(fragment), 0

    def _continue_headers(self, stream_id: int, flags: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise ProtocolError("unexpected CONTINUATION")
        _, first_flags, fragments = self._continuation
        self._block_frames += 1
        if self._block_frames > self.continuation_limit:
            raise ProtocolError(
                f"header block in more than {self.continuation_limit} CONTINUATION frames",
                ENHANCE_YOUR_CALM,
                "http2.max_continuations",
            )
        self._block_size += len(payload)
        if self._block_size > self.header_limit:
            raise _too_large(self._block_size, self.header_limit)
        fragments.append(payload)
        if flags & END_HEADERS:
            self._continuation = None
            self._on_header_block(stream_id, first_flags, b"".join(fragments))


def _too_large(size: int, limit: int) -> ProtocolError:
    return ProtocolError(
        f"header block of {size} bytes or more (the limit is {limit})",
        ENHANCE_YOUR_CALM,
        "http2.max_header_list_size",
    )


def _unpad(payload: bytes | memoryview) -> bytes | memoryview:
    if not payload or payload[0] >= len(payload):
        raise ProtocolError("bad padding")
    return payload[1 : len(payload) - payload[0]]
