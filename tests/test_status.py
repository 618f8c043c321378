"""One table from errors to HTTP and gRPC status (``infergraph.status``), served alike.

Six tables used to map errors and statuses, and two of them gave different gRPC codes for
HTTP 400 and 404. Now ``status`` holds them all, in two kinds kept apart: the status our
servers answer for our own errors (bad input 400 and INVALID_ARGUMENT), and what a gRPC
client makes of a transport's HTTP status (gRPC's spec: 400 INTERNAL, 404 UNIMPLEMENTED).
Real servers answer each error with the table's status over REST and over gRPC, and a
node's answer is read back as the error that the graph then answers with the same status.
"""

from __future__ import annotations

import ast
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

import infergraph
from infergraph import errors
from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import (
    BadRequest,
    DeadlineExceeded,
    ErrorCode,
    InferGraphError,
    MethodNotAllowed,
    MicroserviceError,
    NotFound,
    NotImplementedByComponent,
    NotReady,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.graph.nodes.seldon_codecs import error_from_status
from infergraph.graph.nodes.v2_codecs import v2_error
from infergraph.graph.nodes.wire_errors import error_from_rpc
from infergraph.protocol.proto import inference_pb2 as v2
from infergraph.protocol.proto import inference_pb2_grpc as v2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.runtime.v2_service import UnknownModel
from infergraph.settings import GRPC_SERVERS, ComponentSettings
from infergraph.status import (
    APPLICATION_GRPC_BY_HTTP,
    APPLICATION_STATUS,
    ERROR_BY_GRPC,
    ERROR_BY_HTTP,
    TRANSPORT_GRPC_BY_HTTP,
    TRANSPORT_GRPC_BY_HTTP2_ERROR,
    grpc_status,
    http_status,
    status_label,
    transport_grpc_status,
)
from infergraph.transport.grpc.component import build_grpc_server
from infergraph.transport.rest.component import RestApp
from infergraph.wire.grpc.connection import RpcError
from infergraph.wire.http1.server import HttpServer

Code = grpc.StatusCode

# ---------------------------------------------------------------- the tables


def test_every_error_code_has_an_application_status() -> None:
    assert set(APPLICATION_STATUS) == set(ErrorCode)


@pytest.mark.parametrize(
    ("error", "http", "code"),
    [
        pytest.param(BadRequest("x"), 400, Code.INVALID_ARGUMENT, id="bad-input"),
        pytest.param(PayloadTooLarge("x"), 413, Code.RESOURCE_EXHAUSTED, id="too-large"),
        pytest.param(NotFound("x"), 404, Code.NOT_FOUND, id="not-found"),
        pytest.param(UnknownModel("x"), 400, Code.INVALID_ARGUMENT, id="unknown-v2-model"),
        pytest.param(MethodNotAllowed("x"), 405, Code.UNIMPLEMENTED, id="method"),
        pytest.param(NotReady("x"), 503, Code.UNAVAILABLE, id="not-ready"),
        pytest.param(DeadlineExceeded("x"), 504, Code.DEADLINE_EXCEEDED, id="deadline"),
        pytest.param(NotImplementedByComponent("x"), 400, Code.UNIMPLEMENTED, id="unimpl"),
        pytest.param(UserCodeError("x"), 500, Code.INTERNAL, id="user-code"),
        pytest.param(MicroserviceError("x"), 400, Code.INVALID_ARGUMENT, id="seldon-default"),
    ],
)
def test_application_errors_answer_their_status(
    error: InferGraphError, http: int, code: grpc.StatusCode
) -> None:
    assert (http_status(error), grpc_status(error)) == (http, code)
    assert status_label(error) == str(http)


def test_an_error_choosing_an_http_status_answers_that_status_s_grpc_code() -> None:
    """A user's error with the HTTP status one of our codes has answers gRPC as an error
    of that code does (the 400 that UNIMPLEMENTED shares is bad input's)."""
    for code, status in APPLICATION_STATUS.items():
        if code is ErrorCode.UNIMPLEMENTED:
            continue
        chosen = MicroserviceError("x", status_code=status.http)
        assert grpc_status(chosen) is status.grpc, code
    assert grpc_status(MicroserviceError("x", status_code=401)) is Code.UNAUTHENTICATED
    assert grpc_status(MicroserviceError("x", status_code=418)) is Code.INVALID_ARGUMENT
    assert grpc_status(MicroserviceError("x", status_code=599)) is Code.INTERNAL
    assert grpc_status(MicroserviceError("x", status_code=302)) is Code.UNKNOWN


def test_the_transport_table_is_grpc_s_spec() -> None:
    """doc/http-grpc-status-mapping.md, for a gRPC client answered without grpc-status."""
    spec = {
        400: Code.INTERNAL,
        401: Code.UNAUTHENTICATED,
        403: Code.PERMISSION_DENIED,
        404: Code.UNIMPLEMENTED,
        429: Code.UNAVAILABLE,
        502: Code.UNAVAILABLE,
        503: Code.UNAVAILABLE,
        504: Code.UNAVAILABLE,
    }
    assert dict(TRANSPORT_GRPC_BY_HTTP) == spec
    for status in (200, 405, 409, 413, 500, 501):
        assert transport_grpc_status(status) is Code.UNKNOWN
    # and it is not the application's: a transport's 400 and 404 are not the caller's
    assert APPLICATION_GRPC_BY_HTTP[400] is Code.INVALID_ARGUMENT
    assert APPLICATION_GRPC_BY_HTTP[404] is Code.NOT_FOUND
    assert TRANSPORT_GRPC_BY_HTTP2_ERROR == {
        0x7: Code.UNAVAILABLE,
        0x8: Code.CANCELLED,
        0xB: Code.RESOURCE_EXHAUSTED,
        0xC: Code.PERMISSION_DENIED,
    }


def test_a_node_s_answer_is_read_back_as_the_error_with_that_status() -> None:
    """The graph answers what its node answered: status -> error -> the same status."""
    assert set(ERROR_BY_HTTP) == {400, 404, 413, 503, 504}
    for status, kind in ERROR_BY_HTTP.items():
        for read in (
            error_from_status(status, b'{"status": {"info": "words"}}'),
            v2_error(status, b'{"error": "words"}'),
        ):
            assert type(read) is kind and str(read) == "words"
            assert http_status(read) == status
    assert set(ERROR_BY_GRPC) == {
        Code.INVALID_ARGUMENT,
        Code.RESOURCE_EXHAUSTED,
        Code.NOT_FOUND,
        Code.UNAVAILABLE,
        Code.DEADLINE_EXCEEDED,
        Code.UNIMPLEMENTED,
    }
    for code, kind in ERROR_BY_GRPC.items():
        read = error_from_rpc(RpcError(code, "words"))
        assert type(read) is kind and grpc_status(read) is code
    # any other status keeps its own
    assert http_status(error_from_status(418, b"")) == 418
    assert http_status(error_from_status(500, b"")) == 500
    assert type(error_from_rpc(RpcError(Code.INTERNAL, "words"))) is UserCodeError


@pytest.mark.parametrize(
    "code", [Code.UNIMPLEMENTED, Code.INTERNAL, Code.UNKNOWN, Code.RESOURCE_EXHAUSTED]
)
def test_a_status_read_off_the_transport_is_the_node_s_failure(code: grpc.StatusCode) -> None:
    """A node that answers HTTP 404 without grpc-status is UNIMPLEMENTED by gRPC's table,
    but the graph's caller did nothing wrong: a 500, never "not implemented" (400)."""
    read = error_from_rpc(RpcError(code, "the server answered HTTP 404, not gRPC", transport=True))
    assert http_status(read) == 500
    unavailable = error_from_rpc(RpcError(Code.UNAVAILABLE, "reset", transport=True))
    assert http_status(unavailable) == 503


def _status_tables(tree: ast.AST) -> list[int]:
    """Lines of dict literals that map anything to a gRPC code, or an HTTP status or a
    gRPC code to an infergraph error class."""
    error_names = set(errors.__all__)

    def grpc_code(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Attribute) and (
            (isinstance(node.value, ast.Attribute) and node.value.attr == "StatusCode")
            or (isinstance(node.value, ast.Name) and node.value.id in ("StatusCode", "Code"))
        )

    def http(node: ast.AST | None) -> bool:
        return (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int)
            and (100 <= node.value <= 599)
        )

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                to_error = isinstance(value, ast.Name) and value.id in error_names
                if grpc_code(value) or ((grpc_code(key) or http(key)) and to_error):
                    lines.append(node.lineno)
                    break
    return lines


