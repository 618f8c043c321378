"""``infergraph serve --processes``: each node container its own processes, called over gRPC.

What a user relies on (docs/processes.md): the graph answers as it does in one process (over
REST and gRPC, with Seldon's meta), feedback reaches the models in their processes, replicas
share the calls, a node process that dies is restarted on the same ports, a node that cannot
start stops everything with an error naming it, and SIGTERM leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import yaml

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import (
    BadRequest,
    DeadlineExceeded,
    InferGraphError,
    MicroserviceError,
    NotFound,
    NotImplementedByComponent,
    NotReady,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.graph.nodes import GrpcNodeClient, SeldonProtoCodec, V2GrpcCodec
from infergraph.graph.nodes.codecs import GrpcCodec
from infergraph.graph.nodes.wire_errors import error_from_rpc
from infergraph.graph.plan import compile_deployment
from infergraph.graph.spec import parse_resource
from infergraph.observability.component_metrics import REQUESTS_METRIC
from infergraph.protocol.message import DataKind, Feedback, Message, Meta
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.settings import ComponentSettings
from infergraph.testing import serve_grpc
from infergraph.transport.grpc.component import build_grpc_server
from tests.helpers.doc_blocks import same_shape, shown, wildcard
from tests.helpers.ports import HeldPorts, HoldPorts
from tests.helpers.procs import (
    Sample,
    clean_env,
    http_request,
    metric_sum,
    parse_metrics,
    poll,
    read_pids,
)

START_TIMEOUT = 30.0
MiB = 1024 * 1024
# what docs/processes.md shows: a node's ports, a start-up failure, a restarting node's answer
DOCS_SHOW = shown("docs/processes.md", "tests/serving/test_processes.py")

NODES = """
import os
import time
from pathlib import Path

import numpy as np

OUT = Path(os.environ["OUT_DIR"])
UNIT = os.environ["PREDICTIVE_UNIT_ID"]


def _note(kind, value):
    with (OUT / f"{kind}-{UNIT}").open("a") as fh:
        fh.write(f"{value}\\n")


class Doubler:
    def load(self):
        _note("pids", os.getpid())

    def transform_input(self, X, names, meta=None):
        return np.asarray(X) * 2


class PidModel:
    def __init__(self, offset=0.0):
        self.offset = offset

    def load(self):
        while (OUT / "hold").exists():  # a test keeps a restarted node in start-up
            time.sleep(0.05)
        _note("pids", os.getpid())

    def predict(self, X, names, meta=None):
        return [[float(np.sum(X)) + self.offset, os.getpid()]]

    def send_feedback(self, features, names, reward, truth, routing=None):
        _note("rewards", reward)
        return []
