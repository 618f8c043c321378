"""The dashboard's JSON on a real ``infergraph serve`` (docs/dashboard.md); ``infergraph trace``.

The graph is examples/dashboard: a TRANSFORMER, an EPSILON_GREEDY router and two MODELs,
with a shadow predictor. Every figure is checked against what the test itself sent and what
the answers said (``meta.routing``), not against the server's own arithmetic.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infergraph.graph.executor import CallContext, Executor
from infergraph.graph.plan import PlanNode, PredictorPlan
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.metrics import Registry
from infergraph.observability.recent import NodeWindow, RecentRequests, RequestRecord
from infergraph.protocol.message import DataKind, Message
from tests.helpers.dashboard_graph import Served, serve
from tests.helpers.doc_blocks import same_shape, shown
from tests.helpers.ports import HoldPorts
from tests.helpers.procs import clean_env, http_request, poll


def trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infergraph", "trace", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )


# ---------------------------------------------------------------- the record itself


def record(puid: str, shadow: bool = False) -> RequestRecord:
    return RequestRecord(puid, "shadow" if shadow else "main", 0.0, 0.0, 0.001, "200", [], {})


def test_the_record_keeps_the_newest_requests_and_attaches_the_shadow() -> None:
    recent = RecentRequests(3)
    for i in range(5):
        recent.add(record(f"p{i}"))
    assert [r.puid for r in recent.latest(10)] == ["p4", "p3", "p2"]
    assert recent.get("p1") is None
    recent.add(record("p3", shadow=True), shadow=True)
    recent.shadow_outcome("p3", "agree")
    found = recent.get("p3")
    assert found is not None and found.shadow is not None and found.shadow_outcome == "agree"
    recent.add(record("p0", shadow=True), shadow=True)  # its primary is gone: dropped
    assert len(recent) == 3 and recent.get("p0") is None
    with pytest.raises(ValueError, match="at least 1"):
        RecentRequests(0)


def test_a_window_counts_only_its_last_minute() -> None:
    window = NodeWindow(since=0.0)
    for i in range(100):  # one call ending every 0.5 s from t=0, the last ten of them failing
        seconds = (i + 1) / 1000
        window.calls.append(
            ("n", "/predict", i * 0.5 - seconds, seconds, "500" if i >= 90 else "200")
        )
    summary = window.summary(now=50.0, window=10.0)
    assert summary.calls == 20  # those ended at 40.0 .. 49.5
    assert summary.rps == pytest.approx(2.0)
    assert summary.error_rate == pytest.approx(0.5)
    assert summary.p50_s == pytest.approx(0.090)
    assert summary.p99_s == pytest.approx(0.100)
    assert NodeWindow().summary().calls == 0


class Echo:
    """A node client that answers its input (``aggregate``: the first)."""

    async def predict(self, msg: Message, wire: str = "json") -> Message:
        return msg

    async def aggregate(self, msgs: list[Message], wire: str = "json", raw: Any = None) -> Message:
        return msgs[0]


def test_the_executor_records_every_branch_of_a_fan_out_and_nothing_when_off() -> None:
    leaves = tuple(PlanNode(n, Echo(), "", predict=True) for n in ("a", "b"))  # type: ignore[arg-type]
    root = PlanNode("combiner", Echo(), "", aggregate=True, children=leaves)  # type: ignore[arg-type]
    plan = PredictorPlan("p", root, 100, False, "")
    recent = RecentRequests()
    request = Message(DataKind.NDARRAY, [[1.0]])

    async def run(executor: Executor, puid: str) -> CallContext:
        ctx = CallContext(puid)
        await executor.predict(request, ctx)
        return ctx

    on = Executor(plan, ExecutorMetrics(Registry(), "d", "p"), recent=recent)
    asyncio.run(run(on, "fan"))
    found = recent.get("fan")
    assert found is not None and found.status == "200"
    assert sorted(c[0] for c in found.calls) == ["a", "b", "combiner"]
    assert found.routing == {"combiner": -1, "a": -1, "b": -1}
    assert [c[0] for c in recent.windows[("p", "a")].calls] == ["a"]
    off = Executor(plan, ExecutorMetrics(Registry(), "d", "p"))
    assert asyncio.run(run(off, "quiet")).calls is None


# ---------------------------------------------------------------- the JSON, served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("dashboard"), "--dashboard-requests", "6") as s:
        yield s


@pytest.fixture(scope="module")
def traffic(served: Served) -> dict[str, dict[str, Any]]:
    """Ten predictions, each with its own puid; the answers by puid."""
    answers = {}
    for i in range(10):
        status, answer = served.predict([1, 2, i], f"req-{i}")
        assert status == 200, answer
        assert answer["data"]["ndarray"] == [[2.0 * (3 + i)]]
        answers[f"req-{i}"] = answer
    return answers


def test_the_state_draws_the_graph_from_the_plan(served: Served, traffic: Any) -> None:
    state = served.json("/dashboard/api/state")
    assert state["deployment"] == "adders" and state["ready"] is True
    main, candidate = state["predictors"]
    assert (main["name"], main["traffic"], main["shadow"]) == ("main", 100, False)
    assert (candidate["name"], candidate["shadow"]) == ("candidate", True)
    types = {n["name"]: n["type"] for n in main["nodes"]}
    assert types == {
        "doubler": "TRANSFORMER",
        "chooser": "ROUTER",
        "adder": "MODEL",
        "careful-adder": "MODEL",
    }
    edges = {(e["from"], e["to"]) for e in main["edges"]}
    assert edges == {("doubler", "chooser"), ("chooser", "adder"), ("chooser", "careful-adder")}
    assert main["root"] == "doubler" and candidate["root"] == "candidate"
    assert state["recording"] == {"capacity": 6, "held": 6}


def test_the_live_figures_match_the_traffic_sent(served: Served, traffic: Any) -> None:
    chosen = Counter(a["meta"]["routing"]["chooser"] for a in traffic.values())
    state = served.json("/dashboard/api/state")
    main = state["predictors"][0]
    nodes = {n["name"]: n for n in main["nodes"]}
    assert nodes["doubler"]["calls_total"] == 10 and nodes["chooser"]["calls_total"] == 10
    assert nodes["adder"]["calls_total"] == chosen[0]
    assert nodes["careful-adder"]["calls_total"] == chosen[1]
    live = nodes["doubler"]["live"]
    assert live["calls"] == 10 and live["error_rate"] == 0.0 and live["rps"] > 0
    assert 0 < live["p50_ms"] <= live["p99_ms"]
    (router,) = main["routers"]
    split = {c["child"]: c["routes"] for c in router["children"]}
    assert split == {"adder": chosen[0], "careful-adder": chosen[1]}
    assert router["routes"] == 10
    shares = [c["share"] for c in router["children"]]
    assert shares == [pytest.approx(chosen[0] / 10), pytest.approx(chosen[1] / 10)]
    arms = router["bandit"]["arms"]
    assert router["bandit"]["algorithm"] == "EpsilonGreedy"
    assert [a["pulls"] for a in arms] == [chosen[0], chosen[1]]

    def agreed() -> Any:
        shadow = served.json("/dashboard/api/state")["shadow"]
        return shadow if shadow["agree"] == 10 else None

    shadow = poll(agreed, what="the shadow's ten answers")
    assert shadow["predictor"] == "candidate" and shadow["agreement"] == 1.0


def test_feedback_moves_the_bandits_values(served: Served, traffic: Any) -> None:
    rewards = {0: 1.0, 1: 0.0}
    sent: Counter[int] = Counter()
    for answer in list(traffic.values())[:4]:
        branch = answer["meta"]["routing"]["chooser"]
        body = {"reward": rewards[branch], "response": answer}
        status, _, data = http_request(served.http, "POST", "/api/v1.0/feedback", body)
        assert status == 200, data
        sent[branch] += 1
    router = served.json("/dashboard/api/state")["predictors"][0]["routers"][0]
    arms = {a["branch"]: a for a in router["bandit"]["arms"]}
    for branch, count in sent.items():
        assert arms[branch]["feedback"] == count
        assert arms[branch]["reward"] == pytest.approx(rewards[branch] * count)
        assert arms[branch]["tries"] == count
        assert arms[branch]["value"] == pytest.approx(rewards[branch])
    history = router["bandit"]["history"]
    assert history and history[-1]["values"] == [arms[0]["value"], arms[1]["value"]]


def test_requests_lists_the_newest_first_and_a_record_is_the_path(
    served: Served, traffic: Any
) -> None:
    listed = served.json("/dashboard/api/requests?limit=3")
    assert [r["puid"] for r in listed["requests"]] == ["req-9", "req-8", "req-7"]
    assert (listed["capacity"], listed["held"]) == (6, 6)
    one = served.json("/dashboard/api/requests/req-9")
    child = ["adder", "careful-adder"][traffic["req-9"]["meta"]["routing"]["chooser"]]
    assert one["path"] == ["doubler", "chooser", child]
    assert [(c["node"], c["method"], c["depth"]) for c in one["calls"]] == [
        ("doubler", "/transform-input", 0),
        ("chooser", "/route", 1),
        (child, "/predict", 2),
    ]
    starts = [c["start_ms"] for c in one["calls"]]
    assert starts == sorted(starts)
    assert all(c["ms"] > 0 and c["in_node_ms"] == c["ms"] for c in one["calls"])
    assert one["calls"][-1]["start_ms"] + one["calls"][-1]["ms"] <= one["ms"]
    assert one["routes"] == {
        "chooser": {"branch": ["adder", "careful-adder"].index(child), "child": child}
    }
    assert one["shadow"]["predictor"] == "candidate" and one["shadow"]["outcome"] == "agree"
    assert one["shadow"]["path"] == ["candidate"]


def test_a_failed_request_is_recorded_with_its_status(served: Served, traffic: Any) -> None:
    status, answer = served.predict(["not a number"], "req-bad")
    assert status >= 400, answer
    one = served.json("/dashboard/api/requests/req-bad")
    assert one["status"] == str(status) and one["path"] == ["doubler"]
    assert one["calls"][0]["status"] == str(status)
    nodes = served.json("/dashboard/api/state")["predictors"][0]["nodes"]
    doubler = next(n for n in nodes if n["name"] == "doubler")
    assert doubler["errors_total"] == 1 and doubler["live"]["error_rate"] > 0


@pytest.mark.parametrize(
    ("path", "status", "said"),
    [
        pytest.param("/dashboard/api/requests/no-such-puid", 404, "'no-such-puid'", id="unknown"),
        pytest.param("/dashboard/api/requests/req-0", 404, "'req-0'", id="evicted"),
        pytest.param("/dashboard/api/requests?limit=many", 400, "limit='many'", id="bad-limit"),
        pytest.param("/dashboard/api/requests?limit=0", 400, "at least 1", id="zero-limit"),
        pytest.param("/dashboard/api/nothing", 404, "no endpoint", id="no-endpoint"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    served: Served, traffic: Any, path: str, status: int, said: str
) -> None:
    body = served.json(path, status)
    assert said in body["status"]["info"]


def test_the_page_and_the_events_are_served(served: Served, traffic: Any) -> None:
    status, headers, body = served.get("/dashboard")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert b"<svg" not in body[:100] and b"/dashboard" not in body  # relative to itself
    assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
    status, headers, body = served.get("/dashboard/events")
    assert status == 200 and headers["content-type"] == "text/event-stream"
    lines = body.decode().splitlines()
    assert lines[0] == "retry: 1000" and lines[1] == "event: state"
    assert json.loads(lines[2].removeprefix("data: "))["deployment"] == "adders"
    status, _, _ = http_request(served.http, "POST", "/dashboard/api/state", {})
    assert status == 405
    assert served.get("/seldon/default/adders/dashboard/api/state")[0] == 200


# ---------------------------------------------------------------- infergraph trace


def test_trace_prints_the_path_with_the_time_in_each_node(served: Served, traffic: Any) -> None:
    done = trace(
        f"http://127.0.0.1:{served.http}",
        "--data",
        '{"data": {"ndarray": [[1, 2, 3]]}}',
        "-H",
        "Seldon-Puid:traced-1",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("request traced-1: predictor main, status 200, ")
    assert lines[2].split()[:3] == ["doubler", "TRANSFORMER", "/transform-input"]
    assert lines[3].startswith("    chooser ") and "→ " in lines[3]
    assert lines[4].split()[1:3] == ["MODEL", "/predict"] and lines[4].startswith("      ")
    assert any(line.startswith("shadow candidate: status 200") for line in lines)


def test_trace_prints_what_the_docs_show(served: Served, traffic: Any) -> None:
    """docs/dashboard.md's sample: a request the router sent to adder, as most are."""
    (block,) = shown("docs/dashboard.md", "tests/runtime/test_dashboard_api.py")
    for _ in range(20):
        done = trace(
            f"http://127.0.0.1:{served.http}",
            *("--data", '{"data": {"ndarray": [[1, 2, 3]]}}', "-H", "Seldon-Puid:my-request"),
        )
        assert done.returncode == 0, done.stderr
        if "→ adder (branch 0)" in done.stdout and "shadow candidate" in done.stdout:
            break
    printed = done.stdout.splitlines()
    assert len(printed) == len(block.lines), done.stdout
    for line, real in zip(block.lines, printed, strict=True):
        assert same_shape(line, real), (line, real)


