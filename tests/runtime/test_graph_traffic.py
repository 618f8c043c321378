"""Predictors: the traffic split, sticky sessions, the shadow predictor and its agreement
metric; and bandit routers learning from feedback sent through the API."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from infergraph.runtime.graph_dataplane import GraphDataPlane
from tests.helpers.graph_fixtures import GraphHarness, deployment, predictor, unit

X = [[1.0, 2.0]]
SHADOW = "infergraph_shadow_requests_total"
RATIO = "infergraph_shadow_agreement_ratio"


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[GraphHarness]:
    async with GraphHarness(tmp_path) as harness:
        yield harness


def model(name: str, add: float = 0.0, cls: str = "Model") -> Any:
    return unit(name, "MODEL", cls=cls, params={"add": add})


def split(main: int = 80, **extra: Any) -> dict[str, Any]:
    """Predictors ``main`` (node a, +1) and ``canary`` (node b, +2)."""
    return deployment(
        predictor(model("a", 1.0), "main", traffic=main),
        predictor(model("b", 2.0), "canary", traffic=100 - main),
        **extra,
    )


def with_shadow(shadow_node: dict[str, Any]) -> dict[str, Any]:
    return deployment(
        predictor(model("a", 1.0), "main", traffic=100),
        predictor(shadow_node, "shadow", shadow=True),
    )


async def settle(dp: GraphDataPlane) -> None:
    """Wait (with a deadline) until every mirrored request has finished."""
    async with asyncio.timeout(10):
        while dp._shadow_tasks:
            await asyncio.gather(*list(dp._shadow_tasks), return_exceptions=True)


# ---------------------------------------------------------------- traffic


async def test_choose_splits_by_traffic_weight(graph: GraphHarness) -> None:
    dp, _ = graph.dataplane(split(80), seed=11)
    n = 5000
    counts = Counter(dp.choose({}).name for _ in range(n))
    assert set(counts) == {"main", "canary"}
    assert abs(counts["main"] / n - 0.8) < 0.025, counts  # > 4 sd
    await dp.close()


async def test_seeded_choice_is_reproducible(graph: GraphHarness) -> None:
    first, _ = graph.dataplane(split(50), seed=3)
    second, _ = graph.dataplane(split(50), seed=3)
    a = [first.choose({}).name for _ in range(200)]
    b = [second.choose({}).name for _ in range(200)]
    assert a == b
    assert len(set(a)) == 2
    await first.close()
    await second.close()


async def test_predictions_follow_the_split(graph: GraphHarness) -> None:
    served = await graph.serve(split(80), seed=5)
    n = 1000
    answers: Counter[str] = Counter()
    for _ in range(n):
        body = await served.ok(X)
        node = next(iter(body["meta"]["routing"]))
        answers[node] += 1
        # the answer is the chosen predictor's own (a: X + 1, b: X + 2)
        assert body["data"]["ndarray"] == ([[2.0, 3.0]] if node == "a" else [[3.0, 4.0]])
    assert abs(answers["a"] / n - 0.8) < 0.05, answers
    assert Counter(served.called("predict")) == answers
    served_by = "seldon_api_executor_server_requests_seconds_count"
    assert await served.metric(served_by, service="predictions") == n
    hops = "infergraph_executor_hops_count"
    assert await served.metric(hops, predictor_name="main") == answers["a"]
    assert await served.metric(hops, predictor_name="canary") == answers["b"]


@pytest.mark.parametrize(
    "source", [pytest.param("settings", id="flag"), pytest.param("annotation", id="annotation")]
)
async def test_sticky_header_pins_a_client_to_a_predictor(graph: GraphHarness, source: str) -> None:
    if source == "settings":
        served = await graph.serve(split(50), sticky_header="X-User")
    else:
        manifest = split(50, annotations={"infergraph.io/sticky-header": "x-user"})
        served = await graph.serve(manifest)
    seen: dict[str, set[str]] = {}
    for _ in range(4):
        for user in range(40):
            body = await served.ok(X, headers={"X-User": f"user-{user}"})
            seen.setdefault(f"user-{user}", set()).update(body["meta"]["routing"])
    assert all(len(nodes) == 1 for nodes in seen.values()), seen
    assert set().union(*seen.values()) == {"a", "b"}  # both predictors get users
    # without the header, the split is random again
    unpinned = {next(iter((await served.ok(X))["meta"]["routing"])) for _ in range(50)}
    assert unpinned == {"a", "b"}


async def test_sticky_feedback_reaches_the_pinned_predictor(graph: GraphHarness) -> None:
    # same node name and image in both predictors: only the sticky header tells them apart
    manifest = deployment(
        predictor(model("m", 1.0), "main", traffic=50),
        predictor(model("m", 2.0), "canary", traffic=50),
    )
    served = await graph.serve(manifest, sticky_header="x-user")
    answered: Counter[str] = Counter()
    for user in range(12):
        headers = {"x-user": f"u{user}"}
        body = await served.ok(X, headers=headers)
        answered["main" if body["data"]["ndarray"] == [[2.0, 3.0]] else "canary"] += 1
        feedback = {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1}
        assert (await served.feedback(feedback, headers=headers)).status_code == 200
    assert set(answered) == {"main", "canary"}
    for name in ("main", "canary"):
        labels = {"predictor_name": name, "model_name": "m"}
        assert await served.metric("seldon_api_model_feedback_total", **labels) == answered[name]


async def test_feedback_goes_to_the_predictor_named_by_routing(graph: GraphHarness) -> None:
    served = await graph.serve(split(50), seed=1)
    for _ in range(10):
        body = await served.ok(X)
        node = next(iter(body["meta"]["routing"]))
        served.reset()
        feedback = {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1}
        assert (await served.feedback(feedback)).status_code == 200
        assert served.called("send_feedback") == [node]


def same_names(image_a: str, image_b: str) -> dict[str, Any]:
    """A canary that reuses the node name ``m``, with the given images."""
    return deployment(
        predictor(unit("m", "MODEL", cls="Model", params={"add": 1.0}, image=image_a), "main",
                  traffic=50),
        predictor(unit("m", "MODEL", cls="Model", params={"add": 2.0}, image=image_b), "canary",
                  traffic=50),
    )  # fmt: skip


async def test_feedback_tells_a_canary_with_the_same_node_names_by_image(
    graph: GraphHarness,
) -> None:
    served = await graph.serve(same_names("test/m:1", "test/m:2"), seed=2)
    answered: Counter[str] = Counter()
    for _ in range(12):
        body = await served.ok(X)
        image = body["meta"]["requestPath"]["m"]
        answered["main" if image == "test/m:1" else "canary"] += 1
        assert body["data"]["ndarray"] == ([[2.0, 3.0]] if image == "test/m:1" else [[3.0, 4.0]])
        feedback = {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1}
        assert (await served.feedback(feedback)).status_code == 200
    assert set(answered) == {"main", "canary"}
    # each predictor's node received exactly the feedback for the answers it gave
    for name in ("main", "canary"):
        labels = {"predictor_name": name, "model_name": "m"}
        assert await served.metric("seldon_api_model_feedback_total", **labels) == answered[name]


async def test_feedback_that_fits_two_predictors_is_refused(
    graph: GraphHarness, seldon_error: Any
) -> None:
    served = await graph.serve(same_names("test/m:1", "test/m:1"))
    body = await served.ok(X)
    feedback = {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1}
    response = await served.feedback(feedback)
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "main, canary", "sticky header")
    assert served.called("send_feedback") == []


# ---------------------------------------------------------------- shadow


@pytest.mark.parametrize(
    ("shadow_add", "outcome", "ratio"),
    [pytest.param(1.0, "agree", 1.0, id="agree"), pytest.param(5.0, "disagree", 0.0, id="differ")],
)
async def test_shadow_gets_a_copy_and_is_compared(
    graph: GraphHarness, shadow_add: float, outcome: str, ratio: float
) -> None:
    served = await graph.serve(with_shadow(model("s", shadow_add)))
    n = 20
    for _ in range(n):
        body = await served.ok(X)
        assert body["data"]["ndarray"] == [[2.0, 3.0]]  # never the shadow's answer
        assert set(body["meta"]["routing"]) == {"a"}
    await settle(served.dp)
    assert Counter(served.called("predict")) == {"a": n, "s": n}
    assert await served.metric(SHADOW, predictor_name="shadow", outcome=outcome) == n
    other = "disagree" if outcome == "agree" else "agree"
    assert await served.metric(SHADOW, outcome=other) == 0
    assert await served.metric(RATIO, deployment_name="g", predictor_name="shadow") == ratio


async def test_shadow_sees_the_same_request_and_puid(graph: GraphHarness) -> None:
    manifest = deployment(
        predictor(model("a", 1.0), "main", traffic=100),
        predictor(model("s", 1.0), "shadow", shadow=True),
    )
    served = await graph.serve(manifest)
    await served.ok([[7.0, 8.0]], headers={"Seldon-Puid": "mirror-1"})
    await settle(served.dp)
    assert served.details("predict") == [("a", {"puid": "mirror-1"}), ("s", {"puid": "mirror-1"})]


async def test_shadow_never_delays_the_answer(graph: GraphHarness) -> None:
    served = await graph.serve(with_shadow(model("s", 1.0, "Gated")))
    body = await served.ok(X)  # answered while the shadow is still blocked
    assert body["data"]["ndarray"] == [[2.0, 3.0]]
    assert served.dp._shadow_tasks  # still in flight
    assert await served.metric(SHADOW) == 0
    served.module.gate("s").set()
    await settle(served.dp)
    assert await served.metric(SHADOW, outcome="agree") == 1


async def test_failing_shadow_never_affects_the_client(graph: GraphHarness) -> None:
    served = await graph.serve(with_shadow(unit("s", "MODEL", cls="Failing")))
    for _ in range(5):
        body = await served.ok(X)
        assert body["data"]["ndarray"] == [[2.0, 3.0]]
    await settle(served.dp)
    assert await served.metric(SHADOW, outcome="error") == 5
    assert await served.metric(SHADOW, outcome="agree") == 0
    assert not [s for s in await served.metrics() if s.name == RATIO]  # nothing compared


async def test_closing_cancels_shadows_in_flight(graph: GraphHarness) -> None:
    served = await graph.serve(with_shadow(model("s", 1.0, "Gated")))
    await served.ok(X)
    tasks = list(served.dp._shadow_tasks)
    assert tasks
    await served.dp.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert all(t.cancelled() for t in tasks)


# ---------------------------------------------------------------- bandits learn from feedback


@pytest.mark.parametrize(
    ("implementation", "params"),
    [
        pytest.param("EPSILON_GREEDY", {"epsilon": 0.1, "best_branch": 0}, id="epsilon-greedy"),
        pytest.param("THOMPSON_SAMPLING", {}, id="thompson"),
        pytest.param("UCB1", {}, id="ucb1"),
    ],
)
async def test_bandit_learns_the_rewarded_branch(
    graph: GraphHarness, implementation: str, params: dict[str, Any]
) -> None:
    spec = unit(
        "bandit", None, model("poor", 0.0), model("good", 1.0),
        implementation=implementation, params={"n_branches": 2, "seed": 42, **params},
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    rounds, late = 300, []
    for i in range(rounds):
        body = await served.ok(X)
        branch = body["meta"]["routing"]["bandit"]
        reward = 1.0 if branch == 1 else 0.0
        response = await served.feedback(
            {"request": {"data": {"ndarray": X}}, "response": body, "reward": reward}
        )
        assert response.status_code == 200, response.text
        if i >= rounds - 100:
            late.append(branch)
    assert late.count(1) >= 80, Counter(late)  # converged on the rewarded branch
    # every feedback reached the routed model and the router
    routed = Counter(served.called("predict"))
    assert Counter(served.called("send_feedback")) == routed
    bandit = served.user("bandit")
    counts = bandit.store.read(bandit.key, 2)
    assert list(counts.tries) == [routed["poor"], routed["good"]]
    assert list(counts.successes) == [0, routed["good"]]
    rewarded = await served.metric("seldon_api_model_feedback_total", model_name="bandit")
    assert rewarded == routed["good"]  # Seldon counts non-zero rewards


async def test_bandit_feedback_without_routing_is_refused(
    graph: GraphHarness, seldon_error: Any
) -> None:
    spec = unit(
        "bandit", None, model("a"), model("b"),
        implementation="EPSILON_GREEDY", params={"n_branches": 2, "seed": 1},
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    body = {"request": {"data": {"ndarray": X}}, "response": {"data": {"ndarray": X}}, "reward": 1}
    response = await served.feedback(body)
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "node 'bandit'", "routing")


@pytest.mark.parametrize(
    ("shadow_add", "outcome"),
    [pytest.param(1.0, "agree", id="agree"), pytest.param(5.0, "disagree", id="differ")],
)
async def test_shadow_compares_v2_answers_tensor_by_tensor(
    graph: GraphHarness, shadow_add: float, outcome: str
) -> None:
    served = await graph.serve(with_shadow(model("s", shadow_add)))
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    for _ in range(5):
        response = await served.client.post("/v2/models/g/infer", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [2.0, 3.0]  # never the shadow's
    await settle(served.dp)
    assert await served.metric(SHADOW, predictor_name="shadow", outcome=outcome) == 5
