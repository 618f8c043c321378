"""HTTP/2's frames (RFC 9113) as infergraph's gRPC server and client build them: a 9-byte
header (24-bit length, type, flags, 31-bit stream id) and a payload; the frame types, flags,
settings and error codes; :class:`ProtocolError`, which ends a connection. Pure, no I/O."""

from __future__ import annotations

import struct

__all__ = [
    "ACK",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONTINUATION",
    "DATA",
    "DEFAULT_FRAME_SIZE",
    "DEFAULT_WINDOW",
    "ENABLE_PUSH",
    "END_HEADERS",
    "END_STREAM",
    "ENHANCE_YOUR_CALM",
    "FLOW_CONTROL_ERROR",
    "FRAME_SIZE_ERROR",
    "GOAWAY",
    "HEADERS",
    "HEADER_TABLE_SIZE",
    "INITIAL_WINDOW_SIZE",
    "INTERNAL_ERROR",
    "MAX_CONCURRENT_STREAMS",
    "MAX_FRAME_SIZE",
    "MAX_HEADER_LIST_SIZE",
    "MAX_WINDOW",
    "NO_ERROR",
    "PADDED",
    "PING",
    "PREFACE",
    "PRIORITY",
    "PRIORITY_FLAG",
    "PROTOCOL_ERROR",
    "PUSH_PROMISE",
    "REFUSED_STREAM",
    "RST_STREAM",
    "SETTINGS",
    "STREAM_CLOSED",
    "WINDOW_UPDATE",
    "ProtocolError",
    "frame",
    "frame_header",
    "goaway",
    "headers_frames",
    "parse_settings",
    "rst_stream",
    "settings_payload",
    "u32",
    "window_update",
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