def test_trace_takes_the_full_predictions_url_and_prints_json(served: Served, traffic: Any) -> None:
    url = f"http://127.0.0.1:{served.http}/seldon/default/adders/api/v1.0/predictions"
    done = trace(url, "--data", '{"data": {"ndarray": [[1]]}}', "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"][0] == "doubler"


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        pytest.param(["--data", "{nope"], 2, "--data is not JSON", id="not-json"),
        pytest.param(
            ["--data", '{"data": {"ndarray": "x"}}'], 1, "never reached the graph", id="refused"
        ),
    ],
)
def test_trace_says_what_is_wrong(
    served: Served, traffic: Any, args: list[str], code: int, said: str
) -> None:
    done = trace(f"http://127.0.0.1:{served.http}", *args)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert said in done.stderr and "Traceback" not in done.stderr


def test_trace_of_an_unreachable_server(held_ports: HoldPorts) -> None:
    (port,) = held_ports(1)
    done = trace(f"http://127.0.0.1:{port}", "--data", "{}")
    assert done.returncode == 1 and "cannot reach" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_no_dashboard_records_nothing_and_trace_says_why(tmp_path: Path) -> None:
    with serve(tmp_path, "--no-dashboard") as off:
        assert off.get("/dashboard")[0] == 404
        assert off.get("/dashboard/api/state")[0] == 404
        done = trace(f"http://127.0.0.1:{off.http}", "--data", '{"data": {"ndarray": [[1]]}}')
        assert done.returncode == 1
        assert "serves no dashboard" in done.stderr and "--no-dashboard" in done.stderr
    with serve(tmp_path, env={"INFERGRAPH_DASHBOARD": "0"}) as off:
        assert off.get("/dashboard")[0] == 404


def test_with_processes_the_nodes_are_hops_with_replicas(tmp_path: Path) -> None:
    with serve(tmp_path, "--processes") as s:
        status, answer = s.predict([1, 2, 3], "hop-1")
        assert status == 200, answer
        one = s.json("/dashboard/api/requests/hop-1")
        calls = {c["node"]: c for c in one["calls"]}
        assert calls["doubler"]["remote"] is True and calls["doubler"]["in_node_ms"] is None
        assert calls["doubler"]["transport"] in ("grpc", "rest")
        assert calls["chooser"]["remote"] is False  # a built-in router runs in the orchestrator
        nodes = {n["name"]: n for n in s.json("/dashboard/api/state")["predictors"][0]["nodes"]}
        assert nodes["doubler"]["replicas"] == {
            "count": 1,
            "up": 1,
            "down_reason": None,
            "restarts": 0,
        }
        assert nodes["chooser"]["replicas"] is None