"""


def _container(name: str, model: str, out: Path) -> dict[str, Any]:
    env = [{"name": "MODEL_NAME", "value": model}, {"name": "OUT_DIR", "value": str(out)}]
    return {"name": name, "image": f"example/{name}:1.0", "env": env}


def _offset(value: float) -> list[dict[str, str]]:
    return [{"name": "offset", "value": str(value), "type": "FLOAT"}]


def chain_yaml(out: Path, model: str = "nodes.PidModel") -> dict[str, Any]:
    """TRANSFORMER ``double`` -> MODEL ``model`` (offset 100)."""
    containers = [_container("double", "nodes.Doubler", out), _container("model", model, out)]
    graph = {
        "name": "double",
        "type": "TRANSFORMER",
        "children": [{"name": "model", "type": "MODEL", "parameters": _offset(100)}],
    }
    return _deployment("chain", [{"spec": {"containers": containers}}], graph)


def router_yaml(out: Path) -> dict[str, Any]:
    """A builtin EPSILON_GREEDY router (always branch 0) over two models, 2 replicas each."""
    containers = [_container(n, "nodes.PidModel", out) for n in ("model-a", "model-b")]
    params = {"n_branches": ("2", "INT"), "epsilon": ("0.0", "FLOAT"), "best_branch": ("0", "INT")}
    graph = {
        "name": "router",
        "type": "ROUTER",
        "implementation": "EPSILON_GREEDY",
        "parameters": [{"name": k, "value": v, "type": t} for k, (v, t) in params.items()],
        "children": [
            {"name": "model-a", "type": "MODEL", "parameters": _offset(0)},
            {"name": "model-b", "type": "MODEL", "parameters": _offset(1000)},
        ],
    }
    return _deployment("bandit", [{"replicas": 2, "spec": {"containers": containers}}], graph)


def _deployment(name: str, components: list[Any], graph: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {"predictors": [{"name": "default", "componentSpecs": components, "graph": graph}]},
    }


@dataclass
class Graph:
    proc: subprocess.Popen[bytes]
    http: int
    grpc: int
    folder: Path
    log: Path
    held: HeldPorts
    """Its REST and gRPC ports, held until :func:`stop`."""

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self, node: str) -> list[int]:
        return read_pids(self.folder / f"pids-{node}")

    def predict(self, rows: Any = ((1, 2),)) -> tuple[int, dict[str, Any]]:
        body = {"data": {"ndarray": [list(r) for r in rows]}}
        status, _, data = http_request(self.http, "POST", "/api/v1.0/predictions", body)
        return status, json.loads(data)

    def metrics(self) -> str:
        status, _, data = http_request(self.http, "GET", "/metrics")
        assert status == 200
        return data.decode()

    def feedback(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, _, data = http_request(self.http, "POST", "/api/v1.0/feedback", body)
        return status, json.loads(data)

    def node_metrics(self) -> list[Sample]:
        """Every node process's own metrics (its metrics port, from its start-up line)."""
        ports = re.findall(r" \| .* serving .*metrics on (\d+)/metrics", self.stderr())
        samples = []
        for port in sorted(set(ports)):
            status, _, data = http_request(int(port), "GET", "/metrics")
            assert status == 200
            samples += parse_metrics(data.decode())
        return samples


