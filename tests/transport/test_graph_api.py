"""The graph's external API: feedback, errors naming the node, health, metadata and status
over REST; the ``seldon.protos.Seldon`` gRPC service; payload logging to a real sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format

from infergraph.errors import LoadError
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.transport.grpc.graph import build_graph_grpc_server
from infergraph.transport.rest.graph import GraphRestApp
from tests.helpers.graph_fixtures import GraphHarness, Served, deployment, unit
from tests.runtime.test_payload_logger import Sink

X = [[1.0, 2.0]]


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[GraphHarness]:
    async with GraphHarness(tmp_path) as harness:
        yield harness


def model(name: str, add: float = 0.0, *children: dict[str, Any], cls: str = "Model") -> Any:
    return unit(name, "MODEL", *children, cls=cls, params={"add": add})


def router(name: str, choice: int, *children: dict[str, Any]) -> Any:
    return unit(name, "ROUTER", *children, cls="Router", params={"choice": choice})


def feedback_of(body: dict[str, Any], reward: float) -> dict[str, Any]:
    return {"request": {"data": {"ndarray": X}}, "response": body, "reward": reward}


# ---------------------------------------------------------------- feedback


@pytest.mark.parametrize("choice", [pytest.param(0, id="child-0"), pytest.param(1, id="child-1")])
async def test_feedback_reaches_the_routed_model_then_the_router(
    graph: GraphHarness, choice: int
) -> None:
    served = await graph.serve(deployment(router("r", choice, model("a"), model("b"))))
    body = await served.ok(X)
    assert body["meta"]["routing"]["r"] == choice
    served.reset()
    response = await served.feedback(feedback_of(body, 1.0))
    assert response.status_code == 200, response.text
    chosen = "ab"[choice]
    assert served.calls == [(chosen, "send_feedback"), ("r", "send_feedback")]  # child first
    assert served.details("send_feedback") == [
        (chosen, {"reward": 1.0, "routing": -1}),
        ("r", {"reward": 1.0, "routing": choice}),
    ]
    assert response.json()["data"] == {"names": [], "ndarray": []}


async def test_feedback_counters_in_metrics(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(router("r", 1, model("a"), model("b"))))
    body = await served.ok(X)
    for reward in (0.5, 0.25):
        assert (await served.feedback(feedback_of(body, reward))).status_code == 200
    for node in ("r", "b"):
        labels = {"model_name": node, "method": "feedback"}
        assert await served.metric("seldon_api_model_feedback_total", **labels) == 2
        assert await served.metric("seldon_api_model_feedback_reward_total", **labels) == 0.75
    assert await served.metric("seldon_api_model_feedback_total", model_name="a") == 0
    server = "seldon_api_executor_server_requests_seconds_count"
    assert await served.metric(server, service="feedback", method="post", code="200") == 2


async def test_feedback_only_on_model_router_and_send_feedback_nodes(graph: GraphHarness) -> None:
    # t1 has send_feedback but is a TRANSFORMER: not called; t2 lists SEND_FEEDBACK: called
    spec = unit(
        "t1", "TRANSFORMER",
        unit(
            "t2", None, model("m"),
            cls="FeedbackTransformer", methods=["TRANSFORM_INPUT", "SEND_FEEDBACK"],
        ),
        cls="FeedbackTransformer",
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    served.reset()
    assert (await served.feedback(feedback_of(body, 1.0))).status_code == 200
    assert served.called("send_feedback") == ["m", "t2"]


async def test_feedback_without_routing_reaches_every_child(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(router("r", 0, model("a"), model("b"))))
    body = {"request": {"data": {"ndarray": X}}, "response": {"data": {"ndarray": X}}, "reward": 1}
    assert (await served.feedback(body)).status_code == 200
    calls = served.called("send_feedback")
    assert sorted(calls[:2]) == ["a", "b"] and calls[2:] == ["r"]
    assert served.details("send_feedback")[-1] == ("r", {"reward": 1.0, "routing": None})


async def test_feedback_follows_nested_routing(graph: GraphHarness) -> None:
    inner = router("inner", 1, model("x"), model("y"))
    served = await graph.serve(deployment(router("outer", 1, model("a"), inner)))
    body = await served.ok(X)
    assert body["meta"]["routing"] == {"outer": 1, "inner": 1, "y": -1}
    served.reset()
    assert (await served.feedback(feedback_of(body, 1.0))).status_code == 200
    assert served.called("send_feedback") == ["y", "inner", "outer"]
    routings = dict(served.details("send_feedback"))
    assert routings["inner"]["routing"] == 1 and routings["outer"]["routing"] == 1


async def test_feedback_with_impossible_routing_is_a_400(
    graph: GraphHarness, seldon_error: Any
) -> None:
    served = await graph.serve(deployment(router("r", 0, model("a"), model("b"))))
    body = await served.ok(X)
    body["meta"]["routing"]["r"] = 7
    response = await served.feedback(feedback_of(body, 1.0))
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "'r'", "7")
    assert served.called("send_feedback") == []


async def test_feedback_v01_path(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(router("r", 0, model("a"), model("b"))))
    body = await served.ok(X)
    response = await served.client.post("/api/v0.1/feedback", json=feedback_of(body, 1.0))
    assert response.status_code == 200
    assert served.called("send_feedback") == ["a", "r"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("params", "status", "reason", "words"),
    [
        pytest.param({}, 500, "MICROSERVICE_INTERNAL_ERROR", "boom", id="exception-500"),
        pytest.param(
            {"status": 422}, 422, "MICROSERVICE_BAD_DATA", "bad input", id="microservice-error"
        ),
        pytest.param(
            {"status": 409}, 409, "MICROSERVICE_BAD_DATA", "bad input", id="microservice-409"
        ),
    ],
)
async def test_node_error_reaches_the_client_naming_the_node(
    graph: GraphHarness,
    seldon_error: Any,
    params: dict[str, Any],
    status: int,
    reason: str,
    words: str,
) -> None:
    spec = model("a", 0.0, unit("b", "MODEL", cls="Failing", params=params))
    served = await graph.serve(deployment(spec))
    response = await served.predict(X)
    block = seldon_error(response, status, reason, "node 'b': ", words)
    assert block["info"].startswith("node 'b': ")
    assert response.headers["seldon-puid"]


async def test_error_in_a_fan_out_names_the_failing_branch(
    graph: GraphHarness, seldon_error: Any
) -> None:
    spec = unit(
        "c", "COMBINER", model("ok"), unit("broken", "MODEL", cls="Failing"), cls="Combiner"
    )
    served = await graph.serve(deployment(spec))
    seldon_error(await served.predict(X), 500, "MICROSERVICE_INTERNAL_ERROR", "node 'broken'")
    assert served.called("aggregate") == []


@pytest.mark.parametrize(
    ("transport", "annotation"),
    [
        pytest.param(None, "seldon.io/rest-timeout", id="rest-timeout"),
        pytest.param("grpc", "seldon.io/grpc-timeout", id="grpc-timeout"),
    ],
)
async def test_timeout_annotation_is_a_per_node_deadline(
    graph: GraphHarness, seldon_error: Any, transport: str | None, annotation: str
) -> None:
    spec = model("fast", 0.0, unit("sleepy", "MODEL", cls="Slow", params={"seconds": 30.0}))
    manifest = deployment(spec, annotations={annotation: "50"})
    if transport is not None:
        manifest["spec"]["transport"] = transport
    served = await graph.serve(manifest)
    response = await served.predict(X)
    block = seldon_error(response, 504, "MICROSERVICE_INTERNAL_ERROR", "node 'sleepy': ", "50 ms")
    assert block["info"].count("sleepy") == 1, block["info"]
    assert served.called("predict") == ["fast", "sleepy"]
    client = "seldon_api_executor_client_requests_seconds_count"
    assert await served.metric(client, model_name="sleepy", code="504") == 1


async def test_timeout_of_the_other_transport_is_ignored(graph: GraphHarness) -> None:
    spec = unit("quick", "MODEL", cls="Slow", params={"seconds": 0.2})
    served = await graph.serve(deployment(spec, annotations={"seldon.io/grpc-timeout": "50"}))
    assert (await served.predict(X)).status_code == 200  # REST graph: grpc-timeout not used


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b'{"data": {"ndarray": [[1, 2]}', "", id="malformed-json"),
        pytest.param(b'{"data": {"ndarray": [[1, 2], [3]]}}', "", id="ragged"),
        pytest.param(b'{"data": {"tensor": {"shape": [3], "values": [1]}}}', "", id="bad-tensor"),
        pytest.param(b"[1, 2]", "", id="not-an-object"),
    ],
)
async def test_bad_requests_are_400(
    graph: GraphHarness, seldon_error: Any, content: bytes, words: str
) -> None:
    served = await graph.serve(deployment(model("a")))
    response = await served.client.post(
        "/api/v1.0/predictions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["status"]["status"] == 1
    assert served.called() == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            {"data": {"ndarry": [[1, 2]]}},
            "unknown field 'ndarry' in data (did you mean 'ndarray'?); "
            "known fields: names, ndarray, tensor, tftensor",
            id="misspelt-ndarray",
        ),
        pytest.param({"data": {}}, "data has no data kind", id="empty-data"),
        pytest.param(
            {"data": {"ndarray": X}, "extra": 1},
            "unknown field 'extra' in the request; "
            "known fields: meta, data, binData, strData, jsonData, status",
            id="extra-top-level-field",
        ),
    ],
)
async def test_unknown_fields_are_400(
    graph: GraphHarness, seldon_error: Any, body: dict[str, Any], words: str
) -> None:
    served = await graph.serve(deployment(model("a", 0.0, model("b"))))
    seldon_error(await served.predict(body), 400, "MICROSERVICE_BAD_DATA", words)
    assert served.called() == []


async def test_unknown_feedback_fields_are_400(graph: GraphHarness, seldon_error: Any) -> None:
    served = await graph.serve(deployment(model("a")))
    body = {**feedback_of({"data": {"ndarray": X}}, 1.0), "rewad": 1}
    words = "unknown field 'rewad' in the feedback (did you mean 'reward'?)"
    seldon_error(await served.feedback(body), 400, "MICROSERVICE_BAD_DATA", words)
    assert served.called() == []


RAW_MODEL = """
class RawModel:
    \"\"\"MODEL taking the request through predict_raw.\"\"\"

    def __init__(self, node):
        self.node = node

    def predict_raw(self, msg):
        record(self.node, "predict", msg)
        return {"data": {"ndarray": [[1.0, 2.0]]}}
