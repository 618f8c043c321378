"""Graph hops as binary V2: the node clients ``--processes`` uses by default, against real
node servers (REST on the node's own HTTP server, gRPC from ``infergraph.testing``).

A hop must keep every Seldon semantic the Seldon-protocol clients keep (data kinds, names,
puid, tags, requestPath, errors with their status) while the tensors travel as raw bytes,
and every number's type as Seldon JSON keeps it. Over REST, small Seldon messages normally go
as Seldon JSON; the ``every_hop_v2`` fixture sends them all as V2 so that the V2 path is what
these tests check. Over gRPC every message but ``customData`` goes as V2.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest

from infergraph.app import component_app
from infergraph.errors import BadRequest, InferGraphError, MicroserviceError, UserCodeError
from infergraph.graph.nodes import GrpcNodeClient, ReplicatedNodeClient, RestNodeClient, v2_codecs
from infergraph.graph.nodes.v2_codecs import V2GrpcCodec, V2RestCodec, binary_worthy, v2_carries
from infergraph.protocol import seldon_json
from infergraph.protocol.message import DataKind, Feedback, Message, Meta
from infergraph.protocol.v2_hop import (
    read_answer,
    read_call,
    write_aggregate,
    write_answer,
    write_call,
)
from infergraph.protocol.v2_types import InferenceRequest, InferenceResponse, Tensor
from infergraph.serving.server import bind_socket
from infergraph.testing import serve_grpc
from infergraph.wire.http1.server import HttpServer

MiB = 1024 * 1024


class Node:
    """Echoes what it got, in the kind it got it; numbers are doubled; tags name it."""

    def class_names(self) -> list[str]:
        return ["p", "q"]

    def tags(self) -> dict[str, Any]:
        return {"node": "yes"}

    def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
        if isinstance(X, np.ndarray) and X.dtype.kind in "iuf":
            if X.size and X.flat[0] < 0:
                raise MicroserviceError("negative input", status_code=418)
            return X * 2
        return X

    def transform_input(self, X: Any, names: Any) -> Any:
        return np.asarray(X) + 1

    def transform_output(self, X: Any, names: Any) -> Any:
        return np.asarray(X) - 1

    def route(self, X: Any, names: Any) -> int:
        return 1

    def aggregate(self, Xs: Any, names: Any) -> Any:
        return np.sum([np.asarray(x) for x in Xs], axis=0)

    def send_feedback(self, X: Any, names: Any, reward: float, truth: Any) -> Any:
        return []


@contextlib.asynccontextmanager
async def rest_node() -> AsyncIterator[str]:
    app = component_app(Node(), unit_id="node", unit_image="ex/node:1")
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    server = HttpServer(app)
    await server.start(sock)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await server.stop(grace=1.0)


@contextlib.contextmanager
def grpc_node() -> Iterator[str]:
    with serve_grpc(Node(), unit_id="node", unit_image="ex/node:1") as address:
        yield address


@contextlib.asynccontextmanager
async def client(transport: str) -> AsyncIterator[ReplicatedNodeClient[Any]]:
    made: ReplicatedNodeClient[Any]
    if transport == "rest":
        async with rest_node() as address:
            made = RestNodeClient(
                "node", [address], max_message_size=64 * MiB, codec=V2RestCodec("node", 64 * MiB)
            )
            try:
                await made.load()
                yield made
            finally:
                await made.aclose()
    else:
        with grpc_node() as address:
            made = GrpcNodeClient(
                "node", [address], max_message_size=64 * MiB, codec=V2GrpcCodec("node")
            )
            try:
                await made.load()
                yield made
            finally:
                await made.aclose()


TRANSPORTS = [pytest.param("rest", id="rest"), pytest.param("grpc", id="grpc")]


@pytest.fixture
def every_hop_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v2_codecs, "BINARY_FROM", 0)


def msg(kind: DataKind, data: Any, names: list[str] | None = None) -> Message:
    return Message(kind, data, names or [], Meta(puid="p-1", tags={"in": 1}))


def _json(value: Any) -> bytes:
    """JSON text, which tells ``1`` from ``1.0`` (``==`` does not)."""
    return seldon_json.dumps(value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_method_keeps_seldon_semantics(every_hop_v2: None, transport: str) -> None:
    async with client(transport) as node:
        answer = await node.predict(msg(DataKind.TENSOR, np.array([[1, 2]]), ["a", "b"]))
        assert answer.kind is DataKind.TENSOR  # Seldon mirrors the request's data kind
        assert _json(answer.data) == b"[[2,4]]"  # integers
        assert answer.names == ["p", "q"]
        assert answer.meta.puid == "p-1"
        assert answer.meta.tags == {"in": 1, "node": "yes"}
        assert answer.meta.request_path == {"node": "ex/node:1"}
        one = np.array([[1.5]])
        assert _json((await node.transform_input(msg(DataKind.NDARRAY, one))).data) == b"[[2.5]]"
        assert _json((await node.transform_output(msg(DataKind.NDARRAY, one))).data) == b"[[0.5]]"
        assert np.asarray((await node.route(msg(DataKind.NDARRAY, [[0]]))).data).ravel()[0] == 1
        summed = await node.aggregate([msg(DataKind.NDARRAY, [[1]]), msg(DataKind.NDARRAY, [[2]])])
        assert np.asarray(summed.data).tolist() == [[3]]
        feedback = Feedback(msg(DataKind.NDARRAY, [[1]]), None, 1.0, None)
        assert (await node.send_feedback(feedback)).meta.puid == "p-1"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("kind", "data"),
    [
        pytest.param(DataKind.STR, "hello, wörld", id="strData"),
        pytest.param(DataKind.BIN, b"\x00\xff raw", id="binData"),
        pytest.param(DataKind.JSON, {"a": [1, {"b": None}]}, id="jsonData"),
        pytest.param(DataKind.NDARRAY, [["a", 1], ["b", 2.5]], id="mixed-ndarray"),
        pytest.param(DataKind.NDARRAY, [["x", "y"]], id="string-ndarray"),
    ],
)
async def test_payloads_that_are_no_tensor_round_trip(
    every_hop_v2: None, transport: str, kind: DataKind, data: Any
) -> None:
    async with client(transport) as node:
        answer = await node.predict(msg(kind, data))
        assert answer.kind is kind
        got = answer.data.tolist() if isinstance(answer.data, np.ndarray) else answer.data
        expected = np.asarray(data).tolist() if kind is DataKind.NDARRAY else data
        assert got == expected


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_v2_messages_stay_v2_and_large_tensors_travel_raw(transport: str) -> None:
    big = np.arange(1000 * 100, dtype=np.float32).reshape(1000, 100)
    request = InferenceRequest([Tensor("x", "FP32", [1000, 100], big)])
    async with client(transport) as node:
        answer = await node.predict(Message(DataKind.V2, request, ["x"], Meta(puid="p")))
        assert answer.kind is DataKind.V2
        [out] = answer.data.inputs
        assert out.datatype == "FP32" and out.shape == [1000, 100]
        assert np.array_equal(out.data, big * 2)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_node_errors_keep_status_and_words(every_hop_v2: None, transport: str) -> None:
    async with client(transport) as node:
        with pytest.raises(InferGraphError) as info:
            await node.predict(msg(DataKind.NDARRAY, [[-1]]))
        assert "negative input" in info.value.message
        if transport == "rest":
            assert info.value.status_code == 418


# ---------------------------------------------------------------- the codec itself


@pytest.mark.parametrize(
    ("data", "tensors"),
    [
        pytest.param(np.array([[1.0, 2.0]]), [], id="inline"),
        pytest.param(np.array([[1.0, 2.0]], np.float32), ["FP32"], id="tensor"),
    ],
)
def test_a_hop_round_trips_meta_names_and_status(data: np.ndarray, tensors: list[str]) -> None:
    message = Message(DataKind.NDARRAY, data, ["a", "b"])
    message.meta = Meta(
        "p", {"t": 1}, {"r": 0}, {"n": "img"}, [{"key": "k", "type": "GAUGE", "value": 1}]
    )
    call = write_call(message, "transform_input", "node")
    assert call.model_name == "node" and [t.datatype for t in call.inputs] == tensors
    method, back = read_call(call) or ("", None)
    assert method == "transform_input" and back is not None
    assert back.kind is DataKind.NDARRAY and back.names == ["a", "b"]
    assert back.meta == message.meta
    answer = write_answer(back)
    response = InferenceResponse("node", answer.inputs, parameters=answer.parameters)
    assert read_answer(response).meta == message.meta


def test_an_ordinary_v2_request_is_no_hop_and_an_unknown_method_is_refused() -> None:
    plain = InferenceRequest([Tensor("x", "FP32", [1], np.zeros(1, np.float32))])
    assert read_call(plain) is None
    bad = write_call(Message(DataKind.NDARRAY, [[1]]), "explain", "node")
    with pytest.raises(BadRequest, match="not one of"):
        read_call(bad)
    garbled = InferenceRequest(plain.inputs, parameters={"infergraph_seldon": "{nope"})
    with pytest.raises(BadRequest, match="not valid JSON"):
        read_call(garbled)
    envelope = '{"kind": "strData", "method": "predict", "data": 5}'
    wrong = InferenceRequest([], parameters={"infergraph_seldon": envelope})
    with pytest.raises(BadRequest, match=r"infergraph_seldon\.data does not hold a strData"):
        read_call(wrong)


def test_a_plain_v2_answer_is_read_as_v2() -> None:
    out = Tensor("y", "INT32", [2], np.array([1, 2], np.int32))
    message = read_answer(InferenceResponse("m", [out]))
    assert message.kind is DataKind.V2 and message.data.inputs == [out]


def test_a_hop_answer_with_a_foreign_shape_is_the_nodes_fault() -> None:
    with pytest.raises((BadRequest, UserCodeError)):
        read_answer(
            InferenceResponse(
                "m",
                [Tensor("a", "FP32", [1], np.zeros(1, np.float32))] * 2,
                parameters={"infergraph_seldon": '{"kind": "ndarray"}'},
            )
        )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_large_seldon_tensors_go_binary_and_small_ones_as_seldon(transport: str) -> None:
    big = np.ones((1000, 100), np.float32)
    async with client(transport) as node:
        answer = await node.predict(msg(DataKind.NDARRAY, big))
        # binary V2 keeps float32; Seldon JSON (or protobuf) would answer float64
        assert answer.kind is DataKind.NDARRAY and answer.data.dtype == np.float32
        assert float(answer.data.sum()) == 2 * big.size
    assert binary_worthy(msg(DataKind.NDARRAY, big))
    assert not binary_worthy(msg(DataKind.NDARRAY, [[1.0, 2.0]]))
    assert not binary_worthy(msg(DataKind.NDARRAY, big.tolist()))  # JSON already
    # over REST a small array goes as V2 when Seldon JSON would not give it back as it is
    assert not binary_worthy(msg(DataKind.NDARRAY, np.array([[1, 2]])))
    assert binary_worthy(msg(DataKind.NDARRAY, np.array([[1.5]], np.float32)))
    assert binary_worthy(msg(DataKind.NDARRAY, np.array([[np.nan]])))
    assert not binary_worthy(msg(DataKind.STR, "x" * 10_000))
    assert binary_worthy(msg(DataKind.TENSOR, [[0.0] * 256]))


def test_over_grpc_everything_but_custom_data_goes_v2() -> None:
    for kind, data in [
        (DataKind.NDARRAY, np.array([[1, 2]])),
        (DataKind.NDARRAY, [[1, 2.5]]),
        (DataKind.TENSOR, np.array([1.0])),
        (DataKind.STR, "x"),
        (DataKind.BIN, b"x"),
        (DataKind.JSON, {"a": 1}),
        (DataKind.NONE, None),
    ]:
        assert v2_carries(msg(kind, data)), kind
    assert not v2_carries(msg(DataKind.CUSTOM, None))  # only protobuf carries an Any


class Typed:
    """Answers what it got, or integer labels, or a list mixing ints and floats."""

    def tags(self) -> dict[str, Any]:
        return {"count": 2}

    def predict(self, X: Any, names: Any) -> Any:
        if isinstance(X, np.ndarray) and X.dtype.kind == "f":
            return np.array([[0, 1]])  # a classifier's labels for float features
        if isinstance(X, np.ndarray) and X.dtype.kind == "b":
            return [[1, 2.5]]
        return X

    def aggregate(self, Xs: Any, names: Any) -> Any:
        assert [np.asarray(x).dtype.kind for x in Xs] == ["i", "i"]
        return np.sum([np.asarray(x) for x in Xs], axis=0)


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        pytest.param(DataKind.NDARRAY, np.array([[1, 2, 3]]), [[1, 2, 3]], id="ints"),
        pytest.param(DataKind.NDARRAY, np.array([[0.5, 2.0]]), [[0, 1]], id="labels"),
        pytest.param(DataKind.NDARRAY, np.array([[True]]), [[1, 2.5]], id="mixed-list"),
        pytest.param(DataKind.TENSOR, np.array([[1, 2]]), [[1, 2]], id="tensor-of-ints"),
        pytest.param(DataKind.JSON, {"n": 1, "l": [1, 2.5]}, {"n": 1, "l": [1, 2.5]}, id="json"),
    ],
)
async def test_small_messages_over_grpc_keep_every_number_as_it_is(
    kind: DataKind, data: Any, expected: Any
) -> None:
    with serve_grpc(Typed(), unit_id="node") as address:
        node = GrpcNodeClient("node", [address], max_message_size=MiB, codec=V2GrpcCodec("node"))
        try:
            await node.load()
            answer = await node.predict(msg(kind, data))
        finally:
            await node.aclose()
    assert _json(answer.data) == _json(expected)
    assert _json(answer.meta.tags) == _json({"in": 1, "count": 2})


async def test_a_combiner_over_grpc_gets_and_answers_integers() -> None:
    with serve_grpc(Typed(), unit_id="node") as address:
        node = GrpcNodeClient("node", [address], max_message_size=MiB, codec=V2GrpcCodec("node"))
        try:
            await node.load()
            rows = [msg(DataKind.NDARRAY, np.array([[1, 2]])), msg(DataKind.NDARRAY, [[10, 20]])]
            answer = await node.aggregate(rows)
        finally:
            await node.aclose()
    assert _json(answer.data) == b"[[11,22]]"
    assert answer.meta.puid == "p-1"


def test_an_aggregate_hop_carries_seldon_json() -> None:
    call = write_aggregate([msg(DataKind.NDARRAY, np.array([[1]])), msg(DataKind.STR, "s")], "n")
    method, message = read_call(call) or ("", None)
    assert method == "aggregate" and message is not None and message.kind is DataKind.JSON
    assert [m["data"]["ndarray"] if "data" in m else m["strData"] for m in message.data] == [
        [[1]],
        "s",
    ]


def _back(data: Any, kind: DataKind = DataKind.NDARRAY) -> tuple[Any, int]:
    """``data`` through a hop answer, and how many tensors carried it."""
    answer = write_answer(Message(kind, data))
    response = InferenceResponse("node", answer.inputs, parameters=answer.parameters)
    return read_answer(response).data, len(answer.inputs)


def test_what_json_gives_back_rides_inline_and_the_rest_as_tensors_of_its_dtype() -> None:
    # a list is the JSON it is, whatever its size: ints and floats stay mixed
    mixed, tensors = _back([[0.9, 1], [True, None]])
    assert tensors == 0 and _json(mixed) == b"[[0.9,1],[true,null]]"
    big, tensors = _back([[*range(300), 0.5]])
    assert tensors == 0 and type(big[0][0]) is int and type(big[0][-1]) is float
    # a small array JSON decodes to the same dtype: inline, ints stay ints
    for row in ([[1, 2]], [[0.5, 2.0]], [[True, False]], [["a", "bc"]]):
        data, tensors = _back(np.array(row))
        assert tensors == 0 and _json(data) == _json(row)
        assert np.array(data).dtype == np.array(row).dtype
    # anything else keeps its dtype in a tensor: narrow types, NaN, large arrays
    for array in (
        np.array([[1, 2]], np.int32),
        np.array([[1.5]], np.float32),
        np.array([np.nan, np.inf]),
        np.arange(300),
        np.zeros((0, 3), np.int64),
    ):
        data, tensors = _back(array)
        assert tensors == 1 and data.dtype == array.dtype and data.shape == array.shape
        assert np.array_equal(data, array, equal_nan=True)
    assert _back("héllo", DataKind.STR) == ("héllo", 0)
    assert _back({"n": 1, "f": [2.5]}, DataKind.JSON) == ({"n": 1, "f": [2.5]}, 0)
    assert _back(b"\x00", DataKind.BIN) == (b"\x00", 1)
