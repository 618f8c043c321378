"""One gRPC call's own semantics, apart from HTTP/2: its metadata, deadline, status and the
``context`` its handler receives (the parts of grpc's ServicerContext infergraph's handlers
and grpcio-reflection use)."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, cast

import grpc

from infergraph.errors import InferGraphError
from infergraph.status import grpc_status
from infergraph.transport.content_encoding import decode_content
from infergraph.wire.grpc.messages import encode_grpc_message, read_grpc_message

__all__ = [
    "CallAbort",
    "CallContext",
    "CallDetails",
    "decode_request",
    "encode_response",
    "metadata",
    "parse_timeout",
    "request_message",
    "trailers",
]

_UNIT_SECONDS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_SKIPPED_METADATA = frozenset(
    (b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding")
)

Metadata = Sequence[tuple[str, str | bytes]]


class CallAbort(Exception):
    """Ends a call with ``code`` and ``details`` (what ``context.abort`` raises)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class CallDetails(NamedTuple):
    """grpc's HandlerCallDetails, for generic handlers."""

    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


def metadata(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str | bytes], ...]:
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


def parse_timeout(value: bytes | None) -> float | None:
    """``grpc-timeout`` in seconds (None when absent or malformed)."""
    if value is None:
        return None
    unit = _UNIT_SECONDS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * unit


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


class CallState(Protocol):
    headers: list[tuple[bytes, bytes]]
    reset: bool
    closed: bool


class CallContext:
    """The ``context`` a handler receives."""

    __slots__ = ("_call", "_deadline", "_peer", "code", "details", "trailing")

    def __init__(self, call: CallState, peer: str, timeout: float | None) -> None:
        self._call = call
        self._peer = peer
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self.trailing: Metadata = ()
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return metadata(self._call.headers)

    def set_trailing_metadata(self, extra: Metadata) -> None:
        self.trailing = tuple(extra)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[Any] = ()
    ) -> None:
        if trailing_metadata:
            self.trailing = tuple(trailing_metadata)
        raise CallAbort(code, details)

    def failed(self) -> CallAbort | None:
        """The status a handler set without raising, if it is not OK."""
        if self.code in (None, grpc.StatusCode.OK):
            return None
        assert self.code is not None
        return CallAbort(self.code, self.details)

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def peer(self) -> str:
        return self._peer

    def cancelled(self) -> bool:
        return self._call.reset

    def done(self) -> bool:
        return self._call.closed


# ---------------------------------------------------------------- messages


def request_message(
    data: bytes | memoryview, encoding: bytes | None, limit: int
) -> bytes | memoryview:
    """The one message of a request's bytes: its prefix checked, decompressed under
    ``limit`` if it says so (``encoding`` is the ``grpc-encoding`` header)."""
    prefix = read_grpc_message(data, 0)
    if prefix is None or len(data) != 5 + prefix[1]:
        count = "no message" if prefix is None else "a message cut short or more than one"
        raise CallAbort(grpc.StatusCode.INTERNAL, f"the request stream held {count}")
    body: bytes | memoryview = memoryview(data)[5:]  # no copy of a tensor's bytes
    if prefix[0]:
        name = (encoding or b"identity").decode("latin-1")
        if name not in ("gzip", "deflate"):
            raise CallAbort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"the message is compressed with {name!r}: this server accepts gzip or deflate",
            )
        try:
            body = decode_content(name, bytes(body), limit)
        except InferGraphError as exc:
            raise CallAbort(grpc_status(exc), exc.message) from None
    return body


def decode_request(handler: grpc.RpcMethodHandler, body: bytes | memoryview) -> Any:
    """The request message as the handler takes it."""
    if handler.request_deserializer is None:
        return bytes(body)
    try:
        return handler.request_deserializer(body)
    except Exception as exc:  # protobuf's DecodeError and kin
        raise CallAbort(
            grpc.StatusCode.INVALID_ARGUMENT, f"the request message cannot be parsed: {exc}"
        ) from None


def encode_response(handler: grpc.RpcMethodHandler, response: Any, limit: int) -> bytes:
    """The handler's answer serialised, refused past ``limit`` bytes."""
    body = (
        response if handler.response_serializer is None else handler.response_serializer(response)
    )
    if len(body) > limit:
        raise CallAbort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Sent message larger than max ({len(body)} vs. {limit})",
        )
    return cast(bytes, body)
