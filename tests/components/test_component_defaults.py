"""Seldon's defaults, over REST and gRPC: a class with none of Seldon's methods is served,
every endpoint answering what Seldon's wrapper answers for a missing method; feedback that
returns ``None``; ``*_raw`` methods and ``tags()``/``metrics()``/``init_metadata()`` that
raise SeldonNotImplementedError; what a router's answer carries (reference §1.3, §1.6;
checklist 4, 8, 24, 31)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.sdk import SeldonNotImplementedError, SeldonResponse
from infergraph.testing import serve_grpc

ROWS = {"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}}
BAD_DATA = "MICROSERVICE_BAD_DATA"


class Nothing:
    """None of Seldon's methods: Seldon serves it anyway."""

    def helper(self) -> int:
        return 1


def rows_pb() -> pb.SeldonMessage:
    msg = pb.SeldonMessage()
    msg.data.names.extend(["a", "b"])
    msg.data.ndarray.extend([[1, 2]])
    return msg


@pytest.fixture
def channel() -> Iterator[grpc.Channel]:
    with serve_grpc(Nothing()) as address, grpc.insecure_channel(address) as ch:
        yield ch


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


# ---------------------------------------------------------------- a class with no method


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        pytest.param(
            "POST",
            "/predict",
            ROWS,
            {"meta": {}, "data": {"names": [], "ndarray": []}},
            id="predict-answers-empty",
        ),
        pytest.param(
            "POST",
            "/transform-input",
            ROWS,
            {"meta": {}, "data": {"names": ["t:0", "t:1"], "ndarray": [[1, 2]]}},
            id="transform-input-echoes",
        ),
        pytest.param(
            "POST",
            "/transform-output",
            {"strData": "as is"},
            {"meta": {}, "strData": "as is"},
            id="transform-output-echoes",
        ),
        pytest.param(
            "POST",
            "/send-feedback",
            {"request": ROWS, "reward": 1},
            {"meta": {}, "data": {"ndarray": []}},
            id="feedback-answers-empty",
        ),
        pytest.param(
            "GET", "/health/status", None, {"meta": {}, "strData": "healthy"}, id="healthy"
        ),
        pytest.param(
            "GET",
            "/metadata",
            None,
            {"name": "", "versions": [], "platform": "", "inputs": [], "outputs": [], "custom": {}},
            id="metadata-defaults",
        ),
    ],
)
async def test_rest_defaults_of_a_class_without_methods(asgi_client, method, path, body, expected):
    client = asgi_client(Nothing())
    response = await client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == expected


@pytest.mark.parametrize(
    ("path", "body", "info"),
    [
        pytest.param("/route", ROWS, "Route not defined", id="route"),
        pytest.param("/aggregate", [ROWS], "Aggregate not defined", id="aggregate"),
    ],
)
async def test_rest_route_and_aggregate_of_a_class_without_methods(
    asgi_client, seldon_error, path, body, info
):
    response = await asgi_client(Nothing()).post(path, json=body)
    seldon_error(response, 400, BAD_DATA, info)


async def test_rest_probes_of_a_class_without_methods(asgi_client):
    client = asgi_client(Nothing())
    assert (await client.get("/health/ping")).text == "pong"
    assert (await client.get("/ready")).status_code == 200


def test_grpc_predict_of_a_class_without_methods(channel: grpc.Channel) -> None:
    response = pb_grpc.ModelStub(channel).Predict(rows_pb(), timeout=30)
    assert response.data.WhichOneof("data_oneof") == "ndarray"  # an empty ndarray, as Seldon
    assert as_dict(response) == {"meta": {}, "data": {"ndarray": []}}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda ch, m: pb_grpc.TransformerStub(ch).TransformInput(m), id="input"),
        pytest.param(
            lambda ch, m: pb_grpc.OutputTransformerStub(ch).TransformOutput(m), id="output"
        ),
        pytest.param(lambda ch, m: pb_grpc.GenericStub(ch).TransformInput(m), id="generic"),
    ],
)
def test_grpc_transforms_of_a_class_without_methods_echo(channel: grpc.Channel, call) -> None:
    response = call(channel, rows_pb())
    assert as_dict(response) == {
        "meta": {},
        "data": {"names": ["t:0", "t:1"], "ndarray": [[1.0, 2.0]]},
    }


