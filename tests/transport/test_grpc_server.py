"""The gRPC transport, end to end: real grpc clients built from the generated stubs
against ``infergraph.testing.serve_grpc`` (a real server on a free local port)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2, empty_pb2, json_format, struct_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from infergraph.errors import MicroserviceError
from infergraph.observability.component_metrics import REQUESTS_METRIC
from infergraph.observability.metrics import Registry
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.protocol.tftensor import array_to_tf_proto, tf_proto_to_array
from infergraph.sdk import SeldonResponse, create_counter
from infergraph.testing import serve_grpc

SEVEN_SERVICES = {
    f"seldon.protos.{name}"
    for name in (
        "Generic",
        "Model",
        "Router",
        "Transformer",
        "OutputTransformer",
        "Combiner",
        "Seldon",
    )
}


@contextmanager
def channel_to(user: Any, **options: Any) -> Iterator[grpc.Channel]:
    with serve_grpc(user, **options) as address, grpc.insecure_channel(address) as channel:
        yield channel


def call(channel: grpc.Channel, service: str, method: str, request: Any) -> Any:
    stub = getattr(pb_grpc, f"{service}Stub")(channel)
    return getattr(stub, method)(request, timeout=30)


def rpc_error(channel: grpc.Channel, service: str, method: str, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(channel, service, method, request)
    return info.value


def tensor(values: list[float], shape: list[int], **meta: Any) -> pb.SeldonMessage:
    return pb.SeldonMessage(
        data=pb.DefaultData(tensor=pb.Tensor(shape=shape, values=values)), meta=pb.Meta(**meta)
    )


def ndarray(rows: list[Any], names: list[str] | None = None) -> pb.SeldonMessage:
    msg = pb.SeldonMessage()
    msg.data.names.extend(names or [])
    msg.data.ndarray.extend(rows)
    return msg


def tftensor(array: np.ndarray) -> pb.SeldonMessage:
    msg = pb.SeldonMessage()
    array_to_tf_proto(array, msg.data.tftensor)
    return msg


def values(response: pb.SeldonMessage) -> list[float]:
    return list(response.data.tensor.values)


def as_list(list_value: struct_pb2.ListValue) -> list[Any]:
    return json_format.MessageToDict(list_value)  # type: ignore[return-value]


# ---------------------------------------------------------------- every service and method


class Everything:
    """Implements every Seldon method with arithmetic a test can check."""

    def __init__(self) -> None:
        self.feedback: list[tuple[float, Any]] = []

    def predict(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        return X * 2

    def transform_input(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        return X + 1

    def transform_output(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        return X - 1

    def route(self, X: np.ndarray, names: list[str]) -> int:
        return 1

    def aggregate(self, Xs: list[np.ndarray], names_list: list[list[str]]) -> np.ndarray:
        return sum(Xs)  # type: ignore[return-value]

    def send_feedback(
        self, features: np.ndarray, names: list[str], reward: float, truth: np.ndarray
    ) -> None:
        self.feedback.append((reward, truth.tolist()))

    def init_metadata(self) -> dict[str, Any]:
        return {
            "name": "everything",
            "versions": ["v1"],
            "platform": "python",
            "inputs": [{"messagetype": "tensor", "schema": {"names": ["a", "b"], "shape": [2]}}],
            "outputs": [{"name": "out", "datatype": "FP64", "shape": [1, 2]}],
            "custom": {"team": "ml"},
        }


@pytest.fixture(scope="module")
def everything() -> Iterator[tuple[grpc.Channel, Everything]]:
    user = Everything()
    with channel_to(user, unit_id="m") as channel:
        yield channel, user


X12 = tensor([1.0, 2.0], [1, 2])
PAIR = pb.SeldonMessageList(seldonMessages=[X12, tensor([10.0, 20.0], [1, 2])])
FEEDBACK = pb.Feedback(request=X12, reward=0.5, truth=tensor([3.0], [1]))


@pytest.mark.parametrize(
    ("service", "method", "request_msg", "expected"),
    [
        pytest.param("Generic", "TransformInput", X12, [2.0, 3.0], id="Generic.TransformInput"),
        pytest.param("Generic", "TransformOutput", X12, [0.0, 1.0], id="Generic.TransformOutput"),
        pytest.param("Generic", "Route", X12, [1.0], id="Generic.Route"),
        pytest.param("Generic", "Aggregate", PAIR, [11.0, 22.0], id="Generic.Aggregate"),
        pytest.param("Generic", "SendFeedback", FEEDBACK, [], id="Generic.SendFeedback"),
        pytest.param("Model", "Predict", X12, [2.0, 4.0], id="Model.Predict"),
        pytest.param("Model", "SendFeedback", FEEDBACK, [], id="Model.SendFeedback"),
        pytest.param("Router", "Route", X12, [1.0], id="Router.Route"),
        pytest.param("Router", "SendFeedback", FEEDBACK, [], id="Router.SendFeedback"),
        pytest.param("Transformer", "TransformInput", X12, [2.0, 3.0], id="Transformer"),
        pytest.param(
            "OutputTransformer", "TransformOutput", X12, [0.0, 1.0], id="OutputTransformer"
        ),
        pytest.param("Combiner", "Aggregate", PAIR, [11.0, 22.0], id="Combiner.Aggregate"),
        pytest.param("Seldon", "Predict", X12, [2.0, 4.0], id="Seldon.Predict"),
        pytest.param("Seldon", "SendFeedback", FEEDBACK, [], id="Seldon.SendFeedback"),
    ],
)
def test_every_service_method(
    everything: tuple[grpc.Channel, Everything],
    service: str,
    method: str,
    request_msg: Any,
    expected: list[float],
) -> None:
    channel, user = everything
    before = len(user.feedback)
    response = call(channel, service, method, request_msg)
    assert isinstance(response, pb.SeldonMessage)
    assert values(response) == expected
    assert response.meta.requestPath["m"] == ""
    if method == "SendFeedback":
        assert user.feedback[before:] == [(0.5, [3.0])]


@pytest.mark.parametrize(
    ("service", "method", "request_msg"),
    [
        pytest.param("Model", "Metadata", empty_pb2.Empty(), id="Model.Metadata"),
        pytest.param(
            "Seldon",
            "ModelMetadata",
            pb.SeldonModelMetadataRequest(name="everything"),
            id="Seldon.ModelMetadata",
        ),
    ],
)
def test_model_metadata(
    everything: tuple[grpc.Channel, Everything], service: str, method: str, request_msg: Any
) -> None:
    channel, _ = everything
    meta = call(channel, service, method, request_msg)
    assert isinstance(meta, pb.SeldonModelMetadata)
    assert json_format.MessageToDict(meta) == {
        "name": "everything",
        "versions": ["v1"],
        "platform": "python",
        "inputs": [{"messagetype": "tensor", "schema": {"names": ["a", "b"], "shape": [2.0]}}],
        "outputs": [{"name": "out", "datatype": "FP64", "shape": ["1", "2"]}],
        "custom": {"team": "ml"},
    }


def test_default_metadata_comes_from_the_image() -> None:
    with channel_to(Echo(), unit_image="repo/echo:1.2") as channel:
        meta = call(channel, "Model", "Metadata", empty_pb2.Empty())
    assert meta.name == "repo/echo"
    assert list(meta.versions) == ["1.2"]
    assert not meta.inputs and not meta.outputs


def test_graph_metadata_is_unimplemented(everything: tuple[grpc.Channel, Everything]) -> None:
    channel, _ = everything
    error = rpc_error(channel, "Seldon", "GraphMetadata", empty_pb2.Empty())
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "GraphMetadata" in (error.details() or "")


def test_reflection_lists_the_seldon_services(
    everything: tuple[grpc.Channel, Everything],
) -> None:
    channel, _ = everything
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert services >= SEVEN_SERVICES
    assert "grpc.reflection.v1alpha.ServerReflection" in services
    proto = database.FindFileContainingSymbol("seldon.protos.Model")
    assert proto.package == "seldon.protos"
    assert {s.name for s in proto.service} == {name.rsplit(".", 1)[1] for name in SEVEN_SERVICES}


# ---------------------------------------------------------------- data kinds


class Echo:
    """Returns what it gets, remembering it; bytes arrays come back as text."""

    def __init__(self) -> None:
        self.seen: Any = None

    def predict(self, X: Any, names: list[str]) -> Any:
        self.seen = X
        if isinstance(X, np.ndarray) and X.size and isinstance(X.flat[0], bytes):
            # bytes cannot travel in an ndarray (nor in Seldon): send them back as text
            return np.array([x.decode() for x in X.ravel()]).reshape(X.shape)
        return X


def _any(text: str) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Value(string_value=text))
    return packed


def _json_message(data: Any) -> pb.SeldonMessage:
    # well-known types inside infergraph's messages are of its own descriptor pool: fill in place
    msg = pb.SeldonMessage()
    json_format.ParseDict(data, msg.jsonData)
    return msg


def _custom_message(packed: any_pb2.Any) -> pb.SeldonMessage:
    msg = pb.SeldonMessage()
    msg.customData.ParseFromString(packed.SerializeToString())
    return msg


def _check_tensor(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen.dtype == np.float64 and seen.shape == (2, 3)
    assert list(response.data.tensor.shape) == [2, 3]
    assert values(response) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def _check_ndarray(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen.dtype == np.float64  # numbers become floats over protobuf, as in Seldon
    assert seen.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert response.data.WhichOneof("data_oneof") == "ndarray"
    assert as_list(response.data.ndarray) == [[1.0, 2.0], [3.0, 4.0]]
    assert list(response.data.names) == ["t:0", "t:1"]


def _check_ndarray_strings(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen.tolist() == [["a", "b"]]
    assert as_list(response.data.ndarray) == [["a", "b"]]


def _check_tftensor(dtype: Any) -> Callable[[Any, pb.SeldonMessage], None]:
    def check(seen: Any, response: pb.SeldonMessage) -> None:
        assert seen.dtype == dtype and seen.tolist() == [[1, 2], [3, 4]]
        assert response.data.WhichOneof("data_oneof") == "tftensor"
        back = tf_proto_to_array(response.data.tftensor)
        assert back.dtype == dtype and back.tolist() == [[1, 2], [3, 4]]

    return check


def _check_tftensor_strings(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen.tolist() == [b"hello", b"world"]
    assert as_list(response.data.ndarray) == ["hello", "world"]


def _check_bin(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen == b"\x00\x01binary"
    assert response.binData == b"\x00\x01binary"


def _check_str(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen == "some text"
    assert response.strData == "some text"


def _check_json(seen: Any, response: pb.SeldonMessage) -> None:
    assert seen == {"a": [1.0, "x"], "b": {"c": True}}
    assert json_format.MessageToDict(response.jsonData) == {"a": [1.0, "x"], "b": {"c": True}}


def _check_custom(seen: Any, response: pb.SeldonMessage) -> None:
    assert isinstance(seen, any_pb2.Any)
    assert response.WhichOneof("data_oneof") == "customData"
    unpacked = struct_pb2.Value()
    assert response.customData.Unpack(unpacked)
    assert unpacked.string_value == "custom payload"


@pytest.mark.parametrize(
    ("request_msg", "check"),
    [
        pytest.param(tensor([0, 1, 2, 3, 4, 5], [2, 3]), _check_tensor, id="tensor"),
        pytest.param(ndarray([[1, 2], [3, 4]]), _check_ndarray, id="ndarray"),
        pytest.param(ndarray([["a", "b"]]), _check_ndarray_strings, id="ndarray-strings"),
        pytest.param(
            tftensor(np.array([[1, 2], [3, 4]], dtype=np.float32)),
            _check_tftensor(np.float32),
            id="tftensor-float32",
        ),
        pytest.param(
            tftensor(np.array([[1, 2], [3, 4]], dtype=np.int64)),
            _check_tftensor(np.int64),
            id="tftensor-int64",
        ),
        pytest.param(
            tftensor(np.array([b"hello", b"world"], dtype=object)),
            _check_tftensor_strings,
            id="tftensor-string",
        ),
        pytest.param(pb.SeldonMessage(binData=b"\x00\x01binary"), _check_bin, id="binData"),
        pytest.param(pb.SeldonMessage(strData="some text"), _check_str, id="strData"),
        pytest.param(
            _json_message({"a": [1, "x"], "b": {"c": True}}),
            _check_json,
            id="jsonData",
        ),
        pytest.param(_custom_message(_any("custom payload")), _check_custom, id="customData"),
    ],
)
def test_data_kind_round_trip(
    request_msg: pb.SeldonMessage, check: Callable[[Any, pb.SeldonMessage], None]
) -> None:
    user = Echo()
    with channel_to(user) as channel:
        response = call(channel, "Model", "Predict", request_msg)
    check(user.seen, response)


def test_predict_returning_an_any_sends_custom_data() -> None:
    class Custom:
        def predict(self, X: Any, names: list[str]) -> any_pb2.Any:
            return _any(f"rows={len(X)}")

    with channel_to(Custom()) as channel:
        response = call(channel, "Model", "Predict", ndarray([[1], [2], [3]]))
    unpacked = struct_pb2.Value()
    assert response.customData.Unpack(unpacked)
    assert unpacked.string_value == "rows=3"


# ---------------------------------------------------------------- Seldon-style user classes


class ModelWithMeta:
    def __init__(self) -> None:
        self.meta: Any = None

    def predict(self, X: Any, names: list[str], meta: dict[str, Any] | None = None) -> Any:
        self.meta = meta
        return X


def test_predict_receives_meta() -> None:
    user = ModelWithMeta()
    request = tensor([1.0], [1, 1], puid="abc123")
    request.meta.tags["source"].string_value = "test"
    with channel_to(user) as channel:
        response = call(channel, "Model", "Predict", request)
    assert user.meta["puid"] == "abc123"
    assert user.meta["tags"] == {"source": "test"}
    assert response.meta.puid == "abc123"
    assert response.meta.tags["source"].string_value == "test"


class RawModel:
    def __init__(self) -> None:
        self.seen: Any = None

    def predict_raw(self, request: pb.SeldonMessage) -> pb.SeldonMessage:
        self.seen = request
        return pb.SeldonMessage(strData=f"raw:{request.strData}", meta=pb.Meta(puid="kept"))


def test_predict_raw_gets_and_returns_a_seldon_message() -> None:
    user = RawModel()
    with channel_to(user, unit_id="m") as channel:
        response = call(channel, "Model", "Predict", pb.SeldonMessage(strData="hi"))
    assert isinstance(user.seen, pb.SeldonMessage)
    assert user.seen.strData == "hi"
    assert response == pb.SeldonMessage(strData="raw:hi", meta=pb.Meta(puid="kept"))


class RawCombiner:
    def aggregate_raw(self, messages: pb.SeldonMessageList) -> pb.SeldonMessage:
        assert isinstance(messages, pb.SeldonMessageList)
        return pb.SeldonMessage(strData="+".join(m.strData for m in messages.seldonMessages))


def test_aggregate_raw_gets_the_seldon_message_list() -> None:
    request = pb.SeldonMessageList(
        seldonMessages=[pb.SeldonMessage(strData="a"), pb.SeldonMessage(strData="b")]
    )
    with channel_to(RawCombiner()) as channel:
        response = call(channel, "Combiner", "Aggregate", request)
    assert response.strData == "a+b"


class Transformer:
    def transform_input(self, X: Any, names: list[str]) -> Any:
        return X * 10


class OutputTransformer:
    def transform_output(self, X: Any, names: list[str]) -> Any:
        return X / 10


class Router:
    def __init__(self) -> None:
        self.routing: list[int | None] = []

    def route(self, features: Any, names: list[str]) -> int:
        return 2

    def send_feedback(
        self,
        features: Any,
        names: list[str],
        reward: float,
        truth: Any,
        routing: int | None = None,
    ) -> None:
        self.routing.append(routing)


class Combiner:
    def aggregate(self, Xs: list[Any], names_list: list[list[str]]) -> Any:
        return np.mean(Xs, axis=0)


def test_transformer() -> None:
    with channel_to(Transformer()) as channel:
        response = call(channel, "Transformer", "TransformInput", ndarray([[1, 2]]))
    assert as_list(response.data.ndarray) == [[10.0, 20.0]]


def test_output_transformer() -> None:
    with channel_to(OutputTransformer()) as channel:
        response = call(channel, "OutputTransformer", "TransformOutput", ndarray([[10, 20]]))
    assert as_list(response.data.ndarray) == [[1.0, 2.0]]


def test_a_transformer_without_the_method_passes_the_payload_through() -> None:
    # seldon-core 1.18 answers the request's data with the component's class names
    request = ndarray([[1, 2]], names=["a", "b"])
    with channel_to(Router()) as channel:
        response = call(channel, "Transformer", "TransformInput", request)
    assert as_list(response.data.ndarray) == [[1.0, 2.0]]
    assert list(response.data.names) == ["t:0", "t:1"]
    assert response.HasField("meta")


def test_router_returns_the_branch_and_gets_it_back_with_feedback() -> None:
    user = Router()
    with channel_to(user, unit_id="router") as channel:
        response = call(channel, "Router", "Route", ndarray([[1, 2]]))
        assert as_list(response.data.ndarray) == [[2.0]]
        response.meta.routing["router"] = 2  # as the orchestrator records it
        feedback = pb.Feedback(request=ndarray([[1, 2]]), response=response, reward=1.0)
        call(channel, "Router", "SendFeedback", feedback)
    assert user.routing == [2]


def test_combiner() -> None:
    request = pb.SeldonMessageList(seldonMessages=[ndarray([[1, 2]]), ndarray([[3, 4]])])
    with channel_to(Combiner()) as channel:
        response = call(channel, "Combiner", "Aggregate", request)
    assert as_list(response.data.ndarray) == [[2.0, 3.0]]


class AsyncComponent:
    def __init__(self) -> None:
        self.loaded = 0

    async def load(self) -> None:
        self.loaded += 1

    async def predict(self, X: Any, names: list[str]) -> Any:
        return X + self.loaded

    async def route(self, X: Any, names: list[str]) -> int:
        return 0


def test_async_methods() -> None:
    user = AsyncComponent()
    with channel_to(user) as channel:
        assert values(call(channel, "Model", "Predict", X12)) == [2.0, 3.0]
        assert values(call(channel, "Router", "Route", X12)) == [0.0]
    assert user.loaded == 1


class Classifier:
    class_names = ["cat", "dog"]

    def predict(self, X: Any, names: list[str]) -> Any:
        return np.array([[0.2, 0.8]])


def test_class_names_name_the_output_columns() -> None:
    with channel_to(Classifier()) as channel:
        response = call(channel, "Model", "Predict", ndarray([[1, 2, 3]], names=["a", "b", "c"]))
    assert list(response.data.names) == ["cat", "dog"]
    assert as_list(response.data.ndarray) == [[0.2, 0.8]]


class Instrumented:
    def predict(self, X: Any, names: list[str]) -> Any:
        return SeldonResponse(X, tags={"runtime": "yes"}, metrics=[create_counter("rows", len(X))])

    def tags(self) -> dict[str, Any]:
        return {"version": "v7"}

    def metrics(self) -> list[dict[str, Any]]:
        return [{"type": "GAUGE", "key": "temperature", "value": 36.6}]


def _counter(registry: Registry, name: str) -> float:
    return sum(v for (n, _), v in registry.counters.items() if n == name)


def _gauge(registry: Registry, name: str) -> float | None:
    return next((v for (n, _), v in registry.gauges.items() if n == name), None)


@pytest.mark.parametrize(
    "include", [pytest.param(True, id="in-response"), pytest.param(False, id="not-in-response")]
)
def test_tags_and_custom_metrics(include: bool) -> None:
    registry = Registry()
    with channel_to(
        Instrumented(), registry=registry, include_metrics_in_client_response=include
    ) as channel:
        response = call(channel, "Model", "Predict", ndarray([[1], [2]]))
    assert response.meta.tags["version"].string_value == "v7"
    assert response.meta.tags["runtime"].string_value == "yes"
    metrics = {m.key: (pb.Metric.MetricType.Name(m.type), m.value) for m in response.meta.metrics}
    if include:
        assert metrics == {"temperature": ("GAUGE", pytest.approx(36.6)), "rows": ("COUNTER", 2.0)}
    else:
        assert metrics == {}
    assert _counter(registry, "rows") == 2.0
    assert _gauge(registry, "temperature") == pytest.approx(36.6)


def test_request_metrics_and_feedback_metrics() -> None:
    registry = Registry()
    with channel_to(Everything(), registry=registry) as channel:
        call(channel, "Model", "Predict", X12)
        call(channel, "Model", "Predict", X12)
        call(channel, "Model", "SendFeedback", FEEDBACK)
        rpc_error(channel, "Model", "Predict", ndarray([[1, 2], [3]]))
    counts = {
        (dict(labels)["service"], dict(labels)["method"], dict(labels)["code"]): hist.count
        for (name, labels), hist in registry.histograms.items()
        if name == REQUESTS_METRIC
    }
    assert counts == {
        ("/seldon.protos.Model/Predict", "unary", "OK"): 2,
        ("/seldon.protos.Model/SendFeedback", "unary", "OK"): 1,
        ("/seldon.protos.Model/Predict", "unary", "INVALID_ARGUMENT"): 1,
    }
    assert _counter(registry, "seldon_api_model_feedback_reward") == 0.5


# ---------------------------------------------------------------- errors


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def predict(self, X: Any, names: list[str]) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("first call fails")
        return X

    def transform_input(self, X: Any, names: list[str]) -> Any:
        raise MicroserviceError("bad", status_code=400)

    def transform_output(self, X: Any, names: list[str]) -> Any:
        raise MicroserviceError("not yours", status_code=403, reason="FORBIDDEN")

    def aggregate(self, Xs: list[Any], names_list: list[list[str]]) -> Any:
        return object()  # not a payload Seldon can send


class BadRouter:
    def route(self, features: Any, names: list[str]) -> Any:
        return "left"


def test_user_exception_is_internal_and_the_server_keeps_serving() -> None:
    with channel_to(Failing()) as channel:
        error = rpc_error(channel, "Model", "Predict", X12)
        assert error.code() is grpc.StatusCode.INTERNAL
        assert error.details() == "first call fails"
        assert values(call(channel, "Model", "Predict", X12)) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("user", "service", "method", "request_msg", "code", "details"),
    [
        pytest.param(
            Failing(),
            "Transformer",
            "TransformInput",
            X12,
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad",
            id="microservice-error-400",
        ),
        pytest.param(
            Failing(),
            "OutputTransformer",
            "TransformOutput",
            X12,
            grpc.StatusCode.PERMISSION_DENIED,
            "not yours",
            id="microservice-error-403",
        ),
        pytest.param(
            Failing(),
            "Combiner",
            "Aggregate",
            PAIR,
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unknown data type",
            id="bad-return-type",
        ),
        pytest.param(
            Echo(), "Router", "Route", X12, grpc.StatusCode.UNIMPLEMENTED, "Route", id="no-route"
        ),
        pytest.param(
            Echo(),
            "Combiner",
            "Aggregate",
            PAIR,
            grpc.StatusCode.UNIMPLEMENTED,
            "Aggregate",
            id="no-aggregate",
        ),
        pytest.param(
            BadRouter(),
            "Router",
            "Route",
            X12,
            grpc.StatusCode.INVALID_ARGUMENT,
            "Routing response must be int",
            id="route-not-int",
        ),
        pytest.param(
            Echo(),
            "Model",
            "Predict",
            ndarray([[1, 2], [3]]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ragged",
            id="ragged-ndarray",
        ),
        pytest.param(
            Echo(),
            "Model",
            "Predict",
            tensor([1.0, 2.0, 3.0], [2, 2]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "shape",
            id="tensor-shape-mismatch",
        ),
        pytest.param(
            Echo(),
            "Model",
            "Predict",
            pb.SeldonMessage(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "none of data",
            id="no-data",
        ),
    ],
)
def test_error_status(
    user: Any,
    service: str,
    method: str,
    request_msg: Any,
    code: grpc.StatusCode,
    details: str,
) -> None:
    with channel_to(user) as channel:
        error = rpc_error(channel, service, method, request_msg)
    assert error.code() is code
    assert details in (error.details() or "")


def test_message_larger_than_the_limit_is_resource_exhausted() -> None:
    with channel_to(Echo(), max_message_size=1024) as channel:
        error = rpc_error(channel, "Model", "Predict", pb.SeldonMessage(strData="x" * 2048))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (
            call(channel, "Model", "Predict", pb.SeldonMessage(strData="small")).strData == "small"
        )


def test_invalid_metadata_is_reported_per_call() -> None:
    class BadMetadata:
        def predict(self, X: Any, names: list[str]) -> Any:
            return X

        def init_metadata(self) -> dict[str, Any]:
            return {"name": "x", "unknown": 1}

    with channel_to(BadMetadata()) as channel:
        error = rpc_error(channel, "Model", "Metadata", empty_pb2.Empty())
        assert error.code() is grpc.StatusCode.INTERNAL
        assert "unknown" in (error.details() or "")
        assert values(call(channel, "Model", "Predict", X12)) == [1.0, 2.0]


def test_response_larger_than_the_limit_is_resource_exhausted() -> None:
    class Big:
        def predict(self, X: Any, names: list[str]) -> str:
            return "y" * 4096

    with channel_to(Big(), max_message_size=1024) as channel:
        error = rpc_error(channel, "Model", "Predict", pb.SeldonMessage(strData="x"))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_tftensor_strings_keep_trailing_nul_bytes() -> None:
    user = Echo()
    request = tftensor(np.array([b"ab\x00", b"c"], dtype=object))
    with channel_to(user) as channel:
        call(channel, "Model", "Predict", request)
    assert user.seen.tolist() == [b"ab\x00", b"c"]
