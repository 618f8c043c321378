"""One REST client and one gRPC client serve every hop codec (graph/nodes/codecs.py).

The client owns the replicas, the probes and the wire; the codec it is given owns the hop's
protocol. Each client is run here with each codec of its transport against a real node
(REST on the node's own HTTP server, gRPC from ``infergraph.testing``), and every call is
checked to have gone the codec's way: the client sends what the codec encoded and hands the
answer back to that codec.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from infergraph.app import component_app
from infergraph.graph.nodes import (
    GrpcNodeClient,
    ReplicatedNodeClient,
    RestNodeClient,
    SeldonJsonCodec,
    SeldonProtoCodec,
    V2GrpcCodec,
    V2RestCodec,
)
from infergraph.graph.nodes.v2_codecs import MODEL_INFER
from infergraph.protocol.message import DataKind, Feedback, Message, Meta
from infergraph.serving.server import bind_socket
from infergraph.testing import serve_grpc
from infergraph.wire.http1.server import HttpServer

MiB = 1024 * 1024


class Node:
    """Doubles what it predicts, sums what it aggregates, keeps the rewards it is sent."""

    def __init__(self) -> None:
        self.rewards: list[float] = []

    def predict(self, X: Any, names: Any) -> Any:
        return np.asarray(X) * 2

    def aggregate(self, Xs: Any, names: Any) -> Any:
        return np.sum([np.asarray(x) for x in Xs], axis=0)

    def send_feedback(self, X: Any, names: Any, reward: float, truth: Any) -> Any:
        self.rewards.append(reward)
        return []


class Recording:
    """A codec that records the path of every request it encoded and every answer it read,
    doing what the codec it wraps does."""

    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.sent: list[str] = []
        self.read: list[str] = []

    def _sent(self, request: Any) -> Any:
        self.sent.append(request[0])
        return request

    def call(self, method: str, message: Message) -> Any:
        return self._sent(self.codec.call(method, message))

    def batch(self, messages: list[Message]) -> Any:
        return self._sent(self.codec.batch(messages))

    def feedback(self, feedback: Feedback) -> Any:
        return self._sent(self.codec.feedback(feedback))

    def answer(self, request: Any, *answer: Any) -> Message:
        self.read.append(request[0])
        message: Message = self.codec.answer(request, *answer)
        return message


@contextlib.asynccontextmanager
async def node_at(transport: str, node: Node) -> AsyncIterator[str]:
    if transport == "grpc":
        with serve_grpc(node, unit_id="node") as address:
            yield address
        return
    app = component_app(node, unit_id="node")
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    server = HttpServer(app)
    await server.start(sock)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await server.stop(grace=1.0)


def client(transport: str, address: str, codec: Any) -> ReplicatedNodeClient[Any]:
    kind = GrpcNodeClient if transport == "grpc" else RestNodeClient
    return kind("node", [address], max_message_size=MiB, codec=codec)


def tensor(rows: int, puid: str = "p1") -> Message:
    """A float tensor of ``rows`` x 16: from 16 rows on, REST's V2 codec sends it binary."""
    data = np.arange(rows * 16, dtype=np.float64).reshape(rows, 16)
    return Message(DataKind.NDARRAY, data, [], Meta(puid=puid))


SELDON_JSON = ("/predict", "/aggregate", "/send-feedback")
SELDON_PROTO = (
    "/seldon.protos.Model/Predict",
    "/seldon.protos.Combiner/Aggregate",
    "/seldon.protos.Model/SendFeedback",
)


@pytest.mark.parametrize(
    ("transport", "codec", "paths"),
    [
        pytest.param("rest", lambda: SeldonJsonCodec(MiB), SELDON_JSON, id="rest-seldon-json"),
        pytest.param(  # a combiner's inputs and feedback go as Seldon JSON over REST
            "rest",
            lambda: V2RestCodec("node", MiB),
            ("/v2/models/node/infer", "/aggregate", "/send-feedback"),
            id="rest-v2",
        ),
        pytest.param("grpc", SeldonProtoCodec, SELDON_PROTO, id="grpc-seldon-protobuf"),
        pytest.param(
            "grpc",
            lambda: V2GrpcCodec("node"),
            (MODEL_INFER, MODEL_INFER, MODEL_INFER),
            id="grpc-v2",
        ),
    ],
)
async def test_one_client_per_transport_serves_each_codec(
    transport: str, codec: Callable[[], Any], paths: tuple[str, str, str]
) -> None:
    node = Node()
    recording = Recording(codec())
    async with node_at(transport, node) as address:
        made = client(transport, address, recording)
        try:
            await made.load()
            answer = await made.predict(tensor(16))
            assert np.asarray(answer.data).tolist() == (tensor(16).data * 2).tolist()
            assert answer.meta.puid == "p1"
            summed = await made.aggregate([tensor(1), tensor(1)])
            assert np.asarray(summed.data).tolist() == (tensor(1).data * 2).tolist()
            await made.send_feedback(Feedback(tensor(1), None, 0.5, None))
        finally:
            await made.aclose()
    assert node.rewards == [0.5]
    assert tuple(recording.sent) == paths  # what the codec encoded is what went
    assert recording.read == recording.sent  # and each answer came back to it


@pytest.mark.parametrize(
    ("codec", "small", "large"),
    [
        pytest.param(SeldonJsonCodec(MiB), "/predict", "/predict", id="seldon-json"),
        pytest.param(V2RestCodec("n", MiB), "/predict", "/v2/models/n/infer", id="v2-rest"),
        pytest.param(
            SeldonProtoCodec(),
            "/seldon.protos.Model/Predict",
            "/seldon.protos.Model/Predict",
            id="seldon-protobuf",
        ),
        pytest.param(V2GrpcCodec("n"), MODEL_INFER, MODEL_INFER, id="v2-grpc"),
    ],
)
def test_a_codec_alone_says_where_a_call_goes(codec: Any, small: str, large: str) -> None:
    """Codecs are pure: a call is encoded with no client, no loop and no socket."""
    assert codec.call("predict", tensor(1))[0] == small
    assert codec.call("predict", tensor(16))[0] == large
    assert isinstance(codec.call("predict", tensor(1))[1], bytes)  # the body, encoded
