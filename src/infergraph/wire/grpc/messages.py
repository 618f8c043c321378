"""gRPC's length-prefixed messages and the percent-encoding of ``grpc-message`` (gRPC over
HTTP/2, PROTOCOL-HTTP2.md). Pure, no I/O."""

from __future__ import annotations

import struct
from urllib.parse import quote, unquote

__all__ = [
    "decode_grpc_message",
    "encode_grpc_message",
    "grpc_message",
    "message_prefix",
    "read_grpc_message",
]

_GRPC_PREFIX = struct.Struct(">BI")


def grpc_message(payload: bytes) -> bytes:
    """A length-prefixed gRPC message, uncompressed."""
    return _GRPC_PREFIX.pack(0, len(payload)) + payload


def message_prefix(length: int) -> bytes:
    """The 5-byte prefix of an uncompressed message of ``length`` bytes (its body written
    apart: a tensor's bytes are not copied to be prefixed)."""
    return _GRPC_PREFIX.pack(0, length)


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
