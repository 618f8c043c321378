"""A graph answers bad input with a 400 that names the problem, never a 500: cases that
tests/fuzz/test_fuzz_graph.py found, kept as regressions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from infergraph.protocol.proto import inference_pb2
from infergraph.serving.server import bind_socket
from infergraph.transport.grpc.graph import build_graph_grpc_server
from infergraph.transport.rest.graph import GraphRestApp
from infergraph.wire.http1.server import HttpServer
from tests.helpers.graph_fixtures import GraphHarness, deployment, unit

# A transformer that passes on what it gets, then a built-in router and two models.
ECHO = """
class Echo:
    def __init__(self, node):
        self.node = node

    def transform_input(self, X, names):
        return X

    def predict(self, X, names):
        return X
"""
GRAPH = unit(
    "t",
    "TRANSFORMER",
    unit(
        "r",
        "ROUTER",
        unit("a", "MODEL", cls="Echo"),
        unit("b", "MODEL", cls="Echo"),
        implementation="RANDOM_ABTEST",
        params={"ratioA": 0.5},
    ),
    cls="Echo",
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with GraphHarness(tmp_path) as harness:
        served = await harness.serve(deployment(GRAPH, name="bad-input"), extra=ECHO)
        yield served.client


async def bad_request(client: httpx.AsyncClient, body: Any, path: str) -> str:
    response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    return str(answer["error"] if path.startswith("/v2") else answer["status"]["info"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            {"jsonData": [[1, 2], [3]]},
            "node 'r': data.ndarray is not an array (rows of different lengths",
            id="ragged-list-passed-on",  # was 500 "node 'r': ValueError: setting an array..."
        ),
        pytest.param(
            {"meta": {"requestPath": {"m": [1]}}, "data": {"ndarray": [[1]]}},
            "meta.requestPath must map node names to images (strings)",
            id="request-path-not-a-string",  # was 500 "TypeError: unhashable type: 'list'"
        ),
        pytest.param(
            {"meta": {"puid": "a\u202eb"}, "data": {"ndarray": [[1]]}},
            "cannot be a Seldon-Puid header: use printable ASCII",
            id="puid-not-ascii",  # was an UnicodeEncodeError writing the answer's headers
        ),
        pytest.param(
            {"meta": {"puid": "x\r\nSet-Cookie: a=b"}, "data": {"ndarray": [[1]]}},
            "cannot be a Seldon-Puid header",
            id="puid-with-a-line-break",
        ),
    ],
)
async def test_seldon_bad_input_is_a_400(client: httpx.AsyncClient, body: Any, words: str) -> None:
    assert words in await bad_request(client, body, "/api/v1.0/predictions")


async def test_v2_id_that_cannot_be_a_puid_is_a_400(client: httpx.AsyncClient) -> None:
    body = {
        "id": "\u00e9",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],
    }
    assert "cannot be a Seldon-Puid header" in await bad_request(
        client, body, "/v2/models/bad-input/infer"
    )


async def test_good_puid_still_travels(client: httpx.AsyncClient) -> None:
    body = {"meta": {"puid": "abc-123"}, "data": {"ndarray": [[1]]}}
    response = await client.post("/api/v1.0/predictions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["seldon-puid"] == "abc-123"


async def test_puid_cannot_forge_a_response_header(tmp_path: Path) -> None:
    # over a real socket: the old answer's head held "seldon-puid: x" then "Set-Cookie: evil=1"
    body = b'{"meta": {"puid": "x\\r\\nSet-Cookie: evil=1"}, "data": {"ndarray": [[1]]}}'
    request = (
        b"POST /api/v1.0/predictions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    async with GraphHarness(tmp_path) as harness:
        dataplane, _ = harness.dataplane(deployment(GRAPH, name="bad-input"), extra=ECHO)
        await dataplane.load()
        sock = bind_socket("127.0.0.1", 0)
        server = HttpServer(GraphRestApp(dataplane, max_body_size=1 << 20))
        await server.start(sock)
        try:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            writer.close()
        finally:
            await server.stop()
            await dataplane.close()
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"set-cookie" not in head.lower()


async def test_v2_grpc_id_that_cannot_be_a_puid_is_invalid(tmp_path: Path) -> None:
    # the id became the trailing metadata seldon-puid, line break and all
    request = inference_pb2.ModelInferRequest(model_name="bad-input", id="x\r\nevil: 1")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[1])
    tensor.contents.fp32_contents.append(1.0)
    async with GraphHarness(tmp_path) as harness:
        served = await harness.serve(deployment(GRAPH, name="bad-input"), extra=ECHO)
        server = build_graph_grpc_server(served.dp, max_message_size=1 << 20)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                infer = channel.unary_unary(
                    "/inference.GRPCInferenceService/ModelInfer",
                    request_serializer=inference_pb2.ModelInferRequest.SerializeToString,
                    response_deserializer=inference_pb2.ModelInferResponse.FromString,
                )
                with pytest.raises(grpc.RpcError) as caught:
                    await infer(request, timeout=30)
        finally:
            await server.stop(None)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot be a Seldon-Puid header" in str(caught.value.details())