def read_floats(path: Path) -> list[float]:
    try:
        return [float(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []


def _leftovers(folder: Path) -> list[int]:
    """Live processes serving ``folder`` (their command line names it as ``--path``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if str(folder).encode() in cmdline and state != "Z":
                    found.append(int(entry.name))
    return found


def start(folder: Path, spec: dict[str, Any]) -> Graph:
    (folder / "nodes.py").write_text(NODES)
    (folder / "graph.yaml").write_text(yaml.safe_dump(spec))
    held = HeldPorts(2)
    http, grpc_port = held.ports
    log = folder / f"serve-{time.monotonic_ns()}.log"
    args = ["serve", "graph.yaml", "--processes", "--path", str(folder)]
    args += ["--http-port", str(http), "--grpc-port", str(grpc_port), "--host", "127.0.0.1"]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infergraph", *args],
            cwd=folder,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    return Graph(proc, http, grpc_port, folder, log, held)


def wait_ready(graph: Graph) -> None:
    def ready() -> bool:
        assert graph.proc.poll() is None, f"exited {graph.proc.returncode}:\n{graph.stderr()}"
        return http_request(graph.http, "GET", "/ready")[0] == 200

    poll(ready, timeout=START_TIMEOUT, what=f"ready; stderr:\n{graph.stderr()[-3000:]}")


def stop(graph: Graph) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(graph.proc.pid, signal.SIGKILL)
    graph.proc.wait(10)
    for pid in _leftovers(graph.folder):  # none, unless a test failed half-way
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    graph.held.close()


@contextlib.contextmanager
def serving(folder: Path, spec: dict[str, Any]) -> Iterator[Graph]:
    graph = start(folder, spec)
    try:
        wait_ready(graph)
        yield graph
    finally:
        stop(graph)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    folder = tmp_path_factory.mktemp("chain")
    with serving(folder, chain_yaml(folder)) as graph:
        yield graph


@pytest.fixture(scope="module")
def bandit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    folder = tmp_path_factory.mktemp("bandit")
    with serving(folder, router_yaml(folder)) as graph:
        yield graph


@pytest.mark.slow
def test_each_node_container_is_its_own_process(chain: Graph) -> None:
    double, model = chain.pids("double"), chain.pids("model")
    assert len(double) == 1 and len(model) == 1
    assert len({chain.proc.pid, *double, *model}) == 3
    # the lines docs/processes.md shows for a node's ports, with this run's pid and ports
    printed = chain.stderr().splitlines()
    for line in DOCS_SHOW[0].lines:
        assert any(same_shape(line, p) for p in printed), f"no {line!r}:\n{chain.stderr()}"


@pytest.mark.slow
def test_chain_over_rest(chain: Graph) -> None:
    status, body = chain.predict([[1, 2]])
    assert status == 200, body
    assert body["data"]["ndarray"] == [[106.0, float(chain.pids("model")[0])]]  # (1+2)*2 + 100
    meta = body["meta"]
    assert meta["requestPath"] == {"double": "example/double:1.0", "model": "example/model:1.0"}
    assert meta["routing"] == {"double": -1, "model": -1}
    assert meta["puid"]


@pytest.mark.slow
def test_chain_over_grpc(chain: Graph) -> None:
    request = pb.SeldonMessage()
    request.data.ndarray.extend([[1.0, 2.0]])
    with grpc.insecure_channel(f"127.0.0.1:{chain.grpc}") as channel:
        answer = pb_grpc.SeldonStub(channel).Predict(request, timeout=10)
    assert answer.data.ndarray[0][0] == 106.0
    assert dict(answer.meta.requestPath) == {
        "double": "example/double:1.0",
        "model": "example/model:1.0",
    }


@pytest.mark.slow
def test_graph_metadata_comes_from_the_node_processes(chain: Graph) -> None:
    status, _, data = http_request(chain.http, "GET", "/api/v1.0/metadata")
    assert status == 200, data
    assert json.loads(data)["models"]["model"]["name"] == "example/model"


@pytest.mark.slow
@pytest.mark.parametrize("transport", [None, "grpc", "rest"])
def test_nodes_are_called_over_the_deployment_transport(
    tmp_path: Path, transport: str | None
) -> None:
    spec = chain_yaml(tmp_path)
    if transport is not None:
        spec["spec"]["transport"] = transport
    with serving(tmp_path, spec) as graph:
        status, body = graph.predict([[1, 2]])
        assert status == 200, body
        calls = [
            s
            for s in parse_metrics(graph.metrics())
            if s.name == "seldon_api_executor_client_requests_seconds_count"
        ]
        assert {s.labels["model_name"] for s in calls} == {"double", "model"}
        assert {s.labels["method"] for s in calls} == {transport or "rest"}  # as in Seldon


@pytest.mark.slow
def test_replicas_are_processes_and_share_the_calls(bandit: Graph) -> None:
    replicas = set(bandit.pids("model-a"))
    assert len(replicas) == 2 and len(bandit.pids("model-b")) == 2
    answered = []
    for _ in range(6):
        status, body = bandit.predict([[1, 2]])
        assert status == 200, body
        assert body["meta"]["routing"] == {"router": 0, "model-a": -1}
        value, pid = body["data"]["ndarray"][0]
        assert value == 3.0  # model-a: offset 0
        answered.append(int(pid))
    assert set(answered) == replicas
    assert all(a != b for a, b in itertools.pairwise(answered))  # round-robin


@pytest.mark.slow
def test_feedback_reaches_the_model_processes(bandit: Graph) -> None:
    status, response = bandit.predict([[1, 2]])
    assert status == 200
    feedback = {"request": {"data": {"ndarray": [[1, 2]]}}, "response": response, "reward": 1}
    status, _, data = http_request(bandit.http, "POST", "/api/v1.0/feedback", feedback)
    assert status == 200, data
    rewards = poll(lambda: read_floats(bandit.folder / "rewards-model-a"), what="reward")
    assert rewards == [1.0]
    assert not (bandit.folder / "rewards-model-b").exists()


FEEDBACK = ("seldon_api_model_feedback_total", "seldon_api_model_feedback_reward_total")


def feedback_counts(graph: Graph) -> dict[tuple[str, str], float]:
    """The feedback counter and reward sum of every node: the router's (in the orchestrator's
    /prometheus) and each model's (in its own process's metrics)."""
    _, _, data = http_request(graph.http, "GET", "/prometheus")
    samples = parse_metrics(data.decode()) + graph.node_metrics()
    nodes = ("router", "model-a", "model-b")
    return {(n, m): metric_sum(samples, m, model_name=n) for n in nodes for m in FEEDBACK}


@pytest.mark.slow
def test_a_feedback_the_bandit_refuses_changes_no_metric_and_no_state(bandit: Graph) -> None:
    status, response = bandit.predict([[1, 2]])
    assert status == 200, response
    rewards = {n: read_floats(bandit.folder / f"rewards-{n}") for n in ("model-a", "model-b")}
    before = feedback_counts(bandit)
    request = {"data": {"ndarray": [[1, 2]]}}
    without_routing = {**response, "meta": {"puid": "not-a-recorded-id"}}
    refused = [
        {"request": request, "reward": 1},  # no response, so no meta.routing
        {"request": request, "response": {"data": {"ndarray": [[1]]}}, "reward": 1},
        {"request": request, "response": without_routing, "reward": 1},  # an unknown id: 404
        {"request": request, "response": response, "reward": 2},  # a bandit takes 0..1
    ]
    for body in refused:
        status, answer = bandit.feedback(body)
        assert status in (400, 404), answer
        assert answer["status"]["reason"] == "MICROSERVICE_BAD_DATA", answer
    assert feedback_counts(bandit) == before
    assert {n: read_floats(bandit.folder / f"rewards-{n}") for n in rewards} == rewards

    status, answer = bandit.feedback({"request": request, "response": response, "reward": 1})
    assert status == 200, answer
    after = feedback_counts(bandit)
    for node in ("router", "model-a"):  # the router and the branch it chose
        assert after[(node, FEEDBACK[0])] == before[(node, FEEDBACK[0])] + 1
        assert after[(node, FEEDBACK[1])] == before[(node, FEEDBACK[1])] + 1
    assert after[("model-b", FEEDBACK[0])] == before[("model-b", FEEDBACK[0])]


@pytest.mark.slow
def test_feedback_over_grpc(bandit: Graph) -> None:
    request = pb.SeldonMessage()
    request.data.ndarray.extend([[1.0, 2.0]])
    with grpc.insecure_channel(f"127.0.0.1:{bandit.grpc}") as channel:
        stub = pb_grpc.SeldonStub(channel)
        response = stub.Predict(request, timeout=10)
        stub.SendFeedback(pb.Feedback(request=request, response=response, reward=0.5), timeout=10)
    assert 0.5 in poll(
        lambda: [r for r in read_floats(bandit.folder / "rewards-model-a") if r == 0.5],
        what="reward 0.5",
    )


@pytest.mark.slow
def test_killed_node_is_restarted_and_sigterm_stops_everything(tmp_path: Path) -> None:
    graph = start(tmp_path, chain_yaml(tmp_path))
    try:
        wait_ready(graph)
        assert graph.predict()[0] == 200
        (victim,) = graph.pids("model")
        os.kill(victim, signal.SIGKILL)

        def answered_by_a_new_process() -> bool:
            status, body = graph.predict()
            return status == 200 and int(body["data"]["ndarray"][0][1]) != victim

        poll(answered_by_a_new_process, timeout=20, what="an answer from the restarted node")
        assert len(graph.pids("model")) == 2
        samples = parse_metrics(graph.metrics())
        assert metric_sum(samples, "infergraph_node_restarts_total", node="model") == 1
        assert metric_sum(samples, "infergraph_node_restarts_total", node="double") == 0

        graph.proc.send_signal(signal.SIGTERM)
        assert graph.proc.wait(30) == 0, graph.stderr()
        assert _leftovers(tmp_path) == []
    finally:
        stop(graph)


RESTARTING = DOCS_SHOW[2].text.strip()
assert "node 'model' is restarting: its process was killed by signal 9" in RESTARTING


@pytest.mark.slow
def test_calls_while_a_killed_node_restarts_say_so_then_succeed(tmp_path: Path) -> None:
    with serving(tmp_path, chain_yaml(tmp_path)) as graph:
        (victim,) = graph.pids("model")
        (tmp_path / "hold").touch()  # the new process waits in load() until it is removed
        os.kill(victim, signal.SIGKILL)

        def restarts() -> float:
            samples = parse_metrics(graph.metrics())
            return metric_sum(samples, "infergraph_node_restarts_total", node="model")

        poll(lambda: restarts() == 1, timeout=20, what="the supervisor to see the node die")
        status, body = graph.predict()
        assert status == 503, body
        assert body["status"] == {
            "status": 1,
            "info": RESTARTING,
            "code": -1,
            "reason": "MICROSERVICE_INTERNAL_ERROR",
        }
        feedback = {"request": {"data": {"ndarray": [[1, 2]]}}, "reward": 1}
        status, body = graph.feedback(feedback)
        assert (status, body["status"]["info"]) == (503, RESTARTING)
        request = pb.SeldonMessage()
        request.data.ndarray.extend([[1.0, 2.0]])
        with (
            grpc.insecure_channel(f"127.0.0.1:{graph.grpc}") as channel,
            pytest.raises(grpc.RpcError) as info,
        ):
            pb_grpc.SeldonStub(channel).Predict(request, timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert info.value.details() == RESTARTING

        (tmp_path / "hold").unlink()
        poll(lambda: graph.predict()[0] == 200, timeout=20, what="the restarted node to answer")
        status, body = graph.predict()
        assert status == 200 and int(body["data"]["ndarray"][0][1]) != victim, body
        assert "still loading" not in graph.stderr()


@pytest.mark.slow
def test_nodes_stop_when_the_orchestrator_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path, chain_yaml(tmp_path)) as graph:
        assert len(set(_leftovers(tmp_path)) - {graph.proc.pid}) == 2  # the two nodes
        graph.proc.kill()  # SIGKILL: no chance to stop its nodes itself
        graph.proc.wait(10)
        poll(lambda: not _leftovers(tmp_path), timeout=20, what="the nodes to stop")


@pytest.mark.slow
def test_node_that_cannot_start_stops_everything(tmp_path: Path) -> None:
    graph = start(tmp_path, chain_yaml(tmp_path, model="missing_module.Model"))
    try:
        code = graph.proc.wait(START_TIMEOUT)
        stderr = graph.stderr()
        assert code != 0, stderr
        assert "node 'model'" in stderr and "during start-up" in stderr, stderr
        assert "missing_module" in stderr
        assert any(wildcard(DOCS_SHOW[1].text.strip()).fullmatch(p) for p in stderr.splitlines())
        assert _leftovers(tmp_path) == []
    finally:
        stop(graph)


# ---------------------------------------------------------------- GrpcNodeClient


class Everything:
    """A node with every method; ``tags`` name the replica that answered."""

    def __init__(self, replica: str = "a") -> None:
        self.replica = replica
        self.rewards: list[tuple[float, Any]] = []

    def init_metadata(self) -> dict[str, Any]:
        inputs = [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}]
        outputs = [{"name": "y", "datatype": "FP64", "shape": [1, 2]}]
        return {"name": "everything", "versions": ["v1"], "inputs": inputs, "outputs": outputs}

    def tags(self) -> dict[str, Any]:
        return {"replica": self.replica}

    def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
        if np.asarray(X).size and np.asarray(X).flat[0] == -1:
            raise MicroserviceError("negative input", status_code=400)
        if np.asarray(X).size and np.asarray(X).flat[0] == -2:
            raise ValueError("boom")
        return np.asarray(X) + 1

    def transform_input(self, X: Any, names: Any) -> Any:
        return np.asarray(X) * 2

    def transform_output(self, X: Any, names: Any) -> Any:
        return np.asarray(X) * 3

    def route(self, X: Any, names: Any) -> int:
        return 1

    def aggregate(self, Xs: Any, names: Any) -> Any:
        return np.sum([np.asarray(x) for x in Xs], axis=0)

    def send_feedback(
        self, X: Any, names: Any, reward: float, truth: Any, routing: Any = None
    ) -> Any:
        self.rewards.append((reward, routing))
        return []


class Slow:
    async def predict(self, X: Any, names: Any) -> Any:
        await asyncio.sleep(2)
        return X


def rows(*values: float, puid: str = "p1") -> Message:
    return Message(DataKind.NDARRAY, np.array([list(values)]), [], Meta(puid=puid))


@contextlib.asynccontextmanager
async def client_for(*addresses: str, **options: Any) -> AsyncIterator[GrpcNodeClient]:
    client = GrpcNodeClient(
        "node", addresses, max_message_size=options.pop("limit", MiB), **options
    )
    try:
        yield client
    finally:
        await client.aclose()


async def test_client_calls_every_seldon_method() -> None:
    user = Everything()
    with serve_grpc(user, unit_id="node", unit_image="ex/node:2") as address:
        async with client_for(address) as client:
            assert not client.ready
            await client.load()
            assert client.ready
            answer = await client.predict(rows(1, 2))
            assert answer.kind is DataKind.NDARRAY and answer.raw is None
            assert answer.data.tolist() == [[2.0, 3.0]]
            assert answer.meta.puid == "p1" and answer.meta.tags == {"replica": "a"}
            assert answer.meta.request_path == {"node": "ex/node:2"}
            assert (await client.transform_input(rows(1, 2))).data.tolist() == [[2.0, 4.0]]
            assert (await client.transform_output(rows(1, 2))).data.tolist() == [[3.0, 6.0]]
            assert (await client.route(rows(1, 2))).data.tolist() == [[1.0]]
            summed = await client.aggregate([rows(1, 2), rows(10, 20)])
            assert summed.data.tolist() == [[11.0, 22.0]]
            response = Message(DataKind.NDARRAY, [[2.0]], [], Meta(routing={"node": 1}))
            feedback = Feedback(rows(1, 2), response, 0.5, None)
            assert (await client.send_feedback(feedback)).kind is DataKind.NDARRAY
            assert user.rewards == [(0.5, 1)]
            meta = client.metadata()
            assert meta["name"] == "everything" and meta["versions"] == ["v1"]
            assert meta["inputs"] == [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}]
            assert meta["outputs"] == [{"name": "y", "datatype": "FP64", "shape": [1, 2]}]


async def test_client_sends_the_fields_not_a_stale_raw_message() -> None:
    with serve_grpc(Everything(), unit_id="node") as address:
        async with client_for(address) as client:
            await client.load()
            stale = pb.SeldonMessage(strData="stale")
            message = rows(1, 2, puid="new")
            message.raw = stale
            answer = await client.predict(message)
            assert answer.data.tolist() == [[2.0, 3.0]] and answer.meta.puid == "new"


@pytest.mark.parametrize(
    ("values", "error", "words"),
    [((-1.0,), BadRequest, "negative input"), ((-2.0,), UserCodeError, "boom")],
)
async def test_client_maps_remote_errors(
    values: tuple[float, ...], error: type[InferGraphError], words: str
) -> None:
    with serve_grpc(Everything(), unit_id="node") as address:
        async with client_for(address) as client:
            await client.load()
            with pytest.raises(error) as info:
                await client.predict(rows(*values))
            assert type(info.value) is error and words in str(info.value)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, BadRequest),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.UNAVAILABLE, NotReady),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, PayloadTooLarge),
        (grpc.StatusCode.UNIMPLEMENTED, NotImplementedByComponent),
        (grpc.StatusCode.INTERNAL, UserCodeError),
        (grpc.StatusCode.UNKNOWN, UserCodeError),
    ],
)
def test_status_codes_map_to_errors(code: grpc.StatusCode, error: type[InferGraphError]) -> None:
    mapped = error_from_rpc(grpc.aio.AioRpcError(code, None, None, details="the remote's words"))
    assert type(mapped) is error and str(mapped) == "the remote's words"


async def test_client_timeout_and_message_limit() -> None:
    with serve_grpc(Slow(), unit_id="node") as address:
        async with client_for(address, timeout=0.2) as client:
            await client.load()
            with pytest.raises(DeadlineExceeded):
                await client.predict(rows(1))
    with serve_grpc(Everything(), unit_id="node", max_message_size=64 * MiB) as address:
        async with client_for(address, limit=1024) as client:
            await client.load()
            with pytest.raises(PayloadTooLarge):
                await client.predict(rows(*range(1000)))


async def test_load_fails_when_nothing_answers(held_ports: HoldPorts) -> None:
    (port,) = held_ports(1)
    async with client_for(f"127.0.0.1:{port}", load_timeout=0.3) as client:
        with pytest.raises(NotReady, match="no answer"):
            await client.load()
        assert not client.ready
        with pytest.raises(NotReady):
            await client.predict(rows(1))


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` without blocking the event loop (the client's probes run on it)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class LoadsUntilOpened(Everything):
    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()

    async def load(self) -> None:
        await self.opened.wait()


async def test_load_waits_for_a_node_that_listens_while_it_loads() -> None:
    """A node process listens from the start and answers UNAVAILABLE until its load() has
    run: the client asks again, as it would after a refused connection."""
    user = LoadsUntilOpened()
    node = ComponentDataPlane(user, ComponentSettings(unit_id="node"))
    server = build_grpc_server(node, max_message_size=MiB)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    loading = node.start_loading()
    try:
        async with client_for(f"127.0.0.1:{port}", load_timeout=30) as client:
            waiting = asyncio.create_task(client.load())

            def refused() -> bool:
                return any(
                    dict(labels)["code"] == "UNAVAILABLE"
                    for name, labels in node.registry.histograms
                    if name == REQUESTS_METRIC
                )

            await eventually(refused, "the loading node to refuse the client's probe")
            assert not waiting.done() and not client.ready
            user.opened.set()
            await asyncio.wait_for(waiting, 10)
            assert client.ready
            assert (await client.predict(rows(1, 2))).data.tolist() == [[2, 3]]
    finally:
        user.opened.set()
        await loading
        await server.stop(0)
        node.close()


async def test_replicas_take_turns_and_one_marked_down_rejoins_once_it_answers() -> None:
    with (
        serve_grpc(Everything("a"), unit_id="node") as first,
        serve_grpc(Everything("b"), unit_id="node") as second,
    ):
        async with client_for(first, second, probe_interval=0.05) as client:
            await client.load()

            async def replicas(n: int) -> list[str]:
                return [(await client.predict(rows(1))).meta.tags["replica"] for _ in range(n)]

            assert await replicas(4) == ["a", "b", "a", "b"]
            client.mark_down(second)  # as the supervisor does when a process dies
            assert client.ready and not client.replica_up(second)
            await eventually(lambda: client.replica_up(second), "the probe")
            assert sorted(await replicas(2)) == ["a", "b"]
    assert not client.ready


@pytest.mark.parametrize(
    "codec",
    [
        pytest.param(SeldonProtoCodec, id="seldon"),
        pytest.param(lambda: V2GrpcCodec("node"), id="v2"),  # V2 hops: retried the same
    ],
)
async def test_a_replica_that_stops_answering_is_retried_elsewhere_except_feedback(
    codec: Callable[[], GrpcCodec],
) -> None:
    survivor = Everything("a")
    with serve_grpc(survivor, unit_id="node") as first:
        with serve_grpc(Everything("b"), unit_id="node") as second:
            clients = [
                GrpcNodeClient("node", [first, second], max_message_size=MiB, codec=codec())
                for _ in range(2)
            ]
            for client in clients:
                await client.load()
                assert (await client.predict(rows(1))).meta.tags["replica"] == "a"
        # "b" is gone, and it is its turn on both clients
        retried, feedback = clients
        try:
            answers = [(await retried.predict(rows(1))).meta.tags["replica"] for _ in range(3)]
            assert answers == ["a", "a", "a"]
            assert retried.ready and not retried.replica_up(second)
            # a reward must never be counted twice, so feedback is not sent elsewhere
            with pytest.raises(NotReady):
                await feedback.send_feedback(Feedback(rows(1), None, 1.0, None))
            assert survivor.rewards == []
        finally:
            for client in clients:
                await client.aclose()


async def test_not_ready_says_loading_at_start_up_and_restarting_once_marked_down() -> None:
    deployment = parse_resource(_deployment("one", [], {"name": "node", "type": "MODEL"}))
    with contextlib.ExitStack() as server:
        address = server.enter_context(serve_grpc(Everything(), unit_id="node"))
        async with client_for(address, probe_interval=0.05) as client:
            plan = compile_deployment(deployment, lambda d, p, n: (client, "ex/node:1"))
            dataplane = GraphDataPlane(plan)
            ctx = dataplane.context({})
            with pytest.raises(NotReady) as info:
                await dataplane.predict(rows(1), ctx)
            assert str(info.value) == (
                "the graph is loading: node 'node' not loaded yet; retry when GET /ready "
                "answers 200"
            )
            with pytest.raises(NotReady, match="'node' is still loading: none of its replicas"):
                await client.predict(rows(1))

            await dataplane.load()
            assert (await dataplane.predict(rows(1), ctx))[0].data.tolist() == [[2.0]]
            reason = "is restarting: its process was killed by signal 9 (SIGKILL)"
            client.mark_down(address, reason)  # as the supervisor does when a process dies
            restarting = f"node 'node' {reason}; retry shortly"
            with pytest.raises(NotReady) as info:
                await dataplane.predict(rows(1), ctx)
            assert (str(info.value), info.value.node) == (restarting, "node")
            with pytest.raises(NotReady) as info:
                await client.send_feedback(Feedback(rows(1), None, 1.0, None))
            assert str(info.value) == restarting
            await eventually(lambda: client.ready, "the probe")  # it answers again
            assert client.down_reason() is None
            assert (await dataplane.predict(rows(1), ctx))[0].data.tolist() == [[2.0]]

            server.close()  # gone, unannounced: the call that finds out says so, then the rest
            with pytest.raises(NotReady):
                await client.predict(rows(1))
            reason = client.down_reason() or ""
            assert reason.startswith("is unreachable: "), reason
            with pytest.raises(NotReady) as info:
                await dataplane.predict(rows(1), ctx)
            assert str(info.value) == f"node 'node' {reason}; retry shortly"


def test_node_ports_are_never_the_orchestrators_own() -> None:
    """The nodes' ports are handed out before the orchestrator binds its own, so those must be
    kept out: here one port in seven of the kernel's range is the orchestrator's."""
    from infergraph.serving.processes import _take_port

    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    own = frozenset(range(low, high - 20, 7))
    held: list[Any] = []
    try:
        taken = [_take_port(held, own) for _ in range(500)]
        assert not own & set(taken), taken
        assert len(set(taken)) == len(taken), "two nodes were given one port"
    finally:
        for sock in held:
            sock.close()
