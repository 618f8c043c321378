"""A whole graph over the Open Inference Protocol: the model named after the deployment
runs the graph (chains, routers, combiners, transformers), every node has V2 metadata,
and V2 errors are V2's error JSON. REST in process; gRPC on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.proto import inference_pb2_grpc as pb_grpc
from infergraph.transport.grpc.graph import build_graph_grpc_server
from tests.helpers.graph_fixtures import GraphHarness, deployment, unit

ROW = {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[GraphHarness]:
    async with GraphHarness(tmp_path) as harness:
        yield harness


def model(name: str, add: float = 0.0, *children: dict[str, Any]) -> dict[str, Any]:
    return unit(name, "MODEL", *children, cls="Model", params={"add": add})


def infer_body(*inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"inputs": list(inputs or [ROW]), **extra}


@pytest.mark.parametrize(
    ("graph_spec", "expected", "path"),
    [
        pytest.param(model("a", 1.0), [2.0, 3.0], ["a"], id="one-model"),
        pytest.param(model("a", 1.0, model("b", 10.0)), [12.0, 13.0], ["a", "b"], id="chain"),
        pytest.param(
            unit(
                "r", "ROUTER", model("a", 1.0), model("b", 5.0), cls="Router", params={"choice": 1}
            ),
            [6.0, 7.0],
            ["r", "b"],
            id="router",
        ),
        pytest.param(
            unit("c", "COMBINER", model("a", 1.0), model("b", 3.0), cls="Combiner"),
            [6.0, 8.0],
            ["a", "b", "c"],
            id="combiner",
        ),
        pytest.param(
            unit("t", "TRANSFORMER", model("a", 1.0), cls="Transformer", params={"add": 0.5}),
            [11.5, 21.5],
            ["t", "a"],
            id="transformer",
        ),
        pytest.param(
            unit("o", "OUTPUT_TRANSFORMER", model("a", 1.0), cls="OutputTransformer"),
            [-2.0, -3.0],
            ["a", "o"],
            id="output-transformer",
        ),
    ],
)
async def test_graph_infer_over_rest(
    graph: GraphHarness, graph_spec: dict[str, Any], expected: list[float], path: list[str]
) -> None:
    served = await graph.serve(deployment(graph_spec, name="mygraph"))
    response = await served.client.post("/v2/models/mygraph/infer", json=infer_body(id="r-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "mygraph"
    assert body["id"] == "r-1"
    [output] = body["outputs"]
    assert output["datatype"] == "FP64"
    assert output["shape"] == [1, 2]
    assert output["data"] == expected
    assert sorted(set(served.called())) == sorted(path)
    assert response.headers["seldon-puid"]


async def test_seldon_default_model_path_runs_the_graph(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 1.0), name="g"))
    response = await served.client.post("/v2/models/infer", json=infer_body())
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [2.0, 3.0]


async def test_binary_request_and_response_through_a_graph(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 1.0), name="g"))
    header = (
        b'{"inputs":[{"name":"x","shape":[2],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true}}'
    )
    body = header + np.array([1.5, 2.5], np.float32).tobytes()
    response = await served.client.post(
        "/v2/models/g/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    meta = response.content[:length]
    assert b'"binary_data_size":16' in meta  # FP64: the model adds a float
    values = np.frombuffer(response.content[length:], np.float64)
    assert values.tolist() == [2.5, 3.5]


async def test_every_node_has_v2_metadata(graph: GraphHarness) -> None:
    spec = unit("c", "COMBINER", unit("a", "MODEL", cls="Described"), model("b"), cls="Combiner")
    served = await graph.serve(deployment(spec, name="g"))
    for name in ("g", "c", "a", "b"):
        response = await served.client.get(f"/v2/models/{name}")
        assert response.status_code == 200, response.text
        assert response.json()["name"] == name
        ready = await served.client.get(f"/v2/models/{name}/ready")
        assert ready.json() == {"name": name, "ready": True}
    described = (await served.client.get("/v2/models/a")).json()
    assert described["inputs"] and described["inputs"][0]["datatype"] == "FP64"
    # a node is not a separate inference target
    response = await served.client.post("/v2/models/a/infer", json=infer_body())
    assert response.status_code == 400
    assert "graph node" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "words"),
    [
        pytest.param("/v2/models/nope/infer", infer_body(), {}, "'nope' is not found", id="model"),
        pytest.param(
            "/v2/models/g/infer",
            infer_body({"name": "x", "shape": [3], "datatype": "FP64", "data": [1.0]}),
            {},
            "needs 3 values",
            id="shape",
        ),
        pytest.param(
            "/v2/models/g/infer",
            infer_body({"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1.0]}),
            {},
            "not a V2 datatype",
            id="datatype",
        ),
        pytest.param(
            "/v2/models/g/infer",
            infer_body(),
            {"Inference-Header-Content-Length": "9999"},
            "Inference-Header-Content-Length",
            id="binary-header",
        ),
    ],
)
async def test_malformed_requests_are_400_with_v2_error_json(
    graph: GraphHarness, path: str, body: dict[str, Any], headers: dict[str, str], words: str
) -> None:
    served = await graph.serve(deployment(model("a"), name="g"))
    response = await served.client.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error"}
    assert words in error["error"]
    assert served.called() == []


async def test_graph_v2_over_grpc(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 1.0, model("b", 2.0)), name="g"))
    server = build_graph_grpc_server(served.dp, max_message_size=1 << 20)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert (await stub.ModelReady(pb.ModelReadyRequest(name="g"))).ready
            meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="b"))
            assert meta.name == "b"
            request = pb.ModelInferRequest(model_name="g", id="42")
            request.inputs.add(name="x", datatype="FP32", shape=[1, 2])
            request.raw_input_contents.append(np.array([1, 2], np.float32).tobytes())
            call = stub.ModelInfer(request, metadata=(("seldon-puid", "p-1"),))
            response = await call
            assert response.id == "42"
            assert len(response.raw_output_contents) == 1
            out = np.frombuffer(response.raw_output_contents[0], np.float64)
            assert out.tolist() == [4.0, 5.0]
            assert ("seldon-puid", "p-1") in list(await call.trailing_metadata())
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.ModelInfer(pb.ModelInferRequest(model_name="zzz"))
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "'zzz' is not found" in (error.value.details() or "")
    finally:
        await server.stop(None)
