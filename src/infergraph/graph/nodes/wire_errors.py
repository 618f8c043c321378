"""The one place where the wire's exceptions become infergraph's errors.

A node client hands its bytes to ``wire``: :class:`~infergraph.wire.http1.client.HttpPool`
over REST, :class:`~infergraph.wire.grpc.client.GrpcChannel` over gRPC. What goes wrong
there comes back as the wire's own exceptions, which say what happened to the bytes, not
what the graph should answer. :class:`WireErrors` turns each into that answer, once, with
``raise ... from exc``; a replica that cannot be reached at all becomes :class:`Unreachable`,
on which the client marks the replica down and may send the call to another one::

    the wire raises                              the client raises
    HTTP/1.1  ConnectFailed, ConnectionLost      Unreachable(NotReady)
              TimeoutError (the call's timeout)  DeadlineExceeded
              ResponseTooLarge                   PayloadTooLarge
              BadResponse                        UserCodeError ("invalid answer: ...")
    gRPC      RpcError UNAVAILABLE               Unreachable(NotReady), Unprocessed included
              RpcError, any other status         error_from_rpc: the error the status
                                                 stands for (ERROR_BY_GRPC), else a 500

A node's answer that arrived whole, whatever its status, is no wire error: its codec reads it
(:mod:`~infergraph.graph.nodes.seldon_codecs`, :mod:`~infergraph.graph.nodes.v2_codecs`).
Nothing else of the wire reaches the node clients: the HTTP/1.1 client reports a refused or
timed-out connect (``OSError``) as ``ConnectFailed``, and the gRPC channel reports a connect
that failed, and a connection that broke HTTP/2 (``http2.ProtocolError``, which ends the
connection), as UNAVAILABLE to each of its calls.

The probes, which ask a replica whether it is up and ask again on any of these, name what
they ask again on here too (:data:`HTTP_FAILURES`, :data:`RPC_UNREACHABLE`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from infergraph.errors import (
    BadMetadata,
    DeadlineExceeded,
    InferGraphError,
    NotReady,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.status import ERROR_BY_GRPC
from infergraph.wire.grpc.client import RpcError
from infergraph.wire.grpc.status import StatusCode
from infergraph.wire.http1.client import (
    BadResponse,
    ConnectFailed,
    ConnectionLost,
    HttpClientError,
    ResponseTooLarge,
)

__all__ = [
    "HTTP_FAILURES",
    "RPC_UNREACHABLE",
    "Unreachable",
    "WireErrors",
    "error_from_rpc",
    "metadata_error",
]

HTTP_FAILURES: tuple[type[Exception], ...] = (HttpClientError, TimeoutError)
"""What the HTTP/1.1 client raises when a call got no usable answer."""
RPC_UNREACHABLE = (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED)
"""The gRPC statuses of a replica that did not answer (yet): a probe asks again."""


class Unreachable(Exception):
    """A replica that cannot be reached at all; ``error`` is what the call fails with if no
    other replica takes it.

    The replica is then marked down, and the call may go to another one."""

    def __init__(self, error: InferGraphError) -> None:
        super().__init__(str(error))
        self.error = error


class _StatusError(Protocol):
    """A gRPC error as grpcio's and this client's both are: ``code()`` and ``details()``."""

    def code(self) -> StatusCode: ...

    def details(self) -> str | None: ...


def error_from_rpc(exc: _StatusError) -> InferGraphError:
    """The infergraph error a node's gRPC status stands for, keeping the node's message.

    A code the client read off the transport (a node answering HTTP 404 without
    ``grpc-status`` is UNIMPLEMENTED, by gRPC's table) is the node's failure, never the
    caller's mistake: UNAVAILABLE stays "not ready", anything else is a 500.
    """
    if getattr(exc, "transport", False) and exc.code() is not StatusCode.UNAVAILABLE:
        kind: type[InferGraphError] = UserCodeError
    else:
        kind = ERROR_BY_GRPC.get(exc.code(), UserCodeError)
    return kind(exc.details() or exc.code().name)


def metadata_error(exc: RpcError) -> BadMetadata:
    """A node's answer to ``Model/Metadata`` that is an error status: what ``metadata()``
    reports (the node is up; its metadata is not)."""
    return BadMetadata(exc.details() or exc.code().name)


class WireErrors:
    """``with wire_errors:`` around one call to the wire, over either transport.

    Each client holds one (``timeout`` is the call timeout a :class:`DeadlineExceeded`
    names), so a call enters it without allocating anything; exceptions that are not the
    wire's pass through as they are.
    """

    __slots__ = ("timeout",)

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, RpcError):
            error = error_from_rpc(exc)
            if exc.code() is StatusCode.UNAVAILABLE:
                raise Unreachable(error) from exc
            raise error from exc
        if isinstance(exc, ConnectFailed | ConnectionLost):
            raise Unreachable(NotReady(str(exc))) from exc
        if isinstance(exc, TimeoutError):
            raise DeadlineExceeded(f"no answer within {self.timeout} s") from exc
        if isinstance(exc, ResponseTooLarge):
            raise PayloadTooLarge(f"{exc} (the message size limit)") from exc
        if isinstance(exc, BadResponse):
            raise UserCodeError(f"invalid answer: {exc}") from exc
