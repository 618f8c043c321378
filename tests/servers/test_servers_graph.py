"""Prepackaged servers as graph nodes: ``implementation: SKLEARN_SERVER`` with a modelUri
runs in process (as ``infergraph serve`` runs it), as its own process with --processes,
and from S3 configured only by the environment; servers infergraph lacks are refused."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from infergraph.errors import LoadError
from infergraph.graph.nodes import plan_processes
from infergraph.graph.spec import load_deployments
from infergraph.servers import PREPACKAGED_CLASSES, SKLearnServer, prepackaged_class
from tests.cli.test_cli_serve import serving, write_yaml
from tests.helpers import model_stores
from tests.helpers.graph_fixtures import GraphHarness, deployment, unit
from tests.helpers.model_files import ROW, write_sklearn
from tests.helpers.model_stores import S3

s3 = model_stores.s3
s3_endpoint = model_stores.s3_endpoint


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[GraphHarness]:
    async with GraphHarness(tmp_path) as harness:
        yield harness


def sklearn_graph(uri: str, **params: Any) -> dict[str, Any]:
    node = unit("iris", implementation="SKLEARN_SERVER", params=params or None)
    node["modelUri"] = uri
    return deployment(node, name="iris")


def test_implementations_map_to_classes() -> None:
    assert prepackaged_class("SKLEARN_SERVER") is SKLearnServer
    assert sorted(PREPACKAGED_CLASSES) == [
        "LIGHTGBM_SERVER", "MLFLOW_SERVER", "ONNX_SERVER", "SKLEARN_SERVER", "XGBOOST_SERVER",
    ]  # fmt: skip
    assert prepackaged_class("TRITON_SERVER") is None


async def test_sklearn_server_node_in_process(graph: GraphHarness, tmp_path: Path) -> None:
    model = write_sklearn(tmp_path / "iris", "joblib")
    served = await graph.serve(sklearn_graph((tmp_path / "iris").as_uri(), method="predict"))
    body = await served.ok(ROW)
    assert body["data"]["ndarray"] == model.predict(ROW).tolist()
    assert body["meta"]["requestPath"] == {"iris": "SKLEARN_SERVER"}
    assert served.user("iris").method == "predict"


async def test_s3_model_configured_by_the_environment(
    graph: GraphHarness, s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write_sklearn(tmp_path / "iris", "skops")
    uri = s3.put_folder("iris", tmp_path / "iris")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("INFERGRAPH_MODEL_CACHE", str(tmp_path / "cache"))
    served = await graph.serve(sklearn_graph(uri))
    body = await served.ok(ROW)
    np.testing.assert_allclose(body["data"]["ndarray"], model.predict_proba(ROW))
    assert len(list((tmp_path / "cache").iterdir())) == 1


async def test_a_server_infergraph_lacks_is_refused(graph: GraphHarness) -> None:
    node = unit("iris", implementation="TRITON_SERVER")
    node["modelUri"] = "gs://models/iris"
    with pytest.raises(LoadError) as info:
        await graph.serve(deployment(node))
    message = str(info.value)
    assert "node 'iris'" in message
    assert "TRITON_SERVER is not supported by infergraph serve" in message
    assert "SKLEARN_SERVER" in message and "MODEL_NAME" in message


def test_processes_run_the_server_class_with_model_uri(tmp_path: Path) -> None:
    doc = sklearn_graph("s3://models/iris", method="predict")
    doc["spec"]["predictors"][0]["graph"]["children"] = [
        {"name": "triton", "implementation": "TRITON_SERVER", "modelUri": "gs://m/t"}
    ]
    (deployment_,) = load_deployments(write_yaml(tmp_path, "d.yaml", doc))
    ports = itertools.count(20000)
    (process,) = plan_processes(deployment_, lambda: next(ports))  # triton stays local
    assert process.node == "iris"
    assert process.env["MODEL_NAME"] == "infergraph.servers.SKLearnServer"
    params = orjson.loads(process.env["PREDICTIVE_UNIT_PARAMETERS"])
    assert params == [
        {"name": "method", "value": "predict", "type": "STRING"},
        {"name": "model_uri", "value": "s3://models/iris", "type": "STRING"},
    ]


@pytest.mark.slow
def test_serve_with_processes(tmp_path: Path) -> None:
    model = write_sklearn(tmp_path / "iris", "joblib")
    manifest = write_yaml(tmp_path, "iris.yaml", sklearn_graph(str(tmp_path / "iris")))
    with serving(tmp_path, manifest, "--processes") as server:
        status, body = server.post("/api/v1.0/predictions", {"data": {"ndarray": ROW}})
        assert status == 200, body
        np.testing.assert_allclose(body["data"]["ndarray"], model.predict_proba(ROW))