STATUS_OF_TRANSPORT = Path(infergraph.__file__).parent / "wire" / "grpc" / "status.py"
"""Where the gRPC client's tables of non-gRPC answers live (status.py names them too)."""


def test_no_module_but_status_keeps_a_status_table() -> None:
    """The application's tables in status.py, the transport's in wire/grpc/status.py."""
    src = Path(infergraph.__file__).parent
    found = {}
    for path in sorted(src.rglob("*.py")):
        if path in (src / "status.py", STATUS_OF_TRANSPORT) or path.name.endswith("_pb2_grpc.py"):
            continue
        lines = _status_tables(ast.parse(path.read_text(), str(path)))
        if lines:
            found[str(path.relative_to(src))] = lines
    assert found == {}
    assert _status_tables(ast.parse((src / "status.py").read_text()))  # the check sees tables
    assert _status_tables(ast.parse(STATUS_OF_TRANSPORT.read_text()))


# ---------------------------------------------------------------- served alike


class Answers:
    """predict raises the error its request names; route is not implemented."""

    def predict(self, X: Any, names: Any) -> Any:
        status = int(X[0][0])
        raise MicroserviceError(f"chose {status}", status_code=status)


@asynccontextmanager
async def served(kind: str) -> AsyncIterator[tuple[httpx.AsyncClient, grpc.aio.Channel]]:
    """A component over infergraph's HTTP server and a gRPC server of ``kind``."""
    dataplane = ComponentDataPlane(Answers(), ComponentSettings())
    await dataplane.load()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    rest = HttpServer(RestApp(dataplane))
    await rest.start(sock)
    grpc_server = build_grpc_server(dataplane, max_message_size=1 << 20, kind=kind)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
        ):
            yield client, channel
    finally:
        await rest.stop(grace=0)
        await grpc_server.stop(0)
        dataplane.close()