"""
ODD = {"data": {"ndarry": [[1, 2]]}, "extra": {"my": "field"}}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(unit("raw", "MODEL", cls="RawModel"), id="raw-model"),
        pytest.param(
            router("r", -1, unit("raw", "MODEL", cls="RawModel"), model("m")), id="under-a-router"
        ),
        pytest.param(
            unit("c", "COMBINER", unit("raw", "MODEL", cls="RawModel"), cls="Combiner"),
            id="under-a-combiner",
        ),
    ],
)
async def test_raw_node_first_gets_the_request_as_it_came(
    graph: GraphHarness, spec: dict[str, Any]
) -> None:
    served = await graph.serve(deployment(spec), extra=RAW_MODEL)
    await served.ok(ODD)
    assert served.details("predict")[0] == ("raw", ODD)


async def test_raw_node_after_a_transformer_leaves_the_request_strict(
    graph: GraphHarness, seldon_error: Any
) -> None:
    spec = unit("t", "TRANSFORMER", unit("raw", "MODEL", cls="RawModel"), cls="Transformer")
    served = await graph.serve(deployment(spec), extra=RAW_MODEL)
    words = "unknown field 'extra' in the request"
    seldon_error(await served.predict(ODD), 400, "MICROSERVICE_BAD_DATA", words)
    assert served.called() == []


async def test_unknown_path_and_wrong_method(graph: GraphHarness, seldon_error: Any) -> None:
    served = await graph.serve(deployment(model("a")))
    seldon_error(await served.client.get("/api/v1.0/nothing"), 404, "MICROSERVICE_BAD_DATA")
    response = await served.client.get("/api/v1.0/predictions")
    assert response.status_code == 405


async def test_ready_before_and_after_load(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 0.0, model("b"))), load=False)
    assert (await served.client.get("/live")).status_code == 200
    for path in ("/ready", "/api/v1.0/status", "/api/v1.0/health/status"):
        assert (await served.client.get(path)).status_code == 503, path
    assert (await served.predict(X)).status_code == 503
    assert served.called() == []
    await served.dp.load()
    for path in ("/ready", "/api/v1.0/status", "/api/v1.0/health/status", "/live"):
        assert (await served.client.get(path)).status_code == 200, path
    assert (await served.predict(X)).status_code == 200


async def test_ready_waits_for_every_node(graph: GraphHarness) -> None:
    served = await graph.serve(
        deployment(model("a", 0.0, model("slow-loader", cls="Unloaded"))), load=False
    )
    loading = asyncio.create_task(served.dp.load())
    user = served.user("slow-loader")
    async with asyncio.timeout(5):
        while user.release is None:
            await asyncio.sleep(0)
    assert (await served.client.get("/ready")).status_code == 503
    user.release.set()
    await loading
    assert (await served.client.get("/ready")).status_code == 200


async def test_lifespan_start_up_does_not_load_nodes_again(graph: GraphHarness) -> None:
    # serve loads the graph before binding; uvicorn then runs the ASGI lifespan start-up
    served = await graph.serve(
        deployment(model("a", 0.0, model("b", cls="Counted"), cls="Counted"))
    )
    assert served.called("load") == ["a", "b"]
    app = GraphRestApp(served.dp, max_body_size=1 << 20)
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert served.called("load") == ["a", "b"]  # each user load() ran once


async def test_load_failure_names_the_node(graph: GraphHarness) -> None:
    extra = """
    class Broken(Model):
        def load(self):
            raise RuntimeError("weights missing")
    """
    served = await graph.serve(
        deployment(model("a", 0.0, model("b", cls="Broken"))), load=False, extra=extra
    )
    with pytest.raises(LoadError, match=r"node 'b': .*weights missing") as info:
        await served.dp.load()
    assert info.value.node == "b"
    assert (await served.client.get("/ready")).status_code == 503


# ---------------------------------------------------------------- metadata and status


def described(name: str, *children: dict[str, Any], width: int = 2) -> Any:
    return unit(name, "MODEL", *children, cls="Described", params={"width": width})


@pytest.mark.parametrize(
    ("spec", "nodes", "inputs_of", "outputs_of"),
    [
        pytest.param(described("a", described("b")), "ab", "a", "b", id="chain"),
        pytest.param(
            unit("r", "ROUTER", described("a"), described("b"), cls="Router"),
            "rab", "a", "a", id="router",
        ),
        pytest.param(
            unit("c", "COMBINER", described("a"), described("b"), cls="DescribedCombiner"),
            "cab", "a", "c", id="combiner",
        ),
        pytest.param(described("s"), "s", "s", "s", id="single"),
    ],
)  # fmt: skip
async def test_graph_metadata(
    graph: GraphHarness, spec: dict[str, Any], nodes: str, inputs_of: str, outputs_of: str
) -> None:
    served = await graph.serve(deployment(spec))
    response = await served.client.get("/api/v1.0/metadata")
    assert response.status_code == 200, response.text
    meta = response.json()
    assert meta["name"] == "default"
    assert set(meta["models"]) == set(nodes)
    assert meta["models"][inputs_of]["platform"] == "test"
    assert meta["graphinputs"] == [{"name": f"{inputs_of}-in", "datatype": "FP64", "shape": [2]}]
    assert meta["graphoutputs"] == [{"name": f"{outputs_of}-out", "datatype": "FP64", "shape": [1]}]


async def test_node_metadata_and_status(graph: GraphHarness, seldon_error: Any) -> None:
    served = await graph.serve(deployment(described("a", described("b"))))
    for version in ("v1.0", "v0.1"):
        response = await served.client.get(f"/api/{version}/metadata/b")
        assert response.status_code == 200
        assert response.json()["name"] == "b"
        assert response.json()["inputs"][0]["name"] == "b-in"
    seldon_error(await served.client.get("/api/v1.0/metadata/nope"), 404, *_not_found("nope"))
    status = await served.client.get("/api/v1.0/status/a")
    assert status.status_code == 200
    seldon_error(await served.client.get("/api/v1.0/status/nope"), 404, *_not_found("nope"))


def _not_found(node: str) -> tuple[str, ...]:
    return "MICROSERVICE_BAD_DATA", f"'{node}'"


# ---------------------------------------------------------------- gRPC


@pytest.fixture
async def grpc_stub(graph: GraphHarness) -> AsyncIterator[Any]:
    """``await grpc_stub(served)`` -> a Seldon stub on a real server for that graph."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def make(served: Served) -> Any:
        server = build_graph_grpc_server(served.dp, max_message_size=16 * 1024 * 1024)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return pb_grpc.SeldonStub(channel)

    yield make
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


