"""A call's end status: what a handler raises to end its call (:class:`CallAbort`), and
what a gRPC *client* makes of an answer that is not gRPC at all: a proxy's or a REST
server's HTTP status without ``grpc-status``, or a reset stream, as gRPC's spec says
(``doc/http-grpc-status-mapping.md`` and ``doc/PROTOCOL-HTTP2.md``). There HTTP 400 means
the peer could not read the HTTP we sent (INTERNAL, not the caller's INVALID_ARGUMENT) and
404 that no such service lives at that address (UNIMPLEMENTED, not NOT_FOUND). The spec
forbids servers to answer by these tables, and nothing answers by them: what a server of
ours answers is :data:`infergraph.status.APPLICATION_STATUS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

__all__ = [
    "TRANSPORT_GRPC_BY_HTTP",
    "TRANSPORT_GRPC_BY_HTTP2_ERROR",
    "CallAbort",
    "StatusCode",
    "transport_grpc_status",
]

StatusCode = Code = grpc.StatusCode
"""gRPC's status codes, for the layers that must not import ``grpc`` themselves (``graph``)."""

TRANSPORT_GRPC_BY_HTTP: Mapping[int, grpc.StatusCode] = {
    400: Code.INTERNAL,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.UNIMPLEMENTED,
    429: Code.UNAVAILABLE,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}
"""gRPC's ``http-grpc-status-mapping.md``: the code a gRPC client gives a call answered
with this HTTP status and no ``grpc-status``; UNKNOWN for any other status."""

TRANSPORT_GRPC_BY_HTTP2_ERROR: Mapping[int, grpc.StatusCode] = {
    0x7: Code.UNAVAILABLE,  # REFUSED_STREAM: not processed, safe to send again
    0x8: Code.CANCELLED,  # CANCEL
    0xB: Code.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: Code.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}
"""gRPC's ``PROTOCOL-HTTP2.md``: the code of a call whose stream the server reset with
this HTTP/2 error code; INTERNAL for any other code."""


def transport_grpc_status(http: int) -> grpc.StatusCode:
    """The code of a gRPC call answered with HTTP status ``http`` and no ``grpc-status``."""
    return TRANSPORT_GRPC_BY_HTTP.get(http, Code.UNKNOWN)


class CallAbort(Exception):
    """Ends a call with ``code`` and ``details`` (what ``context.abort`` raises)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