@pytest.mark.parametrize(
    ("call", "info"),
    [
        pytest.param(
            lambda ch: pb_grpc.RouterStub(ch).Route(rows_pb(), timeout=30),
            "Route not defined",
            id="route",
        ),
        pytest.param(
            lambda ch: pb_grpc.CombinerStub(ch).Aggregate(
                pb.SeldonMessageList(seldonMessages=[rows_pb()]), timeout=30
            ),
            "Aggregate not defined",
            id="aggregate",
        ),
    ],
)
def test_grpc_route_and_aggregate_of_a_class_without_methods(
    channel: grpc.Channel, call, info
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(channel)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert info in (caught.value.details() or "")


def test_grpc_feedback_and_metadata_of_a_class_without_methods(channel: grpc.Channel) -> None:
    stub = pb_grpc.ModelStub(channel)
    feedback = stub.SendFeedback(pb.Feedback(request=rows_pb(), reward=1.0), timeout=30)
    assert as_dict(feedback) == {"meta": {}, "data": {"ndarray": []}}
    metadata = stub.Metadata(empty_pb2.Empty(), timeout=30)
    assert (metadata.name, list(metadata.inputs), list(metadata.outputs)) == ("", [], [])


# ---------------------------------------------------------------- feedback returning None


class FeedbackNone:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def predict(self, X, names):
        return X

    def tags(self):
        return {"static": "yes"}

    def send_feedback(self, features, names, reward, truth, routing=None):
        self.calls.append((features.tolist(), names, reward))
        return None


class FeedbackRawNone:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def predict(self, X, names):
        return X

    def send_feedback_raw(self, feedback):
        self.calls.append(feedback)
        return None


REQUEST_WITH_META = {**ROWS, "meta": {"puid": "p-1", "tags": {"from": "request"}}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"request": REQUEST_WITH_META, "reward": 0.5},
            # the request's data kind, its puid, the static tags; not the request's tags
            {"meta": {"puid": "p-1", "tags": {"static": "yes"}}, "data": {"ndarray": []}},
            id="mirrors-the-request",
        ),
        pytest.param(
            {"reward": 0.5},
            {"meta": {"tags": {"static": "yes"}}, "data": {"tensor": {"shape": [0]}}},
            id="no-request-gives-a-tensor",
        ),
    ],
)
async def test_rest_send_feedback_returning_none(asgi_client, body, expected):
    model = FeedbackNone()
    response = await asgi_client(model).post("/api/v1.0/feedback", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == expected
    assert [reward for _, _, reward in model.calls] == [0.5]


def test_grpc_send_feedback_returning_none() -> None:
    model = FeedbackNone()
    request = rows_pb()
    request.meta.puid = "p-1"
    with serve_grpc(model) as address, grpc.insecure_channel(address) as ch:
        stub = pb_grpc.ModelStub(ch)
        answer = stub.SendFeedback(pb.Feedback(request=request, reward=0.5), timeout=30)
        empty = stub.SendFeedback(pb.Feedback(reward=0.5), timeout=30)
    assert as_dict(answer) == {
        "meta": {"puid": "p-1", "tags": {"static": "yes"}},
        "data": {"ndarray": []},
    }
    assert as_dict(empty) == {
        "meta": {"tags": {"static": "yes"}},
        "data": {"tensor": {"shape": [0]}},
    }
    assert model.calls == [([[1.0, 2.0]], ["a", "b"], 0.5), ([], [], 0.5)]


async def test_rest_send_feedback_raw_returning_none(asgi_client):
    model = FeedbackRawNone()
    body = {"request": ROWS, "reward": 1.0}
    response = await asgi_client(model).post("/send-feedback", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {}  # an empty SeldonMessage
    assert len(model.calls) == 1
    assert model.calls[0].reward == 1.0  # send_feedback_raw always gets a Feedback proto


def test_grpc_send_feedback_raw_returning_none() -> None:
    model = FeedbackRawNone()
    with serve_grpc(model) as address, grpc.insecure_channel(address) as ch:
        answer = pb_grpc.ModelStub(ch).SendFeedback(pb.Feedback(reward=1.0), timeout=30)
    assert answer == pb.SeldonMessage()
    assert [fb.reward for fb in model.calls] == [1.0]


async def test_send_feedback_returning_seldon_response_of_none(asgi_client):
    class Tagged:
        def send_feedback(self, features, names, reward, truth, routing=None):
            return SeldonResponse(None, tags={"runtime": "yes"})

    response = await asgi_client(Tagged()).post("/send-feedback", json={"request": ROWS})
    assert response.json() == {"meta": {"tags": {"runtime": "yes"}}, "data": {"ndarray": []}}


# ---------------------------------------------------------------- "not implemented" means default


class RawSaysNotImplemented:
    """Each *_raw raises SeldonNotImplementedError: Seldon then calls the high-level method."""

    def route_raw(self, msg):
        raise SeldonNotImplementedError("use route")

    def route(self, features, names):
        return 1

    def aggregate_raw(self, msgs):
        raise SeldonNotImplementedError("use aggregate")

    def aggregate(self, features_list, names_list):
        return features_list[-1]

    def send_feedback_raw(self, feedback):
        raise SeldonNotImplementedError("use send_feedback")

    def send_feedback(self, features, names, reward, truth, routing=None):
        return [[reward]]

    def health_status_raw(self):
        raise SeldonNotImplementedError("use health_status")

    def health_status(self):
        return "fine"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        pytest.param("POST", "/route", ROWS, {"names": ["t:0"], "ndarray": [[1]]}, id="route"),
        pytest.param(
            "POST",
            "/aggregate",
            [ROWS, {"data": {"ndarray": [[7, 8]]}}],
            {"names": ["t:0", "t:1"], "ndarray": [[7, 8]]},
            id="aggregate",
        ),
        pytest.param(
            "POST",
            "/send-feedback",
            {"request": ROWS, "reward": 2},
            {"names": ["t:0"], "ndarray": [[2.0]]},
            id="feedback",
        ),
    ],
)
async def test_rest_raw_not_implemented_falls_through(asgi_client, method, path, body, expected):
    response = await asgi_client(RawSaysNotImplemented()).request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == expected


