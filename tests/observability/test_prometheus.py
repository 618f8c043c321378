"""A real Prometheus scrapes ``infergraph serve``; the graph's series are read back through
its query API, and every query of the Grafana dashboard (deploy/grafana/) finds series.

The graph: a ``scaler`` TRANSFORMER, an EPSILON_GREEDY ``router`` over models ``a`` (10) and
``b`` (20, 30 ms slower), and a shadow predictor whose ``mirror`` always answers 10, so the
shadow agrees exactly with the requests routed to ``a``. Each response's ``meta.routing``
says where the router sent it; feedback rewards ``b`` and not ``a``. What Prometheus reports
(counts per node, the router's split, the per-arm feedback and rewards, shadow agreement,
Seldon's executor series) must equal what the test sent and what the responses said.

The graph is served twice: in one process, and with ``--processes``, where the same series
come from the orchestrator and Prometheus also scrapes every node process, which it finds
through the orchestrator's HTTP service discovery (``/metrics/targets``), as docs/metrics.md
shows: each process's own series (the calls it served, the rewards it was sent) reach it
labelled with the process's ``node``.

Prometheus is Debian's ``prometheus`` (scripts/install-services.sh installs it); without it
the test is skipped, unless $CI is set.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import procs
from tests.helpers.doc_blocks import shown
from tests.helpers.ports import HeldPorts, released_ports

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "infergraph.json"
INSTALL = "bash scripts/install-services.sh"
NAMESPACE = "shop"  # what a Kubernetes scrape config's relabelling adds to every series
DEPLOYMENT = "shop-bandit"
PREDICTIONS = 40
OUTPUTS = {0: 10.0, 1: 20.0}  # a, b
REWARDS = {0: 0.0, 1: 1.0}  # b is the better arm
READY_TIMEOUT = 60.0
MODULE = "shop_models"

MODELS = """
import time


class Scaler:
    def transform_input(self, X, names, meta=None):
        return X


class A:
    def predict(self, X, names, meta=None):
        return [[10.0]]


class B:
    def predict(self, X, names, meta=None):
        time.sleep(0.03)
        return [[20.0]]


class Mirror:
    def predict(self, X, names, meta=None):
        return [[10.0]]
"""

MANIFEST = f"""\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: {DEPLOYMENT}
  namespace: {NAMESPACE}
spec:
  predictors:
    - name: main
      traffic: 100
      componentSpecs:
        - spec:
            containers:
              - name: scaler
                image: example.com/scaler:1
                env: [{{name: MODEL_NAME, value: {MODULE}.Scaler}}]
              - name: a
                image: example.com/a:1
                env: [{{name: MODEL_NAME, value: {MODULE}.A}}]
              - name: b
                image: example.com/b:1
                env: [{{name: MODEL_NAME, value: {MODULE}.B}}]
      graph:
        name: scaler
        type: TRANSFORMER
        children:
          - name: router
            implementation: EPSILON_GREEDY
            parameters:
              - {{name: n_branches, value: "2", type: INT}}
              - {{name: epsilon, value: "0.5", type: FLOAT}}
              - {{name: best_branch, value: "0", type: INT}}
              - {{name: seed, value: "3", type: INT}}
            children:
              - {{name: a, type: MODEL}}
              - {{name: b, type: MODEL}}
    - name: shadow
      shadow: true
      componentSpecs:
        - spec:
            containers:
              - name: mirror
                image: example.com/mirror:1
                env: [{{name: MODEL_NAME, value: {MODULE}.Mirror}}]
      graph:
        name: mirror
        type: MODEL
"""


# ---------------------------------------------------------------- processes


def _prometheus() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        message = f"prometheus is not installed; to run this test: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Prometheus:
    """A query client for the test's Prometheus server."""

    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/query", params={"query": expr})
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def values(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        """The instant vector of ``expr``, keyed by the values of ``labels``."""
        return {
            tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1])
            for s in self.query(expr)
        }

    def ready(self) -> bool:
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:  # not listening yet
            return False

    def label_values(self, label: str, match: str) -> list[str]:
        answer = self.http.get(f"/api/v1/label/{label}/values", params={"match[]": match})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])


