"""Where every status comes from: the tables between infergraph's errors, HTTP statuses and
gRPC status codes. Nothing else maps one to another.

Two kinds of mapping, which differ on purpose and must not be mixed up:

- **Application status**, :data:`APPLICATION_STATUS`: what a server of ours answers for an
  error of ours, over REST and over gRPC alike. Bad input is HTTP 400 and
  INVALID_ARGUMENT, a missing thing 404 and NOT_FOUND, a model still loading 503 and
  UNAVAILABLE. An error that chose its own HTTP status (a user's
  ``SeldonMicroserviceException(status_code=...)``) answers gRPC with the code of that
  status's meaning, :data:`APPLICATION_GRPC_BY_HTTP`, which the same table fills. A node's
  answer is read back into the error it stands for through the same table as well
  (:data:`ERROR_BY_HTTP`, :data:`ERROR_BY_GRPC`), so a graph answers what its node did.
- **Transport status**, :data:`TRANSPORT_GRPC_BY_HTTP` and
  :data:`TRANSPORT_GRPC_BY_HTTP2_ERROR`, kept with the gRPC client in
  :mod:`infergraph.wire.grpc.status` and named here too: what a gRPC *client* makes of
  an answer that is not gRPC at all (a proxy's or a REST server's HTTP status without
  ``grpc-status``, a reset stream), as gRPC's spec says (``doc/http-grpc-status-mapping.md`` and
  ``doc/PROTOCOL-HTTP2.md``). There HTTP 400 means the peer could not read the HTTP we
  sent (INTERNAL, not the caller's INVALID_ARGUMENT) and 404 that no such service lives
  at that address (UNIMPLEMENTED, not NOT_FOUND). The spec forbids servers to answer by
  this table, and it is never used to answer.

It sits beside ``errors`` (not in ``transport``) because the graph executor labels its
node-call metrics with the same HTTP status the transports answer, and the node clients of
``graph`` read statuses back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import grpc

from infergraph.errors import (
    BadRequest,
    DeadlineExceeded,
    ErrorCode,
    InferGraphError,
    NotFound,
    NotImplementedByComponent,
    NotReady,
    PayloadTooLarge,
)
from infergraph.wire.grpc.status import (
    TRANSPORT_GRPC_BY_HTTP,
    TRANSPORT_GRPC_BY_HTTP2_ERROR,
    transport_grpc_status,
)

__all__ = [
    "APPLICATION_GRPC_BY_HTTP",
    "APPLICATION_STATUS",
    "ERROR_BY_GRPC",
    "ERROR_BY_HTTP",
    "TRANSPORT_GRPC_BY_HTTP",
    "TRANSPORT_GRPC_BY_HTTP2_ERROR",
    "Status",
    "grpc_status",
    "http_status",
    "status_label",
    "transport_grpc_status",
]

Code = grpc.StatusCode


class Status(NamedTuple):
    http: int
    grpc: grpc.StatusCode


# ---------------------------------------------------------------- application status

APPLICATION_STATUS: Mapping[ErrorCode, Status] = {
    ErrorCode.BAD_REQUEST: Status(400, Code.INVALID_ARGUMENT),
    ErrorCode.PAYLOAD_TOO_LARGE: Status(413, Code.RESOURCE_EXHAUSTED),
    ErrorCode.UNAUTHENTICATED: Status(401, Code.UNAUTHENTICATED),
    ErrorCode.NOT_FOUND: Status(404, Code.NOT_FOUND),
    ErrorCode.METHOD_NOT_ALLOWED: Status(405, Code.UNIMPLEMENTED),
    ErrorCode.NOT_READY: Status(503, Code.UNAVAILABLE),
    ErrorCode.DEADLINE_EXCEEDED: Status(504, Code.DEADLINE_EXCEEDED),
    ErrorCode.UNIMPLEMENTED: Status(400, Code.UNIMPLEMENTED),  # Seldon answers REST 400
    ErrorCode.INTERNAL: Status(500, Code.INTERNAL),
}
"""What a server of ours answers, over REST and gRPC, for an error with each code."""

_STATUS_OWNERS = (
    ErrorCode.BAD_REQUEST,  # 400, which UNIMPLEMENTED shares: bad input is what 400 means
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.UNAUTHENTICATED,
    ErrorCode.NOT_FOUND,
    ErrorCode.METHOD_NOT_ALLOWED,
    ErrorCode.NOT_READY,
    ErrorCode.DEADLINE_EXCEEDED,
    ErrorCode.INTERNAL,
)
"""The code each HTTP status of :data:`APPLICATION_STATUS` stands for, one per status."""

APPLICATION_GRPC_BY_HTTP: Mapping[int, grpc.StatusCode] = {
    **{APPLICATION_STATUS[code].http: APPLICATION_STATUS[code].grpc for code in _STATUS_OWNERS},
    # statuses none of our codes has, which a user's error may choose
    403: Code.PERMISSION_DENIED,
    409: Code.ALREADY_EXISTS,
    429: Code.RESOURCE_EXHAUSTED,
    501: Code.UNIMPLEMENTED,
}
"""The gRPC code of an error of ours that chose its HTTP status; others by their class
(4xx INVALID_ARGUMENT, 5xx INTERNAL, anything lower UNKNOWN)."""

_READ_BACK: tuple[type[InferGraphError], ...] = (
    BadRequest,
    PayloadTooLarge,
    NotFound,
    NotReady,
    DeadlineExceeded,
    NotImplementedByComponent,
)
"""The errors a node's answer is read back as; any other answer keeps its own status."""

ERROR_BY_HTTP: Mapping[int, type[InferGraphError]] = {
    APPLICATION_STATUS[kind.code].http: kind
    for kind in _READ_BACK
    if kind.code in _STATUS_OWNERS  # 400 is BadRequest, never NotImplementedByComponent
}
"""The error a node's REST answer with this HTTP status stands for."""

ERROR_BY_GRPC: Mapping[grpc.StatusCode, type[InferGraphError]] = {
    APPLICATION_STATUS[kind.code].grpc: kind for kind in _READ_BACK
}
"""The error a node's gRPC answer with this status code stands for."""


def http_status(error: InferGraphError) -> int:
    """The HTTP status a server of ours answers ``error`` with."""
    return error.status_code or APPLICATION_STATUS[error.code].http


def grpc_status(error: InferGraphError) -> grpc.StatusCode:
    """The gRPC code a server of ours answers ``error`` with; an HTTP status it chose maps
    through :data:`APPLICATION_GRPC_BY_HTTP`."""
    status = error.status_code
    if status:
        code = APPLICATION_GRPC_BY_HTTP.get(status)
        if code is not None:
            return code
        if status < 400:  # an error a user's handler answered with 1xx-3xx
            return Code.UNKNOWN
        return Code.INVALID_ARGUMENT if status < 500 else Code.INTERNAL
    return APPLICATION_STATUS[error.code].grpc


def status_label(error: BaseException) -> str:
    """The HTTP status of any exception as a metric label ("500" for foreign ones)."""
    return str(http_status(error)) if isinstance(error, InferGraphError) else "500"
