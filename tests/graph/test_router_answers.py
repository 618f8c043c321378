"""A router's answer in every form Seldon's executor reads (reference §2.2, §5.3; checklist
50): ``[[N]]``, ``[N]``, a tensor, a tftensor or a bare JSON list; only the first value
counts. A ``route_raw`` returning a bare list is sent as it is over REST, as Seldon's
wrapper sends it, and a REST node's bare list reaches the executor as the child index."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from infergraph.app import component_app
from infergraph.graph.executor import route_index
from infergraph.graph.nodes import RestNodeClient
from infergraph.protocol import seldon_json
from infergraph.protocol.message import DataKind, Message, Meta
from infergraph.protocol.tftensor import array_to_tf_proto
from infergraph.serving.server import bind_socket
from infergraph.wire.http1.server import HttpServer


def _tftensor_json(values: list[list[int]]) -> dict[str, Any]:
    from google.protobuf import json_format

    from infergraph.protocol.proto import prediction_pb2 as pb

    holder = pb.DefaultData()
    array_to_tf_proto(np.array(values, dtype=np.int32), holder.tftensor)
    return json_format.MessageToDict(holder.tftensor)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param({"data": {"ndarray": [[1]]}}, 1, id="ndarray-[[N]]"),
        pytest.param({"data": {"ndarray": [2, 0]}}, 2, id="ndarray-[N]-first-counts"),
        pytest.param({"data": {"tensor": {"shape": [1, 1], "values": [0]}}}, 0, id="tensor"),
        pytest.param({"data": {"tftensor": _tftensor_json([[1]])}}, 1, id="tftensor"),
        pytest.param({"data": {"ndarray": [[-1]]}}, -1, id="all-children"),
    ],
)
def test_route_index_reads_every_seldon_form(answer: dict[str, Any], expected: int) -> None:
    assert route_index(seldon_json.decode_message(answer, "response"), "r") == expected


def test_route_index_reads_a_bare_json_list() -> None:
    assert route_index(Message(DataKind.NONE, None, [], Meta(), raw=[1, 5]), "r") == 1


class RawListRouter:
    """Answers a bare JSON list over REST, as Seldon's wrapper lets route_raw do."""

    def route_raw(self, msg: Any) -> Any:
        return [1]


async def test_route_raw_bare_list_is_sent_as_it_is(asgi_client) -> None:
    response = await asgi_client(RawListRouter()).post(
        "/route", json={"data": {"ndarray": [[1, 2]]}}
    )
    assert response.status_code == 200
    assert response.json() == [1]


@contextlib.asynccontextmanager
async def rest_node(user: Any) -> AsyncIterator[RestNodeClient]:
    app = component_app(user, unit_id="r")
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    server = HttpServer(app)
    await server.start(sock)
    client = RestNodeClient("r", [f"127.0.0.1:{sock.getsockname()[1]}"], max_message_size=1 << 20)
    try:
        yield client
    finally:
        await client.aclose()
        await server.stop(grace=1.0)


async def test_a_rest_router_answering_a_bare_list_chooses_that_child() -> None:
    async with rest_node(RawListRouter()) as client:
        await client.load()
        answer = await client.route(Message(DataKind.NDARRAY, np.array([[1, 2]])))
    assert route_index(answer, "r") == 1
