"""The headers of a gRPC call over HTTP/2, both ends (gRPC's ``PROTOCOL-HTTP2.md``): the
deadline a client sends (``grpc-timeout``), a request's custom metadata as a handler reads
it, and the status that ends a call (``grpc-status``, ``grpc-message`` and the trailing
metadata) as a server writes it and a client reads it. Pure, no I/O."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import grpc

from infergraph.wire.grpc.messages import decode_grpc_message, encode_grpc_message
from infergraph.wire.grpc.status import CallAbort

__all__ = [
    "Metadata",
    "encode_timeout",
    "parse_timeout",
    "read_status",
    "request_metadata",
    "trailers",
]

Metadata = Sequence[tuple[str, str | bytes]]

_UNIT_SECONDS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_SKIPPED_METADATA = frozenset(
    (b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding")
)
_CODES = {code.value[0]: code for code in grpc.StatusCode}


# ---------------------------------------------------------------- grpc-timeout


def parse_timeout(value: bytes | None) -> float | None:
    """``grpc-timeout`` in seconds (None when absent or malformed)."""
    if value is None:
        return None
    unit = _UNIT_SECONDS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * unit


def encode_timeout(seconds: float) -> bytes:
    """``grpc-timeout``: at most eight digits (gRPC's spec; grpc-go rejects more), so a
    timeout of a day or more goes in seconds, minutes or hours."""
    value = max(1, int(seconds * 1000))
    if value < 10**8:
        return b"%dm" % value
    for unit, size in ((b"S", 1), (b"M", 60), (b"H", 3600)):
        value = int(seconds / size)
        if value < 10**8:
            return b"%d%s" % (value, unit)
    return b"99999999H"


# ---------------------------------------------------------------- metadata


def request_metadata(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str | bytes], ...]:
    """A request's custom metadata: ``-bin`` keys base64-decoded, the rest as text. A
    ``-bin`` value that is not base64 fails the call with INTERNAL, as grpc-go does."""
    out: list[tuple[str, str | bytes]] = []
    for name, value in headers:
        if name[:1] == b":" or name in _SKIPPED_METADATA:
            continue
        key = name.decode("latin-1")
        if key.endswith("-bin"):
            try:
                out.append((key, base64.b64decode(value + b"=" * (-len(value) % 4))))
            except binascii.Error as exc:
                raise CallAbort(
                    grpc.StatusCode.INTERNAL, f"malformed binary metadata in {key!r}: {exc}"
                ) from None
        else:
            out.append((key, value.decode("latin-1")))
    return tuple(out)


# ---------------------------------------------------------------- a call's status


def trailers(code: grpc.StatusCode, details: str, extra: Metadata) -> list[tuple[bytes, bytes]]:
    """The status headers of a call's end, with its trailing metadata."""
    out = [(b"grpc-status", str(code.value[0]).encode())]
    if details:
        out.append((b"grpc-message", encode_grpc_message(details)))
    for key, value in extra:
        name = key.lower().encode("latin-1")
        if isinstance(value, bytes):
            out.append((name, base64.b64encode(value).rstrip(b"=")))
        else:
            out.append((name, value.encode("latin-1", "replace")))
    return out


def read_status(headers: list[tuple[bytes, bytes]]) -> tuple[grpc.StatusCode, str] | None:
    """A call's status from its trailers (or trailers-only headers), None if it has none."""
    code = message = None
    for name, value in headers:
        if name == b"grpc-status":
            code = value
        elif name == b"grpc-message":
            message = value
    if code is None:
        return None
    status = _CODES.get(int(code)) if code.isdigit() else None
    details = decode_grpc_message(message) if message else ""
    if status is None:
        return grpc.StatusCode.UNKNOWN, f"grpc-status {code!r}: {details}"
    return status, details