def message(rows: list[list[float]]) -> pb.SeldonMessage:
    msg = pb.SeldonMessage()
    json_format.ParseDict({"data": {"ndarray": rows}}, msg)
    return msg


async def test_grpc_predict_and_feedback(graph: GraphHarness, grpc_stub: Any) -> None:
    served = await graph.serve(deployment(router("r", 1, model("a", 1.0), model("b", 2.0))))
    stub = await grpc_stub(served)
    call = stub.Predict(message(X), metadata=(("seldon-puid", "grpc-puid-1"),), timeout=10)
    response = await call
    trailing = dict(list(await call.trailing_metadata()))
    assert trailing["seldon-puid"] == "grpc-puid-1"
    as_dict = json_format.MessageToDict(response)
    assert as_dict["data"]["ndarray"] == [[3.0, 4.0]]
    assert as_dict["meta"]["puid"] == "grpc-puid-1"
    assert as_dict["meta"]["routing"] == {"r": 1, "b": -1}
    assert served.details("predict") == [("b", {"puid": "grpc-puid-1"})]

    served.reset()
    feedback = pb.Feedback(request=message(X), response=response, reward=1.0)
    call = stub.SendFeedback(feedback, timeout=10)
    await call
    assert await call.trailing_metadata()  # a puid, generated
    assert served.details("send_feedback") == [
        ("b", {"reward": 1.0, "routing": -1}),
        ("r", {"reward": 1.0, "routing": 1}),
    ]
    server = "seldon_api_executor_server_requests_seconds_count"
    assert await served.metric(server, service="/seldon.protos.Seldon/Predict", code="OK") == 1


