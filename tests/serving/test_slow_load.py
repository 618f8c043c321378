"""A model whose ``load()`` is slow: the ports answer from the start (issue 13).

What a user relies on (docs/microservice.md, docs/graph.md, docs/processes.md): while
``load()`` runs, ``/live`` answers 200 and ``/ready``, V2 ready and gRPC ready answer 503
or false, and a prediction gets a 503 saying the model is loading, never a refused
connection (a Kubernetes liveness probe would restart the pod in a loop). Once every
``load()`` has finished, ``/ready`` is 200, predictions work, and the log says how long
each model took. The same for ``--workers``, ``infergraph serve`` and ``--processes``.

The model's ``load()`` waits until the test releases it (at most 30 s), so the checks
made while it loads never race its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from infergraph.protocol.proto import inference_pb2 as v2
from infergraph.protocol.proto import inference_pb2_grpc as v2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.helpers.doc_blocks import same_shape, shown
from tests.helpers.ports import HoldPorts
from tests.helpers.procs import (
    Service,
    clean_env,
    http_request,
    poll,
    start,
    write_module,
)

pytestmark = pytest.mark.slow

SLOW_MODEL = """
    import os
    import time
    from pathlib import Path

    HERE = Path(__file__).resolve().parent


    class SlowModel:
        def load(self):
            (HERE / f"load-started-{os.getpid()}").write_text(repr(time.time()))
            deadline = time.monotonic() + 30
            while not (HERE / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)

        def predict(self, X, features_names, meta=None):
            return [[x * 2 for x in row] for row in X]