async def test_rest_health_status_raw_not_implemented_falls_through(asgi_client):
    response = await asgi_client(RawSaysNotImplemented()).get("/health/status")
    assert response.json() == {"meta": {}, "strData": "fine"}


def test_grpc_raw_not_implemented_falls_through() -> None:
    with serve_grpc(RawSaysNotImplemented()) as address, grpc.insecure_channel(address) as ch:
        route = pb_grpc.RouterStub(ch).Route(rows_pb(), timeout=30)
        second = pb.SeldonMessage()
        second.data.ndarray.extend([[7, 8]])
        both = pb.SeldonMessageList(seldonMessages=[rows_pb(), second])
        aggregate = pb_grpc.CombinerStub(ch).Aggregate(both, timeout=30)
        feedback = pb_grpc.RouterStub(ch).SendFeedback(
            pb.Feedback(request=rows_pb(), reward=2.0), timeout=30
        )
    assert as_dict(route)["data"] == {"names": ["t:0"], "ndarray": [[1.0]]}
    assert as_dict(aggregate)["data"] == {"names": ["t:0", "t:1"], "ndarray": [[7.0, 8.0]]}
    assert as_dict(feedback)["data"] == {"names": ["t:0"], "ndarray": [[2.0]]}


class StaticNotImplemented:
    """tags(), metrics() and init_metadata() that raise SeldonNotImplementedError."""

    def predict(self, X, names):
        return X

    def tags(self):
        raise SeldonNotImplementedError("no tags")

    def metrics(self):
        raise SeldonNotImplementedError("no metrics")

    def init_metadata(self):
        raise SeldonNotImplementedError("no metadata")


async def test_rest_static_methods_not_implemented_mean_defaults(asgi_client):
    client = asgi_client(StaticNotImplemented(), unit_image="repo/m:2")
    response = await client.post("/predict", json=ROWS)
    assert response.status_code == 200, response.text
    assert response.json()["meta"] == {}
    metadata = (await client.get("/metadata")).json()
    assert (metadata["name"], metadata["versions"]) == ("repo/m", ["2"])


def test_grpc_static_methods_not_implemented_mean_defaults() -> None:
    with (
        serve_grpc(StaticNotImplemented(), unit_image="repo/m:2") as address,
        grpc.insecure_channel(address) as ch,
    ):
        answer = pb_grpc.ModelStub(ch).Predict(rows_pb(), timeout=30)
        metadata = pb_grpc.SeldonStub(ch).ModelMetadata(pb.SeldonModelMetadataRequest(), timeout=30)
    assert as_dict(answer)["meta"] == {}
    assert (metadata.name, list(metadata.versions)) == ("repo/m", ["2"])


# ---------------------------------------------------------------- what a router's answer carries


class TaggedRouter:
    def tags(self):
        return {"static": "yes"}

    def route(self, features, names):
        return 0


async def test_rest_route_answer_carries_its_own_tags_not_the_requests(asgi_client):
    """Seldon builds a router's answer without the request's meta: its puid only."""
    response = await asgi_client(TaggedRouter()).post("/route", json=REQUEST_WITH_META)
    assert response.json() == {
        "meta": {"puid": "p-1", "tags": {"static": "yes"}},
        "data": {"names": ["t:0"], "ndarray": [[0]]},
    }


def test_grpc_route_answer_carries_its_own_tags_not_the_requests() -> None:
    request = rows_pb()
    request.meta.puid = "p-1"
    request.meta.tags["from"].string_value = "request"
    with serve_grpc(TaggedRouter()) as address, grpc.insecure_channel(address) as ch:
        answer = pb_grpc.RouterStub(ch).Route(request, timeout=30)
    assert as_dict(answer)["meta"] == {"puid": "p-1", "tags": {"static": "yes"}}