async def test_grpc_generates_a_puid(graph: GraphHarness, grpc_stub: Any) -> None:
    served = await graph.serve(deployment(model("a")))
    stub = await grpc_stub(served)
    call = stub.Predict(message(X), timeout=10)
    response = await call
    puid = dict(list(await call.trailing_metadata()))["seldon-puid"]
    assert puid and response.meta.puid == puid


async def test_grpc_node_error(graph: GraphHarness, grpc_stub: Any) -> None:
    spec = model("a", 0.0, unit("b", "MODEL", cls="Failing", params={"status": 400}))
    served = await graph.serve(deployment(spec))
    stub = await grpc_stub(served)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Predict(message(X), timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "node 'b'" in (info.value.details() or "")


async def test_grpc_metadata(graph: GraphHarness, grpc_stub: Any) -> None:
    served = await graph.serve(deployment(described("a", described("b", width=3))))
    stub = await grpc_stub(served)
    node = await stub.ModelMetadata(pb.SeldonModelMetadataRequest(name="b"), timeout=10)
    assert node.name == "b" and node.platform == "test"
    assert [i.name for i in node.inputs] == ["b-in"]
    meta = await stub.GraphMetadata(empty_pb2.Empty(), timeout=10)
    assert meta.name == "default"
    assert set(meta.models) == {"a", "b"}
    assert [i.name for i in meta.inputs] == ["a-in"]
    assert [o.name for o in meta.outputs] == ["b-out"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelMetadata(pb.SeldonModelMetadataRequest(name="nope"), timeout=10)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- payload logging


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    started = await Sink().start()
    yield started
    await started.stop()


async def test_payload_logging_sends_cloudevents_for_the_logged_node(
    graph: GraphHarness, sink: Sink
) -> None:
    logged = unit(
        "m", "MODEL", cls="Model", params={"add": 1.0}, logger={"mode": "all", "url": sink.url}
    )
    served = await graph.serve(deployment(model("first", 0.0, logged), name="logged-sdep"))
    response = await served.predict(X, headers={"Seldon-Puid": "log-puid-1"})
    assert response.status_code == 200
    await sink.wait_for(2)
    kinds = sorted(r.headers["ce-type"] for r in sink.requests)
    assert kinds == ["io.seldon.serving.inference.request", "io.seldon.serving.inference.response"]
    for event in sink.requests:
        assert event.headers["ce-requestid"] == "log-puid-1"
        assert event.headers["ce-modelid"] == "m"  # only the node with a logger
        assert event.headers["ce-inferenceservicename"] == "logged-sdep"
        assert event.headers["ce-endpoint"] == "default"
        assert event.headers["ce-specversion"] == "1.0"
    by_type = {r.headers["ce-type"]: r.json() for r in sink.requests}
    assert by_type["io.seldon.serving.inference.request"]["data"]["ndarray"] == X  # first: +0
    assert by_type["io.seldon.serving.inference.response"]["data"]["ndarray"] == [[2.0, 3.0]]

    body = response.json()
    feedback = {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1.0}
    assert (await served.feedback(feedback, headers={"Seldon-Puid": "fb-1"})).status_code == 200
    await sink.wait_for(3)
    last = sink.requests[2]
    assert last.headers["ce-type"] == "io.seldon.serving.feedback"
    assert last.headers["ce-requestid"] == "fb-1"
    assert last.json()["reward"] == 1.0


async def test_skip_logging_header(graph: GraphHarness, sink: Sink) -> None:
    logged = unit("m", "MODEL", cls="Model", logger={"mode": "request", "url": sink.url})
    served = await graph.serve(deployment(logged))
    await served.ok(X, headers={"Seldon-Skip-Logging": "true"})
    await served.ok(X, headers={"Seldon-Puid": "second"})
    await sink.wait_for(1)
    await served.dp.close()  # drains the queue: nothing else is on its way
    assert [r.headers["ce-requestid"] for r in sink.requests] == ["second"]
    assert sink.requests[0].headers["ce-type"] == "io.seldon.serving.inference.request"
