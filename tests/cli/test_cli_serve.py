"""``python -m infergraph serve FILE`` as a real process on real sockets: predictions,
feedback and gRPC; start-up failures with clear messages and exit codes; SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import json_format

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.helpers.graph_fixtures import deployment, render, unit, write_graph
from tests.helpers.ports import HeldPorts
from tests.helpers.procs import PYTHON, clean_env, http_request, metric_sum, parse_metrics

pytestmark = pytest.mark.slow

READY_TIMEOUT = 30.0
X = [[1.0, 2.0]]


def serve_command(path: Path, *args: str) -> list[str]:
    return [PYTHON, "-m", "infergraph", "serve", str(path), *args]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    http: int
    grpc: int
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        status, _, data = http_request(self.http, "POST", path, body)
        return status, json.loads(data)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode}:\n{self.stderr()}")
            with contextlib.suppress(OSError):
                if http_request(self.http, "GET", "/ready", timeout=2)[0] == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready after {READY_TIMEOUT}s:\n{self.stderr()}")
            time.sleep(0.05)


@contextlib.contextmanager
def serving(
    folder: Path, manifest: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    held = HeldPorts(2)
    http_port, grpc_port = held.ports
    stderr_path = folder / f"stderr-{time.monotonic_ns()}.txt"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            serve_command(
                manifest, "--http-port", str(http_port), "--grpc-port", str(grpc_port),
                "--host", "127.0.0.1", *args,
            ),
            cwd=folder, env=clean_env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
    server = Server(proc, http_port, grpc_port, stderr_path)
    try:
        server.wait_ready()
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        held.close()


def run_to_exit(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "infergraph", "serve", *args],
        cwd=folder, env=clean_env(), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def write_yaml(folder: Path, name: str, *documents: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def bandit_graph() -> dict[str, Any]:
    return deployment(
        unit(
            "t", "TRANSFORMER",
            unit("r", "ROUTER",
                 unit("a", "MODEL", cls="Model", params={"add": 1.0}),
                 unit("b", "MODEL", cls="Model", params={"add": 2.0}),
                 cls="Router", params={"choice": 1}),
            cls="Transformer",
        ),
        name="cli-graph",
    )  # fmt: skip


@pytest.mark.parametrize(
    "http_server",
    [pytest.param("infergraph", id="own-http"), pytest.param("uvicorn", id="uvicorn")],
)
def test_serve_answers_predictions_feedback_and_grpc_then_stops_on_sigterm(
    tmp_path: Path, http_server: str
) -> None:
    manifest, _ = write_graph(tmp_path, bandit_graph())
    env = {"INFERGRAPH_HTTP_SERVER": http_server}
    with serving(tmp_path, manifest, env=env) as server:
        status, body = server.post("/api/v1.0/predictions", {"data": {"ndarray": X}})
        assert status == 200, body
        assert body["data"]["ndarray"] == [[12.0, 22.0]]  # 10X, then b: + 2
        assert body["meta"]["routing"] == {"t": -1, "r": 1, "b": -1}
        status, error = server.post("/api/v1.0/predictions", {"data": {"ndarry": X}})
        assert status == 400, error
        assert "unknown field 'ndarry' in data" in error["status"]["info"]

        feedback = {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1.0}
        status, answer = server.post("/api/v1.0/feedback", feedback)
        assert status == 200, answer
        _, _, text = http_request(server.http, "GET", "/metrics")
        samples = parse_metrics(text.decode())
        assert metric_sum(samples, "seldon_api_model_feedback_total", model_name="r") == 1
        assert metric_sum(samples, "seldon_api_model_feedback_total", model_name="b") == 1
        assert metric_sum(samples, "seldon_api_model_feedback_total", model_name="a") == 0

        with grpc.insecure_channel(f"127.0.0.1:{server.grpc}") as channel:
            request = json_format.ParseDict({"data": {"ndarray": X}}, pb.SeldonMessage())
            response, call = pb_grpc.SeldonStub(channel).Predict.with_call(
                request, metadata=(("seldon-puid", "cli-1"),), timeout=10
            )
        assert json_format.MessageToDict(response)["data"]["ndarray"] == [[12.0, 22.0]]
        assert dict(call.trailing_metadata())["seldon-puid"] == "cli-1"

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        assert "Traceback" not in server.stderr()


def container(name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": f"test/{name}:1"}
    if env:
        out["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return out


def one_node(env: dict[str, str] | None, name: str = "sdep") -> dict[str, Any]:
    manifest = deployment(unit("clf", "MODEL"), name=name)
    manifest["spec"]["predictors"][0]["componentSpecs"] = [
        {"spec": {"containers": [container("clf", env)]}}
    ]
    return manifest


@pytest.mark.parametrize(
    ("documents", "args", "code", "words"),
    [
        pytest.param(
            [deployment(unit("ab", None, implementation="RANDOM_ABTEST"))], [], 1,
            ["spec.predictors[0].graph.children", "RANDOM_ABTEST"], id="invalid-graph",
        ),
        pytest.param(
            [one_node(None)], [], 1, ["node 'clf'", "MODEL_NAME"], id="no-model-name",
        ),
        pytest.param(
            [one_node({"MODEL_NAME": "no_such_module.Model"})], [], 1,
            ["node 'clf'", "no_such_module"], id="no-module",
        ),
        pytest.param(
            [one_node({"MODEL_NAME": "Loader"})], [], 1,
            ["node 'clf'", "weights missing"], id="load-fails",
        ),
        pytest.param(
            [one_node(None, "first"), one_node(None, "second")], [], 2,
            ["2 deployments", "first", "second", "--deployment"], id="two-deployments",
        ),
        pytest.param(
            [one_node(None, "first"), one_node(None, "second")], ["--deployment", "third"], 2,
            ["no deployment 'third'", "first, second"], id="unknown-deployment",
        ),
        pytest.param(
            [deployment(unit("iris", None, implementation="TRITON_SERVER"))], [], 1,
            ["node 'iris'", "TRITON_SERVER", "not supported by infergraph serve"],
            id="prepackaged-unsupported",
        ),
        pytest.param(
            [deployment(unit("iris", None, implementation="SKLEARN_SERVER"))], [], 1,
            ["node 'iris'", "SKLEARN_SERVER", "no file or folder at"], id="prepackaged-no-model",
        ),
    ],
)  # fmt: skip
def test_start_up_failures_are_clear(
    tmp_path: Path, documents: list[dict[str, Any]], args: list[str], code: int, words: list[str]
) -> None:
    for document in documents:  # a prepackaged server needs a modelUri to pass validation
        graph = document["spec"]["predictors"][0]["graph"]
        if graph.get("implementation") in ("SKLEARN_SERVER", "TRITON_SERVER"):
            graph["modelUri"] = str(tmp_path / "no-model-here")
    (tmp_path / "Loader.py").write_text(
        "class Loader:\n"
        "    def load(self):\n"
        "        raise RuntimeError('weights missing')\n"
        "    def predict(self, X, names):\n"
        "        return X\n"
    )
    rendered = [render(d, "unused") for d in documents]
    path = write_yaml(tmp_path, "deployment.yaml", *rendered)
    result = run_to_exit(tmp_path, str(path), "--http-port", "0", "--grpc-port", "0", *args)
    assert result.returncode == code, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert any(line.startswith("infergraph serve: ") for line in result.stderr.splitlines())
    if "weights missing" not in words:  # only a failing load() logs the user's own traceback
        assert "Traceback" not in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = run_to_exit(tmp_path, str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_deployment_flag_picks_one(tmp_path: Path) -> None:
    first = render(bandit_graph(), "m")
    write_graph(tmp_path, bandit_graph(), module="m")
    second = yaml.safe_load(yaml.safe_dump(first))
    second["metadata"]["name"] = "other"
    second["spec"]["predictors"][0]["graph"]["children"][0]["parameters"][1]["value"] = "0"
    path = write_yaml(tmp_path, "two.yaml", first, second)
    with serving(tmp_path, path, "--deployment", "other") as server:
        status, body = server.post("/api/v1.0/predictions", {"data": {"ndarray": X}})
        assert status == 200, body
        assert body["meta"]["routing"]["r"] == 0  # the second deployment's router


# ---------------------------------------------------------------- access log

ACCESS_LINE = r"^\S+ \S+ INFO infergraph\.access: 127\.0\.0\.1 "


def logged_graph(tmp_path: Path) -> Path:
    manifest, _ = write_graph(tmp_path, deployment(unit("m", "MODEL", cls="Model"), name="lg"))
    return manifest


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["--access-log"], {}, id="flag"),
        pytest.param([], {"GUNICORN_ACCESS_LOG": "true", "SELDON_LOG_LEVEL": "WARNING"}, id="env"),
    ],
)
def test_access_log_writes_a_line_per_request_to_stderr(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    with serving(tmp_path, logged_graph(tmp_path), *args, env=env) as server:
        answers = [
            http_request(server.http, "POST", "/api/v1.0/predictions", {"data": {"ndarray": X}}),
            http_request(server.http, "POST", "/api/v1.0/predictions", [1]),
            http_request(server.http, "POST", "/v2/models/lg/infer", {"inputs": 1}),
            http_request(
                server.http, "POST", "/seldon/default/lg/api/v1.0/predictions",
                {"data": {"ndarray": X}},
            ),
        ]  # fmt: skip
        log = server.stderr()  # each line is written before its answer is sent
    assert [status for status, _, _ in answers] == [200, 400, 400, 200]
    puids = [headers["seldon-puid"] for _, headers, _ in answers]
    expected = [
        rf'"POST /api/v1\.0/predictions" 200 \d+\.\dms puid={puids[0]}$',
        rf'"POST /api/v1\.0/predictions" 400 \d+\.\dms puid={puids[1]}$',
        rf'"POST /v2/models/lg/infer" 400 \d+\.\dms puid={puids[2]}$',
        rf'"POST /seldon/default/lg/api/v1\.0/predictions" 200 \d+\.\dms puid={puids[3]}$',
    ]
    for line in expected:
        assert re.search(ACCESS_LINE + line, log, re.MULTILINE), (line, log[-3000:])


def test_no_access_log_by_default(tmp_path: Path) -> None:
    with serving(tmp_path, logged_graph(tmp_path), "--log-level", "DEBUG") as server:
        ok = http_request(server.http, "POST", "/api/v1.0/predictions", {"data": {"ndarray": X}})
        bad = http_request(server.http, "POST", "/api/v1.0/predictions", [1])
        log = server.stderr()
    assert (ok[0], bad[0]) == (200, 400)
    assert "infergraph.access" not in log, log[-3000:]
    assert '"POST /api/v1.0/predictions' not in log, log[-3000:]


def test_the_flag_the_other_kinds_error_suggests_is_one_serve_takes(tmp_path: Path) -> None:
    """A manifest file with a Service next to the deployment, as kubectl users keep them:
    serve refuses it naming --skip-other-kinds, and with that flag it serves the graph."""
    manifest, _ = write_graph(tmp_path, bandit_graph())
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cli-graph"}}
    both = tmp_path / "with-service.yaml"
    both.write_text(yaml.safe_dump(service) + "---\n" + manifest.read_text())
    refused = run_to_exit(tmp_path, str(both))
    assert refused.returncode == 1
    assert "is a Service (v1)" in refused.stderr and "--skip-other-kinds" in refused.stderr
    with serving(tmp_path, both, "--skip-other-kinds") as server:
        status, body = server.post("/api/v1.0/predictions", {"data": {"ndarray": X}})
        assert status == 200, body


def test_the_readme_request_file_is_shipped_and_answers(tmp_path: Path) -> None:
    """README's `curl ... -d @examples/bandit/request.json` against the bandit example."""
    root = Path(__file__).parents[2]
    body = json.loads((root / "examples" / "bandit" / "request.json").read_text())
    readme = (root / "README.md").read_text()
    assert "-d @examples/bandit/request.json" in readme
    example = root / "examples" / "bandit" / "deployment.yaml"
    with serving(tmp_path, example, "--path", str(root / "examples" / "bandit")) as server:
        status, answer = server.post("/api/v1.0/predictions", body)
        assert status == 200, answer
        assert len(answer["data"]["ndarray"][0]) == 10  # a probability per digit
