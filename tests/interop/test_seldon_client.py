"""seldon-core's own ``SeldonClient`` against ``infergraph microservice``.

seldon-core cannot share the project's virtualenv (its pins clash with ours), so
it lives in ``.venv-seldon``, built by ``scripts/peer-venvs.sh seldon``. This
module builds (or reuses) that venv, serves one Seldon-style class with
``python -m infergraph microservice`` and runs ``seldon_client_probe.py`` with
the seldon venv's Python. The probe prints one JSON record per client call; the
tests here check each record's numbers.

A failing install FAILS the tests with the installer's output. The only skip is
``INFERGRAPH_SKIP_INTEROP=1`` (offline machines), plus the tftensor cases that
SeldonClient itself cannot build without TensorFlow (see ``ALLOWED_SKIPS``).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.ports import HeldPorts

from .seldon_client_probe import BIN_DATA, JSON_DATA, REWARD_GRPC, REWARD_REST, STR_DATA, X2, X

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SELDON_VENV = ROOT / ".venv-seldon"
SELDON_PYTHON = SELDON_VENV / "bin" / "python"
PROBE = Path(__file__).with_name("seldon_client_probe.py")
INSTALL_TIMEOUT = 1800.0
READY_TIMEOUT = 60.0
PROBE_TIMEOUT = 300.0

MODEL_SOURCE = '''
    import os

    import numpy as np


    class InteropModel:
        """Deterministic maps, so that the client side can check every answer."""

        def __init__(self):
            self.rewards_file = os.environ["INTEROP_REWARDS_FILE"]

        def predict(self, X, features_names=None, meta=None):
            if isinstance(X, str):
                return X.upper()
            if isinstance(X, (bytes, bytearray)):
                return bytes(X)[::-1]
            if isinstance(X, dict):
                return {"label": X["label"], "doubled": [2 * v for v in X["values"]]}
            # column names sent by the client reach the model: answer X * 3
            factor = 3.0 if list(features_names or []) == ["p", "q", "r"] else 2.0
            return np.asarray(X, dtype=float) * factor

        def class_names(self):
            return ["a", "b", "c"]

        def transform_input(self, X, features_names=None, meta=None):
            return np.asarray(X, dtype=float) + 1

        def transform_output(self, X, features_names=None, meta=None):
            return np.asarray(X, dtype=float) * 10

        def route(self, features, feature_names):
            return 1

        def aggregate(self, features_list, feature_names_list):
            return np.sum([np.asarray(f, dtype=float) for f in features_list], axis=0)

        def send_feedback(self, features, feature_names, reward, truth, routing=None):
            with open(self.rewards_file, "a") as fh:
                fh.write(f"{reward}\\n")
            return np.array([[reward]])
'''


@dataclass(frozen=True)
class Expect:
    value: Any  # what seldon-core's utilities decode from the answer
    key: str  # where the payload sits: data.<key> for arrays, else the top-level key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


EXPECTED: dict[str, Expect] = {}
for _t in ("rest", "grpc"):
    # The gRPC side of the probe sends tensors to the non-predict methods.
    _wire = "ndarray" if _t == "rest" else "tensor"
    EXPECTED |= {
        f"{_t}-predict-ndarray": Expect(X * 2, "ndarray"),
        f"{_t}-predict-tensor": Expect(X * 2, "tensor"),
        f"{_t}-predict-tftensor": Expect(X * 2, "tftensor"),
        f"{_t}-predict-tftensor-proto": Expect(X * 2, "tftensor"),
        f"{_t}-predict-names": Expect(X * 3, "ndarray"),
        f"{_t}-predict-strdata": Expect(STR_DATA.upper(), "strData"),
        f"{_t}-predict-bindata": Expect(_b64(BIN_DATA[::-1]), "binData"),
        f"{_t}-predict-jsondata": Expect(
            {"label": JSON_DATA["label"], "doubled": [2.0 * v for v in JSON_DATA["values"]]},
            "jsonData",
        ),
        f"{_t}-transform-input": Expect(X + 1, _wire),
        f"{_t}-transform-output": Expect(X * 10, _wire),
        f"{_t}-route": Expect([[1.0]], _wire),
        f"{_t}-aggregate": Expect(X + X2, _wire),
        f"{_t}-send-feedback": Expect([[REWARD_REST if _t == "rest" else REWARD_GRPC]], "tensor"),
    }

# SeldonClient builds tftensor payloads with tf.make_tensor_proto: without
# TensorFlow in .venv-seldon it raises NameError before sending anything. The
# "-tftensor-proto" cases send the same message built from seldon-core's protos.
ALLOWED_SKIPS = {"rest-predict-tftensor", "grpc-predict-tftensor"}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seldon_python() -> Path:
    """``.venv-seldon/bin/python``, installed by scripts/peer-venvs.sh if needed."""
    if os.environ.get("INFERGRAPH_SKIP_INTEROP") == "1":
        pytest.skip("INFERGRAPH_SKIP_INTEROP=1: seldon-core interop tests not run")
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "peer-venvs.sh"), "seldon"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/peer-venvs.sh seldon still running after {exc.timeout}s")
    if done.returncode != 0 or not SELDON_PYTHON.exists():
        pytest.fail(
            f"scripts/peer-venvs.sh seldon failed (exit {done.returncode}); "
            f"set INFERGRAPH_SKIP_INTEROP=1 to skip on offline machines.\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    check = subprocess.run(
        [str(SELDON_PYTHON), "-c", "import seldon_core.seldon_client"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check.returncode != 0:
        pytest.fail(
            f"{SELDON_VENV} exists but cannot import seldon_core.seldon_client; delete it "
            f"to rebuild.\n--- installer\n{done.stdout}{done.stderr}\n--- import\n{check.stderr}"
        )
    return SELDON_PYTHON


def _ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@dataclass
class Server:
    http: int
    grpc: int
    rewards: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("seldon-interop")
    (folder / "InteropModel.py").write_text(textwrap.dedent(MODEL_SOURCE))
    rewards = folder / "rewards.txt"
    held = HeldPorts(3)
    http_port, grpc_port, metrics_port = held.ports
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREDICTIVE_UNIT_", "SELDON_", "GUNICORN_", "GRPC_"))
        and k not in ("MODEL_NAME", "SERVICE_TYPE", "PERSISTENCE")
    }
    env |= {"INTEROP_REWARDS_FILE": str(rewards), "PYTHONUNBUFFERED": "1"}
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infergraph",
                "microservice",
                "InteropModel",
                *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
                *("--metrics-port", str(metrics_port), "--host", "127.0.0.1"),
                *("--path", str(folder)),
            ],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (_ready(http_port) and _accepts(grpc_port)):
            if proc.poll() is not None:
                pytest.fail(
                    f"infergraph microservice exited with {proc.returncode}:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"infergraph microservice not ready after {READY_TIMEOUT}s:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.05)
        yield Server(http_port, grpc_port, rewards)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children, if any
        held.close()


@pytest.fixture(scope="module")
def probe(seldon_python: Path, server: Server) -> dict[str, dict[str, Any]]:
    """Run the probe once; its records by case name."""
    try:
        done = subprocess.run(
            [
                str(seldon_python),
                str(PROBE),
                *("--http-port", str(server.http), "--grpc-port", str(server.grpc)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"seldon_client_probe.py still running after {exc.timeout}s")
    assert done.returncode == 0, f"probe failed:\n{done.stdout}\n{done.stderr}"
    records: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        assert record["case"] not in records, f"duplicate case {record['case']}"
        records[record["case"]] = record
    return records


# ---------------------------------------------------------------- tests


def test_probe_ran_every_case(probe: dict[str, dict[str, Any]]) -> None:
    versions = probe["_versions"]
    assert versions["seldon-core"].startswith("1."), versions
    assert set(probe) - {"_versions"} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_seldon_client_call(case: str, probe: dict[str, dict[str, Any]]) -> None:
    record = probe[case]
    expect = EXPECTED[case]
    if record["skip"]:
        assert case in ALLOWED_SKIPS, record
        pytest.skip(f"{case}: {record['skip']} ({record['error']})")
    assert record["error"] is None, record
    assert record["success"] is True, record
    response = record["response"]
    assert response is not None, record
    assert "status" not in response or response["status"].get("status") != "FAILURE", record
    decoded = record["decoded"]
    if expect.key in ("strData", "binData", "jsonData"):
        assert expect.key in response, response
        assert decoded == expect.value, record
        return
    # arrays: the answer keeps the request's payload type and the class names
    assert expect.key in response["data"], response
    assert response["data"].get("names") == ["a", "b", "c"], response
    np.testing.assert_allclose(np.asarray(decoded, dtype=float), np.asarray(expect.value))


def test_feedback_reached_the_model(probe: dict[str, dict[str, Any]], server: Server) -> None:
    assert probe["rest-send-feedback"]["success"] and probe["grpc-send-feedback"]["success"]
    rewards = [float(x) for x in server.rewards.read_text().split()]
    assert rewards == [REWARD_REST, REWARD_GRPC]


# ---------------------------------------------------------------- through the gateway paths

GATEWAY_PROBE = Path(__file__).with_name("seldon_gateway_probe.py")
S2I = ROOT / "tests" / "fixtures" / "s2i"
# single.yaml: SeldonDeployment "doubler" in namespace "models", no MODEL_NAME in the YAML
GATEWAY_NAMESPACE, GATEWAY_DEPLOYMENT = "models", "doubler"


@pytest.fixture(scope="module")
def gateway_probe(
    seldon_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """``infergraph serve`` an unchanged s2i manifest, then SeldonClient with gateway="istio"
    and "ambassador" against it, as against a cluster's ingress; the records by case."""
    folder = tmp_path_factory.mktemp("seldon-gateway")
    held = HeldPorts(2)
    http_port, grpc_port = held.ports
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "infergraph", "serve", str(S2I / "single.yaml"),
                "--path", str(S2I / "doubler"), "--host", "127.0.0.1",
                "--http-port", str(http_port), "--grpc-port", str(grpc_port),
            ],
            cwd=folder, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (_ready(http_port) and _accepts(grpc_port)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("infergraph serve did not start:\n" + log_path.read_text()[-4000:])
            time.sleep(0.05)
        done = subprocess.run(
            [
                str(seldon_python), str(GATEWAY_PROBE),
                "--http", f"127.0.0.1:{http_port}", "--grpc", f"127.0.0.1:{grpc_port}",
                "--namespace", GATEWAY_NAMESPACE, "--deployment", GATEWAY_DEPLOYMENT,
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False,
        )  # fmt: skip
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        held.close()
    assert done.returncode == 0, f"gateway probe failed:\n{done.stdout}\n{done.stderr}"
    return {r["case"]: r for r in map(json.loads, done.stdout.splitlines())}


GATEWAY_CASES = [
    f"{gateway}-{transport}-{method}"
    for gateway in ("istio", "ambassador")
    for transport in ("rest", "grpc")
    for method in ("predict", "feedback")
]


@pytest.mark.parametrize("case", GATEWAY_CASES)
def test_seldon_client_through_the_gateway(
    case: str, gateway_probe: dict[str, dict[str, Any]]
) -> None:
    record = gateway_probe[case]
    assert record["success"] is True, record
    if case.endswith("-predict"):
        assert record["response"]["data"]["ndarray"] == [[2.0, 4.0]], record


@pytest.mark.parametrize(
    ("case", "words"),
    [
        pytest.param("wrong-namespace-rest-predict", "404", id="rest"),
        pytest.param("wrong-namespace-grpc-predict", "namespace: 'elsewhere'", id="grpc"),
    ],
)
def test_seldon_client_for_another_namespace_is_told_not_found(
    case: str, words: str, gateway_probe: dict[str, dict[str, Any]]
) -> None:
    record = gateway_probe[case]
    assert record["success"] is False, record
    assert words in record["msg"], record
