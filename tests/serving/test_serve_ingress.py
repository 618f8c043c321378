"""``infergraph serve`` answers at Seldon's ingress paths, ``/seldon/<namespace>/<deployment>/...``,
as the Istio or Ambassador gateway in front of a cluster does, and accepts the gateway's gRPC
routing metadata (``seldon``, ``namespace``). Real process, real sockets (httpx, grpcio)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.cli.test_cli_serve import Server, serving

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "s2i"
PREDICT = {"data": {"ndarray": [[1.0, 2.0]]}}
V2_INFER = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
# single.yaml: deployment "doubler" in namespace "models"
PREFIX = "/seldon/models/doubler"


@pytest.fixture(scope="module", params=["infergraph", "uvicorn"], ids=["own-http", "uvicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ingress")
    args = ("--path", str(FIXTURES / "doubler"))
    env = {"INFERGRAPH_HTTP_SERVER": request.param}
    with serving(folder, FIXTURES / "single.yaml", *args, env=env) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http}", timeout=10) as http:
        yield http


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(PREFIX, id="istio"),
        pytest.param("/seldon/doubler", id="ambassador-one-namespace"),
        pytest.param("", id="no-prefix"),
    ],
)
def test_predictions_and_feedback_under_the_gateway_prefix(
    client: httpx.Client, prefix: str
) -> None:
    answer = client.post(f"{prefix}/api/v1.0/predictions", json=PREDICT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["data"]["ndarray"] == [[2.0, 4.0]]
    feedback = {"request": PREDICT, "response": body, "reward": 1.0}
    reply = client.post(f"{prefix}/api/v0.1/feedback", json=feedback)
    assert reply.status_code == 200, reply.text


def test_metadata_status_and_v2_under_the_prefix(client: httpx.Client) -> None:
    metadata = client.get(f"{PREFIX}/api/v1.0/metadata")
    assert metadata.status_code == 200 and "classifier" in metadata.json()["models"]
    assert client.get(f"{PREFIX}/api/v1.0/metadata/classifier").status_code == 200
    assert client.get(f"{PREFIX}/ready").status_code == 200
    infer = client.post(f"{PREFIX}/v2/models/doubler/infer", json=V2_INFER)
    assert infer.status_code == 200, infer.text
    assert infer.json()["outputs"][0]["data"] == [2.0, 4.0]


@pytest.mark.parametrize(
    ("path", "given"),
    [
        pytest.param("/seldon/default/doubler/api/v1.0/predictions", "default/doubler", id="ns"),
        pytest.param("/seldon/models/tripler/api/v1.0/predictions", "models/tripler", id="name"),
        pytest.param("/seldon/tripler/api/v1.0/predictions", "tripler/api", id="one-namespace"),
    ],
)
def test_another_namespace_or_deployment_is_a_404_naming_this_one(
    client: httpx.Client, path: str, given: str
) -> None:
    answer = client.post(path, json=PREDICT)
    assert answer.status_code == 404
    info = answer.json()["status"]["info"]
    assert f"no deployment at /seldon/{given}/" in info
    assert "deployment 'doubler' in namespace 'models', at /seldon/models/doubler/" in info


def test_a_wrong_prefix_on_a_v2_path_answers_in_v2_form(client: httpx.Client) -> None:
    answer = client.post("/seldon/models/other/v2/models/other/infer", json=V2_INFER)
    assert answer.status_code == 404
    assert "deployment 'doubler'" in answer.json()["error"]


def _predict(server: Server, metadata: tuple[tuple[str, str], ...]) -> pb.SeldonMessage:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc}") as channel:
        request = json_format.ParseDict(PREDICT, pb.SeldonMessage())
        response: pb.SeldonMessage = pb_grpc.SeldonStub(channel).Predict(
            request, metadata=metadata, timeout=10
        )
        return response


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param((("seldon", "doubler"), ("namespace", "models")), id="istio"),
        pytest.param((("seldon", "doubler"),), id="ambassador-one-namespace"),
        pytest.param((), id="none"),
    ],
)
def test_grpc_accepts_the_gateway_routing_metadata(
    server: Server, metadata: tuple[tuple[str, str], ...]
) -> None:
    response = _predict(server, metadata)
    assert json_format.MessageToDict(response)["data"]["ndarray"] == [[2.0, 4.0]]


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        pytest.param((("seldon", "tripler"),), "seldon: 'tripler'", id="deployment"),
        pytest.param(
            (("seldon", "doubler"), ("namespace", "default")), "namespace: 'default'", id="ns"
        ),
    ],
)
def test_grpc_metadata_naming_another_deployment_is_not_found(
    server: Server, metadata: tuple[tuple[str, str], ...], words: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _predict(server, metadata)
    error = caught.value
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert words in error.details()  # type: ignore[attr-defined]
    assert "deployment 'doubler' in namespace 'models'" in error.details()  # type: ignore[attr-defined]
