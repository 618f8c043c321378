"""What the wire raises becomes infergraph's errors in one place (graph/nodes/wire_errors.py).

Each exception the wire's node clients raise goes in, and the error a graph answers with
comes out, with its code, its words and the wire's exception as its cause; a replica that
cannot be reached at all comes out as ``Unreachable`` (the call may go to another replica),
carrying the error the call fails with if none takes it.
"""

from __future__ import annotations

import grpc
import pytest

from infergraph.errors import (
    BadMetadata,
    BadRequest,
    DeadlineExceeded,
    ErrorCode,
    InferGraphError,
    NotFound,
    NotReady,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.graph.nodes.wire_errors import (
    HTTP_FAILURES,
    RPC_UNREACHABLE,
    Unreachable,
    WireErrors,
    error_from_rpc,
    metadata_error,
)
from infergraph.status import http_status
from infergraph.wire.grpc.connection import RpcError, Unprocessed
from infergraph.wire.http1.client import (
    BadResponse,
    ConnectFailed,
    ConnectionLost,
    HttpClientError,
    ResponseTooLarge,
)

Code = grpc.StatusCode

# (what the wire raised, the error the call fails with, its code, its words, unreachable)
CASES = [
    pytest.param(
        ConnectFailed("127.0.0.1:1: Connection refused"),
        NotReady,
        ErrorCode.NOT_READY,
        "127.0.0.1:1: Connection refused",
        True,
        id="http-connect-failed",
    ),
    pytest.param(
        ConnectionLost("127.0.0.1:1: connection closed by the server", answered=False),
        NotReady,
        ErrorCode.NOT_READY,
        "127.0.0.1:1: connection closed by the server",
        True,
        id="http-connection-lost",
    ),
    pytest.param(
        TimeoutError(),
        DeadlineExceeded,
        ErrorCode.DEADLINE_EXCEEDED,
        "no answer within 2.5 s",
        False,
        id="http-timeout",
    ),
    pytest.param(
        ResponseTooLarge("an answer of 9 bytes exceeds the limit of 4 bytes"),
        PayloadTooLarge,
        ErrorCode.PAYLOAD_TOO_LARGE,
        "an answer of 9 bytes exceeds the limit of 4 bytes (the message size limit)",
        False,
        id="http-response-too-large",
    ),
    pytest.param(
        BadResponse("malformed answer: invalid constant string"),
        UserCodeError,
        ErrorCode.INTERNAL,
        "invalid answer: malformed answer: invalid constant string",
        False,
        id="http-bad-response",
    ),
    pytest.param(
        RpcError(Code.UNAVAILABLE, "cannot connect to 127.0.0.1:1: refused"),
        NotReady,
        ErrorCode.NOT_READY,
        "cannot connect to 127.0.0.1:1: refused",
        True,
        id="grpc-unavailable",
    ),
    pytest.param(
        Unprocessed(Code.UNAVAILABLE, "the connection is closing"),
        NotReady,
        ErrorCode.NOT_READY,
        "the connection is closing",
        True,
        id="grpc-unprocessed",
    ),
    pytest.param(
        RpcError(Code.UNAVAILABLE, "stream reset", transport=True),
        NotReady,
        ErrorCode.NOT_READY,
        "stream reset",
        True,
        id="grpc-unavailable-read-off-the-transport",
    ),
    pytest.param(
        RpcError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        DeadlineExceeded,
        ErrorCode.DEADLINE_EXCEEDED,
        "Deadline Exceeded",
        False,
        id="grpc-deadline",
    ),
    pytest.param(
        RpcError(Code.RESOURCE_EXHAUSTED, "the request of 9 bytes is larger than the limit"),
        PayloadTooLarge,
        ErrorCode.PAYLOAD_TOO_LARGE,
        "the request of 9 bytes is larger than the limit",
        False,
        id="grpc-resource-exhausted",
    ),
    pytest.param(
        RpcError(Code.INVALID_ARGUMENT, "the node's words"),
        BadRequest,
        ErrorCode.BAD_REQUEST,
        "the node's words",
        False,
        id="grpc-invalid-argument",
    ),
    pytest.param(
        RpcError(Code.NOT_FOUND, "no such model"),
        NotFound,
        ErrorCode.NOT_FOUND,
        "no such model",
        False,
        id="grpc-not-found",
    ),
    pytest.param(
        RpcError(Code.INTERNAL, ""),
        UserCodeError,
        ErrorCode.INTERNAL,
        "INTERNAL",
        False,
        id="grpc-internal-without-details",
    ),
    pytest.param(
        RpcError(Code.UNIMPLEMENTED, "the server answered HTTP 404, not gRPC", transport=True),
        UserCodeError,
        ErrorCode.INTERNAL,
        "the server answered HTTP 404, not gRPC",
        False,
        id="grpc-status-read-off-the-transport",
    ),
]


def _raised(exc: BaseException) -> BaseException:
    with pytest.raises(BaseException) as info, WireErrors(2.5):
        raise exc
    return info.value


@pytest.mark.parametrize(("wire", "kind", "code", "words", "unreachable"), CASES)
def test_each_wire_exception_becomes_its_infergraph_error(
    wire: Exception, kind: type[InferGraphError], code: ErrorCode, words: str, unreachable: bool
) -> None:
    raised = _raised(wire)
    assert raised.__cause__ is wire  # wrapped once, with ``raise ... from exc``
    if unreachable:
        assert isinstance(raised, Unreachable)  # the replica is marked down, the call retried
        error: BaseException = raised.error
        assert str(raised) == words
    else:
        error = raised
    assert type(error) is kind
    assert isinstance(error, InferGraphError) and error.code is code
    assert str(error) == words


def test_a_deadline_names_the_call_timeout_it_ran_past() -> None:
    with pytest.raises(DeadlineExceeded, match=r"^no answer within None s$"), WireErrors(None):
        raise TimeoutError
    error = _raised(TimeoutError())
    assert isinstance(error, DeadlineExceeded) and http_status(error) == 504


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(BadRequest("a codec's refusal"), id="infergraph-error"),
        pytest.param(ValueError("a bug"), id="foreign"),
        pytest.param(KeyboardInterrupt(), id="base-exception"),
    ],
)
def test_what_is_not_the_wire_s_passes_through_as_it_is(other: BaseException) -> None:
    assert _raised(other) is other


def test_nothing_raised_nothing_changed() -> None:
    with WireErrors(1.0) as entered:
        pass
    assert entered is None


def test_error_from_rpc_reads_any_grpc_error_with_code_and_details() -> None:
    class Foreign(Exception):  # grpcio's AioRpcError has the same two methods, no ``transport``
        def code(self) -> grpc.StatusCode:
            return Code.NOT_FOUND

        def details(self) -> str | None:
            return None

    error = error_from_rpc(Foreign())
    assert type(error) is NotFound and str(error) == "NOT_FOUND"


def test_a_metadata_answer_with_an_error_status_is_bad_metadata() -> None:
    error = metadata_error(RpcError(Code.INTERNAL, "no metadata here"))
    assert type(error) is BadMetadata and str(error) == "no metadata here"
    assert str(metadata_error(RpcError(Code.UNKNOWN, ""))) == "UNKNOWN"


def test_the_probes_ask_again_on_what_says_no_answer_yet() -> None:
    for failure in (ConnectFailed("x"), ConnectionLost("x", answered=True), TimeoutError()):
        assert isinstance(failure, HTTP_FAILURES)
    assert HttpClientError in HTTP_FAILURES
    assert set(RPC_UNREACHABLE) == {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED}
