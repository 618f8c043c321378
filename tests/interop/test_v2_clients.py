"""Real Open Inference Protocol (V2) clients against a real SKLEARN_SERVER, alone and in a graph.

An iris ``LogisticRegression`` is trained here and saved as ``model.joblib``; every answer
is checked against its own ``predict_proba`` on the same rows. It is served three ways:

- ``microservice``: ``infergraph microservice infergraph.servers.SKLearnServer``;
- ``graph``: ``infergraph serve`` of a SeldonDeployment whose TRANSFORMER (a user class
  taking millimetres) feeds a SKLEARN_SERVER node;
- ``graph-processes``: the same graph with ``--processes``, so the orchestrator calls each
  node's own process over binary V2.

The clients: ``tritonclient.http`` (binary tensors, its default, and JSON) in this venv;
``tritonclient.grpc`` and kserve 0.21's ``InferenceRESTClient``/``InferenceGRPCClient`` in
``.venv-kserve`` through ``v2_client_probe.py`` (they need protobuf < 7); curl with a JSON
body and with a binary-extension body. Malformed requests get V2's error JSON with HTTP 400
over a real socket, and INVALID_ARGUMENT over gRPC, each naming what is wrong.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import joblib
import numpy as np
import pytest
import tritonclient.http as httpclient
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.proto import inference_pb2_grpc as pb_grpc

from .v2_client_probe import decode_tensor, encode_tensor
from .v2_peers import Endpoint, kserve_python, run_probe, serving

pytestmark = pytest.mark.slow

TARGETS = ("microservice", "graph", "graph-processes")
MODEL = "iris"  # PREDICTIVE_UNIT_ID of the microservice
GRAPH = "iris-graph"  # metadata.name of the deployment
OUTPUT = "predict_proba"  # SKLearnServer names its V2 output after its method
RTOL = 1e-9  # the graph divides millimetres by 10: the last bit of a feature may differ

UNITS_SOURCE = '''
    import numpy as np


    class MillimetresToCentimetres:
        """TRANSFORMER: the client measures in millimetres, the model was fitted on cm."""

        def transform_input(self, X, features_names=None, meta=None):
            return np.asarray(X, dtype=np.float64) / 10.0
'''


@dataclass(frozen=True)
class Iris:
    model_dir: Path
    rows: np.ndarray  # features in centimetres, as the model was fitted
    proba: np.ndarray  # scikit-learn's own predict_proba(rows)


@dataclass(frozen=True)
class Target:
    name: str
    endpoint: Endpoint
    unit: float  # clients send rows * unit
    platform: str  # of the served V2 model
    nodes: dict[str, str]  # graph nodes' V2 models -> their platform

    @property
    def model(self) -> str:
        return self.endpoint.model


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    model_dir = tmp_path_factory.mktemp("iris-model")
    joblib.dump(model, model_dir / "model.joblib")
    rows = features[::25]  # 6 rows, all three classes
    return Iris(model_dir, rows, model.predict_proba(rows))


@pytest.fixture(scope="module")
def microservice(iris: Iris, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("v2-microservice")
    params = [{"name": "model_uri", "value": str(iris.model_dir), "type": "STRING"}]
    argv = [
        "microservice",
        "infergraph.servers.SKLearnServer",
        *("--parameters", json.dumps(params)),
    ]
    with serving(folder, argv, MODEL, env={"PREDICTIVE_UNIT_ID": MODEL}) as endpoint:
        yield Target("microservice", endpoint, 1.0, "sklearn", {})


def _graph_manifest(model_dir: Path) -> dict[str, Any]:
    container = {
        "name": "mm-to-cm",
        "image": "example/units:0.1",
        "env": [{"name": "MODEL_NAME", "value": "Units.MillimetresToCentimetres"}],
    }
    graph = {
        "name": "mm-to-cm",
        "type": "TRANSFORMER",
        "children": [
            {
                "name": "classifier",
                "implementation": "SKLEARN_SERVER",
                "modelUri": model_dir.as_uri(),
            }
        ],
    }
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": GRAPH},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "componentSpecs": [{"spec": {"containers": [container]}}],
                    "graph": graph,
                }
            ]
        },
    }


def _serve_graph(
    iris: Iris, tmp_path_factory: pytest.TempPathFactory, name: str, *flags: str
) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp(f"v2-{name}")
    (folder / "Units.py").write_text(textwrap.dedent(UNITS_SOURCE))
    manifest = folder / "iris-graph.yaml"
    manifest.write_text(yaml.safe_dump(_graph_manifest(iris.model_dir), sort_keys=False))
    with serving(folder, ["serve", str(manifest), *flags], GRAPH) as endpoint:
        nodes = {"classifier": "sklearn", "mm-to-cm": ""}
        yield Target(name, endpoint, 10.0, "infergraph_graph", nodes)


@pytest.fixture(scope="module")
def graph(iris: Iris, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from _serve_graph(iris, tmp_path_factory, "graph")


@pytest.fixture(scope="module")
def graph_processes(iris: Iris, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from _serve_graph(iris, tmp_path_factory, "graph-processes", "--processes")


@pytest.fixture(scope="module", params=[pytest.param(t, id=t) for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Target:
    target: Target = request.getfixturevalue(request.param.replace("-", "_"))
    return target


# ---------------------------------------------------------------- the probe


PROBE_INFER = {
    # case suffix -> (client, mode, whether the answer's tensors come back binary/raw)
    "triton-grpc": ("triton-grpc", "raw", True),
    "kserve-rest-json": ("kserve-rest", "json", False),
    "kserve-rest-binary": ("kserve-rest", "binary", True),
    "kserve-grpc-typed": ("kserve-grpc", "typed", False),
    "kserve-grpc-raw": ("kserve-grpc", "raw", True),
}
PROBE_HEALTH = ("triton-grpc", "kserve-rest", "kserve-grpc")


def _address(target: Target, client: str) -> str:
    return target.endpoint.http_address if client.endswith("rest") else target.endpoint.grpc_address


def _probe_plan(targets: list[Target], iris: Iris) -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = []
    for target in targets:
        rows = encode_tensor("input-0", "FP64", iris.rows * target.unit)
        for suffix, (client, mode, _) in PROBE_INFER.items():
            case = f"{target.name}-{suffix}"
            plan.append(
                {"case": case, "client": client, "call": "infer", "mode": mode, "id": case,
                 "url": _address(target, client), "model": target.model, "inputs": [rows]}
            )  # fmt: skip
        for client in PROBE_HEALTH:
            plan.append(
                {"case": f"{target.name}-{client}-health", "client": client, "call": "health",
                 "url": _address(target, client), "model": target.model}
            )  # fmt: skip
        for client, mode in (("triton-grpc", "raw"), ("kserve-rest", "json")):
            plan.append(
                {"case": f"{target.name}-{client}-unknown-model", "client": client,
                 "call": "infer", "mode": mode, "url": _address(target, client),
                 "model": "no-such-model", "inputs": [rows]}
            )  # fmt: skip
    return plan


@pytest.fixture(scope="module")
def probe(
    iris: Iris,
    microservice: Target,
    graph: Target,
    graph_processes: Target,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    python = kserve_python()
    plan = _probe_plan([microservice, graph, graph_processes], iris)
    return run_probe(python, plan, tmp_path_factory.mktemp("v2-probe"), ("triton", "kserve"))


# ---------------------------------------------------------------- predictions


def test_probe_used_the_expected_clients(probe: dict[str, dict[str, Any]]) -> None:
    assert probe["_versions-triton"]["tritonclient"].startswith("2."), probe["_versions-triton"]
    assert probe["_versions-kserve"]["kserve"] == "0.21.0", probe["_versions-kserve"]
    assert probe["_versions-kserve"]["protobuf"].startswith("6."), probe["_versions-kserve"]


@pytest.mark.parametrize("suffix", [pytest.param(s, id=s) for s in PROBE_INFER])
def test_peer_client_gets_sklearn_predictions(
    suffix: str, target: Target, iris: Iris, probe: dict[str, dict[str, Any]]
) -> None:
    record = probe[f"{target.name}-{suffix}"]
    assert record["error"] is None, record
    response = record["response"]
    assert response["model_name"] == target.model, record
    assert response["id"] == f"{target.name}-{suffix}", record
    assert response["binary"] is PROBE_INFER[suffix][2], record
    [output] = record["outputs"]
    assert (output["name"], output["datatype"]) == (OUTPUT, "FP64"), output
    assert output["shape"] == [len(iris.rows), 3], output
    np.testing.assert_allclose(decode_tensor(output), iris.proba, rtol=RTOL, atol=0)


def tritonclient_http_infer(
    target: Target, iris: Iris, binary: bool, outputs: bool = True, **options: Any
) -> httpclient.InferResult:
    """The iris rows through ``tritonclient.http``; ``outputs=False`` requests none, so the
    client asks for every output as binary (``parameters.binary_data_output``)."""
    client = httpclient.InferenceServerClient(target.endpoint.http_address)
    try:
        infer_input = httpclient.InferInput("input-0", list(iris.rows.shape), "FP64")
        infer_input.set_data_from_numpy(iris.rows * target.unit, binary_data=binary)
        requested = [httpclient.InferRequestedOutput(OUTPUT, binary_data=binary)]
        return client.infer(
            target.model,
            [infer_input],
            request_id="r-7",
            outputs=requested if outputs else None,
            **options,
        )
    finally:
        client.close()


@pytest.mark.parametrize(
    ("binary", "outputs"),
    [
        pytest.param(True, True, id="binary"),
        pytest.param(False, True, id="json"),
        pytest.param(True, False, id="binary-no-outputs-requested"),
    ],
)
def test_tritonclient_http_gets_sklearn_predictions(
    binary: bool, outputs: bool, target: Target, iris: Iris
) -> None:
    result = tritonclient_http_infer(target, iris, binary, outputs)

    response = result.get_response()
    assert (response["model_name"], response["id"]) == (target.model, "r-7")
    [output] = response["outputs"]
    assert (output["name"], output["datatype"]) == (OUTPUT, "FP64")
    if binary:
        assert "data" not in output, output
        assert output["parameters"]["binary_data_size"] == iris.proba.size * 8
    else:
        assert len(output["data"]) == iris.proba.size, output
    np.testing.assert_allclose(result.as_numpy(OUTPUT), iris.proba, rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    "algorithm", [pytest.param("gzip", id="gzip"), pytest.param("deflate", id="deflate")]
)
def test_tritonclient_http_response_compression_option(
    algorithm: str, microservice: Target, iris: Iris
) -> None:
    # infergraph answers uncompressed, which Accept-Encoding allows; the client copes
    result = tritonclient_http_infer(
        microservice, iris, True, response_compression_algorithm=algorithm
    )
    np.testing.assert_allclose(result.as_numpy(OUTPUT), iris.proba, rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    "algorithm", [pytest.param("gzip", id="gzip"), pytest.param("deflate", id="deflate")]
)
def test_tritonclient_http_compressed_request(
    algorithm: str, microservice: Target, iris: Iris
) -> None:
    result = tritonclient_http_infer(
        microservice, iris, True, request_compression_algorithm=algorithm
    )
    np.testing.assert_allclose(result.as_numpy(OUTPUT), iris.proba, rtol=RTOL, atol=0)


# ---------------------------------------------------------------- health and metadata


@pytest.mark.parametrize("client", [pytest.param(c, id=c) for c in PROBE_HEALTH])
def test_peer_client_sees_health(
    client: str, target: Target, probe: dict[str, dict[str, Any]]
) -> None:
    record = probe[f"{target.name}-{client}-health"]
    assert record["error"] is None, record
    health = record["health"]
    assert (health["live"], health["ready"], health["model_ready"]) == (True, True, True), record
    if client == "triton-grpc":
        assert health["server_metadata"]["name"] == "infergraph", record
        assert "binary_tensor_data" in health["server_metadata"]["extensions"], record
        assert health["model_metadata"]["name"] == target.model, record
        assert health["model_metadata"].get("platform", "") == target.platform, record


def test_tritonclient_http_sees_health_and_metadata(target: Target) -> None:
    client = httpclient.InferenceServerClient(target.endpoint.http_address)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(target.model)
        assert not client.is_model_ready("no-such-model")
        server = client.get_server_metadata()
        model = client.get_model_metadata(target.model)
        nodes = {node: client.get_model_metadata(node) for node in target.nodes}
    finally:
        client.close()
    assert server["name"] == "infergraph"
    assert "binary_tensor_data" in server["extensions"]
    assert (model["name"], model["platform"]) == (target.model, target.platform)
    assert {n: (m["name"], m["platform"]) for n, m in nodes.items()} == {
        n: (n, p) for n, p in target.nodes.items()
    }


@pytest.mark.parametrize(
    "client",
    [pytest.param("triton-grpc", id="triton-grpc"), pytest.param("kserve-rest", id="kserve-rest")],
)
def test_peer_client_sees_unknown_model_error(
    client: str, target: Target, probe: dict[str, dict[str, Any]]
) -> None:
    record = probe[f"{target.name}-{client}-unknown-model"]
    assert record["status"] == ("INVALID_ARGUMENT" if client == "triton-grpc" else 400), record
    assert "'no-such-model' is not found" in record["error"], record


# ---------------------------------------------------------------- curl


@dataclass(frozen=True)
class Curled:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)


def curl(tmp_path: Path, url: str, *args: str) -> Curled:
    """One curl call; its status, lower-cased headers and body."""
    exe = shutil.which("curl")
    assert exe, "curl is not installed; the V2 curl tests need it"
    headers_path, body_path = tmp_path / "curl-headers.txt", tmp_path / "curl-body.bin"
    done = subprocess.run(
        [exe, "-sS", "-D", str(headers_path), "-o", str(body_path), *args, url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = headers_path.read_text().splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return Curled(status, headers, body_path.read_bytes())


def _infer_url(target: Target, model: str | None = None) -> str:
    return f"http://{target.endpoint.http_address}/v2/models/{model or target.model}/infer"


def test_curl_json_body_gets_sklearn_predictions(
    target: Target, iris: Iris, tmp_path: Path
) -> None:
    rows = iris.rows * target.unit
    body = {
        "id": "curl-json",
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.tolist(),
            }
        ],
    }
    (tmp_path / "body.json").write_text(json.dumps(body))
    answer = curl(
        tmp_path, _infer_url(target),
        "-H", "Content-Type: application/json", "--data-binary", f"@{tmp_path / 'body.json'}",
    )  # fmt: skip
    assert answer.status == 200, answer
    reply = answer.json()
    assert (reply["model_name"], reply["id"]) == (target.model, "curl-json")
    [output] = reply["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == (OUTPUT, "FP64", [6, 3])
    np.testing.assert_allclose(np.reshape(output["data"], (6, 3)), iris.proba, rtol=RTOL, atol=0)


def test_curl_binary_body_gets_binary_sklearn_predictions(
    target: Target, iris: Iris, tmp_path: Path
) -> None:
    tensor = (iris.rows * target.unit).astype("<f8").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {"name": "input-0", "shape": [6, 4], "datatype": "FP64",
                 "parameters": {"binary_data_size": len(tensor)}}
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()  # fmt: skip
    (tmp_path / "body.bin").write_bytes(header + tensor)
    answer = curl(
        tmp_path, _infer_url(target),
        "-H", f"Inference-Header-Content-Length: {len(header)}",
        "-H", "Content-Type: application/octet-stream",
        "--data-binary", f"@{tmp_path / 'body.bin'}",
    )  # fmt: skip
    assert answer.status == 200, answer
    length = int(answer.headers["inference-header-content-length"])
    reply = json.loads(answer.body[:length])
    [output] = reply["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == (OUTPUT, "FP64", [6, 3])
    assert "data" not in output
    assert output["parameters"]["binary_data_size"] == len(answer.body) - length == 6 * 3 * 8
    proba = np.frombuffer(answer.body[length:], dtype="<f8").reshape(6, 3)
    np.testing.assert_allclose(proba, iris.proba, rtol=RTOL, atol=0)


def test_curl_health_and_metadata(target: Target, tmp_path: Path) -> None:
    base = f"http://{target.endpoint.http_address}/v2"
    expected = {
        "/health/live": {"live": True},
        "/health/ready": {"ready": True},
        f"/models/{target.model}/ready": {"name": target.model, "ready": True},
    }
    for path, body in expected.items():
        answer = curl(tmp_path, base + path)
        assert (answer.status, answer.json()) == (200, body), path

    server = curl(tmp_path, base).json()
    assert server["name"] == "infergraph"
    assert "binary_tensor_data" in server["extensions"]
    for model, platform in {target.model: target.platform, **target.nodes}.items():
        answer = curl(tmp_path, f"{base}/models/{model}")
        assert answer.status == 200, answer
        metadata = answer.json()
        assert (metadata["name"], metadata["platform"]) == (model, platform), metadata
        assert {"inputs", "outputs"} <= set(metadata), metadata


# ---------------------------------------------------------------- malformed requests


def _binary_body(tensor_json: dict[str, Any], data: bytes) -> tuple[bytes, int]:
    header = json.dumps({"inputs": [tensor_json]}).encode()
    return header + data, len(header)


def _fp64_header(shape: list[int], size: int) -> dict[str, Any]:
    return {
        "name": "input-0",
        "shape": shape,
        "datatype": "FP64",
        "parameters": {"binary_data_size": size},
    }


_ROW = np.arange(4, dtype="<f8").tobytes()
_BINARY_ROW, _BINARY_ROW_HEADER = _binary_body(_fp64_header([1, 4], 32), _ROW)
_SHORT, _SHORT_HEADER = _binary_body(_fp64_header([1, 4], 32), _ROW[:16])
_MISSIZED, _MISSIZED_HEADER = _binary_body(_fp64_header([1, 4], 24), _ROW[:24])


def _json_input(**tensor: Any) -> bytes:
    return json.dumps({"inputs": [{"name": "input-0", **tensor}]}).encode()


MALFORMED_REST = [
    pytest.param(
        MODEL, {}, _json_input(shape=[2, 4], datatype="FP64", data=[1.0] * 7),
        r"^inputs\[0\]\.shape: \[2, 4\] needs 8 values, got 7$",
        id="json-shape-and-data-disagree",
    ),
    pytest.param(
        MODEL, {"Inference-Header-Content-Length": str(_MISSIZED_HEADER)}, _MISSIZED,
        r"^inputs\[0\]\.parameters\.binary_data_size: shape \[1, 4\] of FP64 needs 32 bytes, "
        r"got 24$",
        id="binary-shape-and-size-disagree",
    ),
    pytest.param(
        MODEL, {"Inference-Header-Content-Length": str(_SHORT_HEADER)}, _SHORT,
        r"^inputs\[0\]\.parameters\.binary_data_size: 32 bytes, but only 16 bytes of binary "
        r"data remain after the JSON header$",
        id="binary-data-shorter-than-declared",
    ),
    pytest.param(
        MODEL, {}, _json_input(shape=[1], datatype="FLOAT", data=[1.0]),
        r"^inputs\[0\]\.datatype: 'FLOAT' is not a V2 datatype \(use one of BOOL, .*, BYTES\)$",
        id="unknown-datatype",
    ),
    pytest.param(
        MODEL, {}, _json_input(shape=[1], datatype="BF16", data=[1.0]),
        r"^inputs\[0\]\.datatype: 'BF16' is not supported by infergraph",
        id="bf16-unsupported",
    ),
    pytest.param(
        MODEL, {"Inference-Header-Content-Length": "12x"}, _BINARY_ROW,
        r"^Inference-Header-Content-Length: '12x' is not a non-negative integer$",
        id="binary-header-not-a-number",
    ),
    pytest.param(
        MODEL, {"Inference-Header-Content-Length": str(len(_BINARY_ROW) + 1)}, _BINARY_ROW,
        rf"^Inference-Header-Content-Length: {len(_BINARY_ROW) + 1} does not fit the "
        rf"{len(_BINARY_ROW)}-byte body; it must give the length of the JSON header$",
        id="binary-header-larger-than-body",
    ),
    pytest.param(
        "no-such-model", {}, _json_input(shape=[1, 4], datatype="FP64", data=[1.0] * 4),
        r"^Model 'no-such-model' is not found on this server \(it serves 'iris'\)$",
        id="unknown-model",
    ),
    pytest.param(
        MODEL, {}, b'{"inputs": [', r"^The inference request is not valid JSON: ",
        id="not-json",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("model", "headers", "body", "message"), MALFORMED_REST)
def test_curl_malformed_request_gets_400_and_v2_error(
    model: str,
    headers: dict[str, str],
    body: bytes,
    message: str,
    microservice: Target,
    tmp_path: Path,
) -> None:
    (tmp_path / "body.bin").write_bytes(body)
    args = [arg for key, value in headers.items() for arg in ("-H", f"{key}: {value}")]
    answer = curl(
        tmp_path, _infer_url(microservice, model),
        *args, "-H", "Content-Type: application/octet-stream",
        "--data-binary", f"@{tmp_path / 'body.bin'}",
    )  # fmt: skip
    assert answer.status == 400, answer
    error = answer.json()
    assert list(error) == ["error"], error
    assert isinstance(error["error"], str), error
    assert re.search(message, error["error"]), error


Tensor = pb.ModelInferRequest.InferInputTensor
Contents = pb.InferTensorContents


def _fp64(shape: list[int], **contents: Any) -> Any:
    tensor = Tensor(name="input-0", datatype="FP64", shape=shape)
    if contents:
        tensor.contents.CopyFrom(Contents(**contents))
    return tensor


MALFORMED_GRPC = [
    pytest.param(
        pb.ModelInferRequest(model_name=MODEL, inputs=[_fp64([2, 4], fp64_contents=[1.0] * 7)]),
        r"^input 'input-0': 7 values in contents\.fp64_contents do not fill shape \[2, 4\] "
        r"\(8 elements\)$",
        id="typed-shape-and-data-disagree",
    ),
    pytest.param(
        pb.ModelInferRequest(model_name=MODEL, inputs=[_fp64([2, 4])], raw_input_contents=[_ROW]),
        r"^input 'input-0': shape \[2, 4\] of FP64 needs 64 bytes of binary data, got 32$",
        id="raw-shape-and-size-disagree",
    ),
    pytest.param(
        pb.ModelInferRequest(model_name=MODEL, inputs=[_fp64([1, 4], fp32_contents=[1.0] * 4)]),
        r"^input 'input-0': FP64 data goes in fp64_contents, not fp32_contents$",
        id="typed-wrong-field",
    ),
    pytest.param(
        pb.ModelInferRequest(
            model_name=MODEL,
            inputs=[Tensor(name="input-0", datatype="FLOAT", shape=[1],
                           contents=Contents(fp32_contents=[1.0]))],
        ),
        r"^input 'input-0': unknown datatype 'FLOAT'; use one of BOOL, .*, BYTES$",
        id="unknown-datatype",
    ),
    pytest.param(
        pb.ModelInferRequest(
            model_name=MODEL,
            inputs=[Tensor(name="input-0", datatype="BF16", shape=[2])],
            raw_input_contents=[b"\x80\x3f\x00\x40"],
        ),
        r"^input 'input-0': unknown datatype 'BF16'",
        id="bf16-unsupported",
    ),
    pytest.param(
        pb.ModelInferRequest(
            model_name=MODEL,
            inputs=[_fp64([1, 4], fp64_contents=[1.0] * 4)],
            raw_input_contents=[_ROW],
        ),
        r"^contents field must not be specified when using raw_input_contents for 'input-0'$",
        id="typed-and-raw",
    ),
    pytest.param(
        pb.ModelInferRequest(
            model_name=MODEL,
            inputs=[_fp64([1, 4]), Tensor(name="b", datatype="FP64", shape=[1, 4])],
            raw_input_contents=[_ROW],
        ),
        r"^raw_input_contents has 1 entries for 2 inputs; send one per input, in the order of "
        r"the inputs$",
        id="raw-count-disagrees",
    ),
    pytest.param(
        pb.ModelInferRequest(model_name="no-such-model", inputs=[_fp64([1, 4])],
                             raw_input_contents=[_ROW]),
        r"^Model 'no-such-model' is not found on this server \(it serves 'iris'\)$",
        id="unknown-model",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "message"), MALFORMED_GRPC)
def test_grpc_malformed_request_gets_invalid_argument(
    request_: Any, message: str, microservice: Target
) -> None:
    with grpc.insecure_channel(microservice.endpoint.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request_, timeout=10)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert re.search(message, error.details()), error.details()
