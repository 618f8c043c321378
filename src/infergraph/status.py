"""The one table mapping error codes to HTTP and gRPC status.

It sits beside ``errors`` (not in ``transport``) because the graph executor labels its
node-call metrics with the same HTTP status the transports answer.
"""

from __future__ import annotations

import grpc

from infergraph.errors import ErrorCode, InferGraphError

__all__ = ["grpc_status", "http_status", "status_label"]

_TABLE: dict[ErrorCode, tuple[int, grpc.StatusCode]] = {
    ErrorCode.BAD_REQUEST: (400, grpc.StatusCode.INVALID_ARGUMENT),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ErrorCode.UNAUTHENTICATED: (401, grpc.StatusCode.UNAUTHENTICATED),
    ErrorCode.NOT_FOUND: (404, grpc.StatusCode.NOT_FOUND),
    ErrorCode.METHOD_NOT_ALLOWED: (405, grpc.StatusCode.UNIMPLEMENTED),
    ErrorCode.NOT_READY: (503, grpc.StatusCode.UNAVAILABLE),
    ErrorCode.DEADLINE_EXCEEDED: (504, grpc.StatusCode.DEADLINE_EXCEEDED),
    ErrorCode.UNIMPLEMENTED: (400, grpc.StatusCode.UNIMPLEMENTED),
    ErrorCode.INTERNAL: (500, grpc.StatusCode.INTERNAL),
}
_BY_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def http_status(error: InferGraphError) -> int:
    return error.status_code or _TABLE[error.code][0]


def grpc_status(error: InferGraphError) -> grpc.StatusCode:
    """The gRPC code of an error; an HTTP status it chose maps through ``_BY_HTTP``."""
    status = error.status_code
    if status:
        if status in _BY_HTTP:
            return _BY_HTTP[status]
        if status < 400:  # an error a user's handler answered with 1xx-3xx
            return grpc.StatusCode.UNKNOWN
        return grpc.StatusCode.INVALID_ARGUMENT if status < 500 else grpc.StatusCode.INTERNAL
    return _TABLE[error.code][1]


def status_label(error: BaseException) -> str:
    """The HTTP status of any exception as a metric label ("500" for foreign ones)."""
    return str(http_status(error)) if isinstance(error, InferGraphError) else "500"