"""

LOADED = re.compile(r"loaded model (\S+) in \d+\.\d\d s")
BODY = {"data": {"ndarray": [[1, 2]]}}


def _load_starts(folder: Path, n: int = 1) -> list[float] | None:
    """When the first ``n`` ``load()`` calls started (wall clock), once there were ``n``."""
    starts = sorted(float(p.read_text()) for p in folder.glob("load-started-*"))
    return starts[:n] if len(starts) >= n else None


def _live_while_loading(folder: Path, port: int, proc: subprocess.Popen[Any], loads: int) -> None:
    """``/live`` answers within 1 s of ``load()`` starting, while it still runs."""

    def live() -> float | None:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        return time.time() if http_request(port, "GET", "/live", timeout=2)[0] == 200 else None

    answered = poll(live, timeout=60, what="/live")
    started = poll(lambda: _load_starts(folder, loads), timeout=60, what="load() to start")
    assert answered - started[0] < 1.0, "nothing answered while load() ran"
    assert not (folder / "release").exists()


def _status(port: int, path: str, body: Any = None) -> tuple[int, Any]:
    status, _, data = http_request(port, "POST" if body else "GET", path, body)
    return status, json.loads(data) if data.startswith((b"{", b"[")) else data.decode()


def _loaded_lines(text: str) -> list[str]:
    return LOADED.findall(text)


# ---------------------------------------------------------------- infergraph microservice


@pytest.fixture(
    params=[pytest.param("infergraph", id="own-http"), pytest.param("uvicorn", id="uvicorn")]
)
def loading(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Service]:
    """A microservice whose ``load()`` has started and waits for ``release``."""
    write_module(tmp_path, "SlowModel", SLOW_MODEL)
    env = {"INFERGRAPH_HTTP_SERVER": request.param}
    service = start(tmp_path, ["SlowModel", "--log-level", "INFO"], env=env)
    try:
        _live_while_loading(tmp_path, service.http, service.proc, 1)
        yield service
    finally:
        service.kill()


def test_microservice_answers_probes_while_load_runs(loading: Service, tmp_path: Path) -> None:
    assert _status(loading.http, "/live") == (200, {"live": True})
    assert _status(loading.http, "/ready") == (503, {"ready": False})
    assert _status(loading.http, "/health/ping") == (200, "pong")
    assert _status(loading.http, "/v2/health/live") == (200, {"live": True})
    assert _status(loading.http, "/v2/health/ready") == (503, {"ready": False})
    assert _status(loading.http, "/v2/models/SlowModel/ready")[0] == 503
    assert loading.get("/metrics", loading.metrics)[0] == 200

    status, body = _status(loading.http, "/api/v1.0/predictions", BODY)
    assert status == 503
    assert "model 'SlowModel' is loading" in body["status"]["info"]
    assert "retry when GET /ready answers 200" in body["status"]["info"]

    with grpc.insecure_channel(f"127.0.0.1:{loading.grpc}") as channel:
        assert (
            v2_grpc.GRPCInferenceServiceStub(channel)
            .ServerLive(v2.ServerLiveRequest(), timeout=10)
            .live
        )
        inference = v2_grpc.GRPCInferenceServiceStub(channel)
        assert not inference.ServerReady(v2.ServerReadyRequest(), timeout=10).ready
        assert not inference.ModelReady(v2.ModelReadyRequest(name="SlowModel"), timeout=10).ready
        request = pb.SeldonMessage()
        request.data.ndarray.extend([[1.0]])
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.ModelStub(channel).Predict(request, timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "model 'SlowModel' is loading" in (refused.value.details() or "")

        (tmp_path / "release").touch()
        loading.wait_ready()
        assert inference.ServerReady(v2.ServerReadyRequest(), timeout=10).ready
        reply = pb_grpc.ModelStub(channel).Predict(request, timeout=10)
        assert list(reply.data.ndarray[0]) == [2.0]

    assert loading.predict(BODY)["data"]["ndarray"] == [[2, 4]]
    assert _loaded_lines(loading.stderr()) == ["SlowModel"]  # logged before /ready said 200
    # the two lines docs/microservice.md shows, with this run's times and ports
    (logged,) = shown("docs/microservice.md", "tests/serving/test_slow_load.py")
    printed = loading.stderr().replace("SlowModel", "MyModel").splitlines()
    for line in logged.lines:
        assert any(same_shape(line, p) for p in printed), f"no {line!r}:\n{loading.stderr()}"


def test_microservice_exits_when_load_fails_after_listening(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "LateFailure",
        """
        import time


        class LateFailure:
            def load(self):
                time.sleep(0.5)
                raise RuntimeError("weights file is missing")

            def predict(self, X, features_names):
                return X
        """,
    )
    service = start(tmp_path, ["LateFailure"])
    try:
        code = service.wait()
        assert code == 1
        assert "LateFailure.load() raised RuntimeError: weights file is missing" in (
            service.stderr()
        )
    finally:
        service.kill()


def test_sigterm_while_loading_stops_at_once(loading: Service) -> None:
    """The load() thread does not keep a stopped server alive (it would wait 30 s here)."""
    loading.proc.send_signal(signal.SIGTERM)
    assert loading.wait(timeout=15) == 0, loading.stderr()


def test_workers_listen_at_once_and_are_ready_when_every_worker_loaded(tmp_path: Path) -> None:
    """SO_REUSEPORT workers: each answers "loading" until it loaded; ``/ready`` waits for
    all of them, whichever worker the kernel hands the probe to."""
    write_module(tmp_path, "SlowModel", SLOW_MODEL)
    service = start(tmp_path, ["SlowModel", "--workers", "2", "--log-level", "INFO"])
    try:
        _live_while_loading(tmp_path, service.http, service.proc, 2)
        for _ in range(6):  # fresh connections: any worker may answer
            assert _status(service.http, "/ready") == (503, {"ready": False})
            assert _status(service.http, "/api/v1.0/predictions", BODY)[0] == 503
        (tmp_path / "release").touch()
        service.wait_ready()
        for _ in range(6):
            assert _status(service.http, "/ready") == (200, {"ready": True})
            assert service.predict(BODY)["data"]["ndarray"] == [[2, 4]]
        # each worker logs its line before it marks itself loaded, which /ready waits for
        assert _loaded_lines(service.stderr()) == ["SlowModel", "SlowModel"]
    finally:
        service.kill()


# ---------------------------------------------------------------- infergraph serve


def _manifest(folder: Path) -> Path:
    container = {
        "name": "slow",
        "image": "example/slow:1.0",
        "env": [{"name": "MODEL_NAME", "value": "SlowModel"}],
    }
    spec = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "slow-graph"},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "componentSpecs": [{"spec": {"containers": [container]}}],
                    "graph": {"name": "slow", "type": "MODEL"},
                }
            ]
        },
    }
    path = folder / "graph.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    ("flags", "http_server"),
    [
        pytest.param([], "infergraph", id="in-process"),
        pytest.param([], "uvicorn", id="in-process-uvicorn"),
        pytest.param(["--processes"], "infergraph", id="processes"),
    ],
)
def test_serve_answers_probes_while_nodes_load(
    tmp_path: Path, flags: list[str], http_server: str, held_ports: HoldPorts
) -> None:
    write_module(tmp_path, "SlowModel", SLOW_MODEL)
    manifest = _manifest(tmp_path)
    http, grpc_port = held_ports(2)
    log = tmp_path / "serve.log"
    args = [str(manifest), "--path", str(tmp_path), "--host", "127.0.0.1", *flags]
    args += ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infergraph", "serve", *args],
            cwd=tmp_path, env=clean_env({"INFERGRAPH_HTTP_SERVER": http_server}),
            stdin=subprocess.DEVNULL,
            stdout=err, stderr=err, start_new_session=True,
        )  # fmt: skip
    try:
        _live_while_loading(tmp_path, http, proc, 1)
        assert _status(http, "/live") == (200, {"live": True})
        assert _status(http, "/ready") == (503, {"ready": False})
        assert _status(http, "/v2/health/ready") == (503, {"ready": False})
        status, body = _status(http, "/api/v1.0/predictions", BODY)
        assert status == 503
        assert "the graph is loading: node 'slow' not loaded yet" in body["status"]["info"]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            inference = v2_grpc.GRPCInferenceServiceStub(channel)
            assert not inference.ServerReady(v2.ServerReadyRequest(), timeout=10).ready

            (tmp_path / "release").touch()
            poll(lambda: _status(http, "/ready")[0] == 200, timeout=60, what="/ready 200")
            assert inference.ServerReady(v2.ServerReadyRequest(), timeout=10).ready
        status, body = _status(http, "/api/v1.0/predictions", BODY)
        assert status == 200, body
        assert body["data"]["ndarray"] == [[2.0, 4.0]]
        text = log.read_text(errors="replace")
        assert _loaded_lines(text) == ["slow"], text  # with --processes, by the node's process
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