def _scrape_config(http_port: int, processes: bool) -> str:
    """Prometheus's configuration: scraped every second, every series labelled with the
    namespace; with ``--processes``, the jobs docs/metrics.md shows, as a user copies them."""
    (block,) = shown("docs/metrics.md", "tests/observability/test_prometheus.py")
    jobs = yaml.safe_load(block.text.replace("8000", str(http_port)))["scrape_configs"]
    if not processes:
        jobs = jobs[:1]
    jobs[0]["static_configs"][0]["labels"] = {"namespace": NAMESPACE}
    for job in jobs[1:]:
        job["relabel_configs"] = [{"target_label": "namespace", "replacement": NAMESPACE}]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}}
    return yaml.safe_dump({**config, "scrape_configs": jobs})


def _wait(fn: Any, what: str, timeout: float = READY_TIMEOUT) -> Any:
    """Poll (Prometheus scrapes every second) until ``fn`` is truthy."""
    return procs.poll(fn, timeout=timeout, interval=0.2, what=what)


NODES = {"scaler", "a", "b", "mirror"}
"""The nodes that run as processes with ``--processes`` (the router is a built-in)."""


@pytest.fixture(
    scope="module",
    params=[pytest.param(False, id="one-process"), pytest.param(True, id="processes")],
)
def processes(request: pytest.FixtureRequest) -> bool:
    """Whether the graph is served with ``--processes``: the orchestrator's series must be
    the same, and Prometheus also scrapes each node process it discovers."""
    return bool(request.param)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, processes: bool
) -> Iterator[tuple[procs.Service, Prometheus]]:
    """``infergraph serve`` on the graph, and a Prometheus scraping it every second (and,
    with ``--processes``, every node process, found through ``/metrics/targets``)."""
    binary = _prometheus()
    folder = tmp_path_factory.mktemp("prometheus")
    procs.write_module(folder, MODULE, MODELS)
    manifest = folder / "deployment.yaml"
    manifest.write_text(MANIFEST)
    held = HeldPorts(2)
    http_port, grpc_port = held.ports
    (prom_port,) = released_ports(1)  # Prometheus binds without SO_REUSEPORT
    logs = folder / "logs"
    logs.mkdir()
    args = ["--path", str(folder), "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    args += ["--processes"] if processes else []
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        serve = subprocess.Popen(
            [procs.PYTHON, "-m", "infergraph", "serve", str(manifest), *args],
            cwd=folder,
            env=procs.clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    server = procs.Service(serve, http_port, grpc_port, http_port, logs, held=held)
    config = folder / "prometheus.yml"
    config.write_text(_scrape_config(http_port, processes))
    with (logs / "prometheus.txt").open("wb") as prom_log:
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=prom_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prometheus = Prometheus(prom_port)
    try:
        server.wait_ready(READY_TIMEOUT)

        def prometheus_ready() -> bool:
            if prom.poll() is not None:
                log = (logs / "prometheus.txt").read_text(errors="replace")
                raise AssertionError(f"prometheus exited with {prom.returncode}:\n{log[-4000:]}")
            return prometheus.ready()

        _wait(prometheus_ready, "Prometheus to start")
        _wait(
            lambda: prometheus.values('up{job="infergraph"}') == {(): 1.0},
            "Prometheus to scrape infergraph serve",
        )
        if processes:
            _wait(
                lambda: (
                    prometheus.values('up{job="infergraph-nodes"}', "node", "replica")
                    == {(node, "0"): 1.0 for node in NODES}
                ),
                "Prometheus to discover and scrape every node process",
            )
        yield server, prometheus
    finally:
        prometheus.http.close()
        prom.kill()
        prom.wait(10)
        server.kill()


@pytest.fixture(scope="module")
def sent(stack: tuple[procs.Service, Prometheus]) -> Counter[int]:
    """Predictions and feedback sent; the routes the responses reported (branch -> count).

    Half the traffic, a scrape, then the rest: so every series has two different samples and
    a rate.
    """
    server, prometheus = stack
    routes: Counter[int] = Counter()
    request = {"data": {"ndarray": [[1.0]]}}
    for half in (1, 2):
        seen: Counter[int] = Counter()
        for _ in range(PREDICTIONS // 2):
            response = server.predict(request)
            branch = response["meta"]["routing"]["router"]
            assert response["data"]["ndarray"] == [[OUTPUTS[branch]]], response
            seen[branch] += 1
            feedback = {"request": request, "response": response, "reward": REWARDS[branch]}
            status, _, body = server.post("/api/v1.0/feedback", feedback)
            assert status == 200, body
        assert set(seen) == {0, 1}, seen  # epsilon 0.5 and seed 3: both arms, in both halves
        routes.update(seen)
        # every mirrored request compared, and that state scraped
        _wait(
            lambda n=half * PREDICTIONS // 2: (
                prometheus.values("sum(infergraph_shadow_requests_total)") == {(): n}
            ),
            "the shadow comparisons to reach Prometheus",
        )
    status, _, _ = server.post("/api/v1.0/predictions", {"data": {"nothing": 1}})
    assert status == 400  # one error, for the error rate
    _wait(
        lambda: prometheus.values(
            'sum(seldon_api_executor_server_requests_seconds_count{code="400"})'
        ),
        "the error to reach Prometheus",
    )
    return routes


# ---------------------------------------------------------------- per node


def test_requests_per_node_count_what_was_sent(
    stack: tuple[procs.Service, Prometheus], sent: Counter[int]
) -> None:
    _, prometheus = stack
    counts = prometheus.values(
        f"sum by (predictor_name, node, node_type, service) "
        f'(infergraph_node_request_duration_seconds_count{{namespace="{NAMESPACE}", '
        f'deployment_name="{DEPLOYMENT}", service!="/send-feedback"}})',
        "predictor_name",
        "node",
        "node_type",
        "service",
    )
    assert counts == {
        ("main", "scaler", "TRANSFORMER", "/transform-input"): PREDICTIONS,
        ("main", "router", "ROUTER", "/route"): PREDICTIONS,
        ("main", "a", "MODEL", "/predict"): sent[0],
        ("main", "b", "MODEL", "/predict"): sent[1],
        ("shadow", "mirror", "MODEL", "/predict"): PREDICTIONS,
    }
    rates = _wait(
        lambda: prometheus.values(
            "sum by (node) (rate(infergraph_node_request_duration_seconds_count[1m]))", "node"
        ),
        "a rate per node",
    )
    assert set(rates) == {("scaler",), ("router",), ("a",), ("b",), ("mirror",)}
    assert all(rate > 0 for rate in rates.values()), rates


def test_latency_quantiles_per_node(stack: tuple[procs.Service, Prometheus], sent: Any) -> None:
    _, prometheus = stack
    p50 = prometheus.values(
        "histogram_quantile(0.5, sum by (node, le) "
        '(rate(infergraph_node_request_duration_seconds_bucket{service="/predict"}[1m])))',
        "node",
    )
    assert set(p50) == {("a",), ("b",), ("mirror",)}
    assert 0.025 <= p50[("b",)] <= 10.0  # b sleeps 30 ms: its median is past the 25 ms edge
    assert p50[("a",)] < p50[("b",)]


# ---------------------------------------------------------------- routers and bandits


def test_router_split_and_bandit_arms_match_the_responses(
    stack: tuple[procs.Service, Prometheus], sent: Counter[int]
) -> None:
    _, prometheus = stack
    sel = f'{{deployment_name="{DEPLOYMENT}", router="router"}}'
    pulls = prometheus.values(f"sum by (branch, child) (infergraph_router_routes_total{sel})",
                              "branch", "child")  # fmt: skip
    assert pulls == {("0", "a"): sent[0], ("1", "b"): sent[1]}
    feedback = prometheus.values(f"sum by (child) (infergraph_router_feedback_total{sel})", "child")
    assert feedback == {("a",): sent[0], ("b",): sent[1]}
    reward = prometheus.values(f"sum by (child) (infergraph_router_reward_total{sel})", "child")
    assert reward == {("a",): 0.0, ("b",): float(sent[1])}
    value = prometheus.values(
        f"sum by (child) (infergraph_router_reward_total{sel}) "
        f"/ sum by (child) (infergraph_router_feedback_total{sel})",
        "child",
    )
    assert value == {("a",): REWARDS[0], ("b",): REWARDS[1]}


# ---------------------------------------------------------------- shadow and Seldon's series


def test_shadow_agreement(stack: tuple[procs.Service, Prometheus], sent: Counter[int]) -> None:
    _, prometheus = stack
    outcomes = prometheus.values(
        "sum by (predictor_name, outcome) "
        f'(infergraph_shadow_requests_total{{namespace="{NAMESPACE}"}})',
        "predictor_name",
        "outcome",
    )
    assert outcomes == {("shadow", "agree"): sent[0], ("shadow", "disagree"): sent[1]}
    ratio = prometheus.values("infergraph_shadow_agreement_ratio", "predictor_name")
    assert ratio == {("shadow",): pytest.approx(sent[0] / PREDICTIONS)}


def test_seldon_executor_series(stack: tuple[procs.Service, Prometheus], sent: Any) -> None:
    _, prometheus = stack
    served = prometheus.values(
        "sum by (service, code) (seldon_api_executor_server_requests_seconds_count"
        f'{{job="infergraph", deployment_name="{DEPLOYMENT}", service=~"predictions|feedback"}})',
        "service",
        "code",
    )
    assert served == {
        ("predictions", "200"): PREDICTIONS,
        ("predictions", "400"): 1,
        ("feedback", "200"): PREDICTIONS,
    }
    client = prometheus.values(
        "sum by (model_name) "
        '(seldon_api_executor_client_requests_seconds_count{job="infergraph", service="/predict"})',
        "model_name",
    )
    assert client == {("a",): sent[0], ("b",): sent[1], ("mirror",): PREDICTIONS}


# ---------------------------------------------------------------- node processes' own series


def test_node_processes_own_series(
    stack: tuple[procs.Service, Prometheus], sent: Counter[int], processes: bool
) -> None:
    """With ``--processes``, what each node process counts itself (the calls it served, the
    rewards it was sent) reaches Prometheus from the process, labelled with its node."""
    if not processes:
        pytest.skip("in one process the nodes have no series of their own")
    _, prometheus = stack
    served = prometheus.values(
        "sum by (node) (seldon_api_executor_server_requests_seconds_count"
        '{job="infergraph-nodes", service=~"predictions|transform-input|feedback", '
        f'namespace="{NAMESPACE}", deployment_name="{DEPLOYMENT}"}})',
        "node",
    )
    # the model a prediction was routed to got one of each: a prediction and a feedback
    assert served == {
        ("scaler",): PREDICTIONS,
        ("a",): 2 * sent[0],
        ("b",): 2 * sent[1],
        ("mirror",): PREDICTIONS,
    }
    rewarded = prometheus.values(
        "sum by (node, model_name) "
        '(seldon_api_model_feedback_reward_total{job="infergraph-nodes"})',
        "node",
        "model_name",
    )
    assert rewarded == {("b", "b"): float(sent[1])}  # only b earned a reward, 1 each time


# ---------------------------------------------------------------- the Grafana dashboard


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def _substitute(expr: str) -> str:
    """Grafana's variables as a dashboard left on "All" would send them."""
    expr = expr.replace("$__rate_interval", "1m")
    return re.sub(r"\$\{?(namespace|deployment|predictor)\}?", ".*", expr)


def test_dashboard_shape() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "deployment", "predictor"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            for name in ("namespace", "deployment", "predictor"):  # every query is filtered
                assert f"${name}" in target["expr"], (panel["title"], name)
            if "seldon_api_executor_server_requests" in target["expr"]:  # not the nodes' own
                assert 'model_name=""' in target["expr"], (panel["title"], target["expr"])
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("per node", "Error rate", "p99", "Router split", "Bandit", "Shadow", "Seldon"):
        assert wanted in titles, titles


def test_every_dashboard_query_finds_series(
    stack: tuple[procs.Service, Prometheus], sent: Any, processes: bool
) -> None:
    _, prometheus = stack
    dashboard = _dashboard()
    for where, expr in _exprs(dashboard):
        result = _wait(lambda e=expr: prometheus.query(_substitute(e)), f"{where}: {expr}", 20.0)
        assert all(math.isfinite(float(s["value"][1])) for s in result), (where, result)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert match, variable
        values = prometheus.label_values(match[2], _substitute(match[1]))
        assert values, variable["name"]
    assert prometheus.label_values("namespace", "infergraph_router_routes_total") == [NAMESPACE]
