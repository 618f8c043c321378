"""``infergraph serve --remote NODE=HOST:PORT``: the orchestrator calls a node another
process serves (as the node containers of a pod), over gRPC or REST and either node
protocol, while the other nodes run in the orchestrator; bad options are refused."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import model_files
from tests.helpers.ports import HeldPorts
from tests.helpers.procs import PYTHON, clean_env, http_request, start

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parents[1] / "fixtures" / "podman" / "transformer"
ROW_MM = [[51.0, 35.0, 14.0, 2.0]]  # model_files.ROW in millimetres


def manifest(folder: Path, model: Path, transport: str | None = None) -> Path:
    spec: dict = {
        "predictors": [
            {
                "name": "default",
                "componentSpecs": [
                    {"spec": {"containers": [{"name": "transformer", "image": "acme/t:1"}]}}
                ],
                "graph": {
                    "name": "transformer",
                    "type": "TRANSFORMER",
                    "children": [
                        {"name": "classifier", "implementation": "SKLEARN_SERVER",
                         "modelUri": str(model)},
                    ],
                },
            }
        ]
    }  # fmt: skip
    if transport:
        spec["transport"] = transport
    document = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "iris"},
        "spec": spec,
    }
    path = folder / "deployment.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextlib.contextmanager
def orchestrator(folder: Path, path: Path, *args: str) -> Iterator[int]:
    """``infergraph serve`` in an empty folder (no class to import); its REST port."""
    held = HeldPorts(2)
    http_port, grpc_port = held.ports
    err = folder / f"serve-{time.monotonic_ns()}.txt"
    run_in = folder / "empty"
    run_in.mkdir(exist_ok=True)
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [PYTHON, "-m", "infergraph", "serve", str(path), "--host", "127.0.0.1",
             "--http-port", str(http_port), "--grpc-port", str(grpc_port), *args],
            cwd=run_in, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, err.read_text()
            with contextlib.suppress(OSError):
                if http_request(http_port, "GET", "/ready", timeout=2)[0] == 200:
                    break
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        yield http_port
    finally:
        proc.kill()
        proc.wait(10)
        held.close()


@pytest.fixture
def transformer(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """The fixture transformer as its own ``infergraph microservice``, with the identity a
    pod's env gives it (its requestPath entry): (REST, gRPC) ports."""
    folder = tmp_path / "transformer"
    shutil.copytree(FIXTURE, folder)
    identity = {"PREDICTIVE_UNIT_ID": "transformer", "PREDICTIVE_UNIT_IMAGE": "acme/t:1"}
    service = start(folder, ["Transformer", "--service-type", "TRANSFORMER"], env=identity)
    try:
        service.wait_ready()
        yield service.http, service.grpc
    finally:
        service.kill()


@pytest.mark.parametrize(
    ("transport", "protocol", "host"),
    [
        pytest.param("grpc", "v2", "127.0.0.1", id="grpc-v2"),
        pytest.param("grpc", "seldon", "127.0.0.1", id="grpc-seldon"),
        pytest.param(None, "v2", "127.0.0.1", id="rest-v2"),  # REST by default, as in Seldon
        pytest.param("rest", "seldon", "127.0.0.1", id="rest-seldon"),
        pytest.param("grpc", "v2", "localhost", id="by-name"),  # as render writes it in a pod
    ],
)
def test_a_remote_node_in_front_of_a_local_one(
    tmp_path: Path, transformer: tuple[int, int], transport: str | None, protocol: str, host: str
) -> None:
    model_dir = tmp_path / "iris"
    model = model_files.write_sklearn(model_dir, "skops")
    path = manifest(tmp_path, model_dir, transport)
    port = transformer[1] if transport == "grpc" else transformer[0]
    args = ["--remote", f"transformer={host}:{port}", "--node-protocol", protocol]
    with orchestrator(tmp_path, path, *args) as http_port:
        status, _, data = http_request(
            http_port, "POST", "/api/v1.0/predictions", {"data": {"ndarray": ROW_MM}}
        )
        assert status == 200, data
        body = json.loads(data)
        (expected,) = model.predict_proba(model_files.ROW).tolist()
        (row,) = body["data"]["ndarray"]
        assert row == pytest.approx(expected)
        assert body["meta"]["requestPath"] == {
            "transformer": "acme/t:1",
            "classifier": "SKLEARN_SERVER",
        }


def run_serve(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "infergraph", "serve", *args],
        cwd=folder, env=clean_env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        pytest.param(["--remote", "transformer"], 2, ["expected NODE=HOST:PORT"], id="syntax"),
        pytest.param(["--remote", "transformer=host"], 2, ["expected NODE=HOST:PORT"], id="port"),
        pytest.param(
            ["--remote", "nope=127.0.0.1:1"], 1, ["--remote nope", "has no such node"], id="node"
        ),
        pytest.param(
            ["--remote", "transformer=127.0.0.1:1", "--processes"],
            2,
            ["cannot be combined"],
            id="processes",
        ),
    ],
)
def test_bad_remote_options(tmp_path: Path, args: list[str], code: int, words: list[str]) -> None:
    model_files.write_sklearn(tmp_path / "iris", "skops")
    path = manifest(tmp_path, tmp_path / "iris")
    done = run_serve(tmp_path, str(path), *args)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr


def test_without_remote_the_imageonly_container_is_refused(tmp_path: Path) -> None:
    """The same manifest without --remote needs the transformer's class here, and says so."""
    model_files.write_sklearn(tmp_path / "iris", "skops")
    done = run_serve(tmp_path, str(manifest(tmp_path, tmp_path / "iris")))
    assert done.returncode == 1
    assert "has no env MODEL_NAME" in done.stderr