async def grpc_code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


def tensor(values: list[float], shape: list[int]) -> pb.SeldonMessage:
    return pb.SeldonMessage(data=pb.DefaultData(tensor=pb.Tensor(shape=shape, values=values)))


@pytest.mark.parametrize("kind", GRPC_SERVERS)
async def test_bad_input_is_400_and_invalid_argument(kind: str) -> None:
    async with served(kind) as (client, channel):
        ragged = {"data": {"ndarray": [[1.0], [1.0, 2.0]]}}
        answer = await client.post("/api/v1.0/predictions", json=ragged)
        code = await grpc_code(pb_grpc.ModelStub(channel).Predict(tensor([1.0, 2.0], [3])))
    expected = APPLICATION_STATUS[ErrorCode.BAD_REQUEST]
    assert (
        (answer.status_code, code) == (expected.http, expected.grpc) == (400, Code.INVALID_ARGUMENT)
    )


@pytest.mark.parametrize("kind", GRPC_SERVERS)
async def test_an_unknown_v2_model_is_the_same_error_over_rest_and_grpc(kind: str) -> None:
    """Triton's answer to an unknown model is a 400; gRPC gets that error's code."""
    async with served(kind) as (client, channel):
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
        answer = await client.post("/v2/models/nope/infer", json=body)
        request = v2.ModelInferRequest(model_name="nope")
        code = await grpc_code(v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request))
    error = UnknownModel("x")
    assert (answer.status_code, code) == (http_status(error), grpc_status(error))
    assert "nope" in answer.json()["error"]


@pytest.mark.parametrize("kind", GRPC_SERVERS)
async def test_a_method_the_component_lacks_is_the_same_error_over_rest_and_grpc(
    kind: str,
) -> None:
    async with served(kind) as (client, channel):
        answer = await client.post("/route", json={"data": {"ndarray": [[1.0]]}})
        code = await grpc_code(pb_grpc.RouterStub(channel).Route(tensor([1.0], [1, 1])))
    error = NotImplementedByComponent("x")
    assert (answer.status_code, code) == (http_status(error), grpc_status(error))
    assert (answer.status_code, code) == (400, Code.UNIMPLEMENTED)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, Code.INVALID_ARGUMENT),
        (401, Code.UNAUTHENTICATED),
        (404, Code.NOT_FOUND),
        (405, Code.UNIMPLEMENTED),
        (413, Code.RESOURCE_EXHAUSTED),
        (422, Code.INVALID_ARGUMENT),
        (500, Code.INTERNAL),
        (503, Code.UNAVAILABLE),
        (504, Code.DEADLINE_EXCEEDED),
    ],
)
async def test_a_user_s_chosen_status_is_served_alike(status: int, code: grpc.StatusCode) -> None:
    async with served("native") as (client, channel):
        answer = await client.post("/api/v1.0/predictions", json={"data": {"ndarray": [[status]]}})
        got = await grpc_code(pb_grpc.ModelStub(channel).Predict(tensor([status], [1, 1])))
    assert (answer.status_code, got) == (status, code)
    assert got is grpc_status(MicroserviceError("x", status_code=status))
