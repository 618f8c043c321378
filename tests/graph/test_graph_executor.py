"""The graph walk through the REST API: every node type, routing value and ``methods`` list,
nesting, ``meta`` (routing, requestPath, puid, tags) and the executor's metrics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.graph_fixtures import GraphHarness, deployment, unit
from tests.helpers.procs import metric_sum

X = [[1.0, 2.0]]


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[GraphHarness]:
    async with GraphHarness(tmp_path) as harness:
        yield harness


def model(name: str, add: float = 0.0, cls: str = "Model", *children: dict[str, Any]) -> Any:
    return unit(name, "MODEL", *children, cls=cls, params={"add": add})


def meeting(name: str, add: float, parties: int = 2) -> Any:
    """A MODEL that answers only when ``parties`` siblings are inside predict together."""
    return unit(name, "MODEL", cls="Meeting", params={"add": add, "parties": parties})


def router(name: str, choice: int, *children: dict[str, Any]) -> Any:
    return unit(name, "ROUTER", *children, cls="Router", params={"choice": choice})


def ndarray(body: dict[str, Any]) -> Any:
    return body["data"]["ndarray"]


# ---------------------------------------------------------------- node types


async def test_model_with_a_child_is_a_chain(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 1.0, "Model", model("b", 10.0))))
    body = await served.ok(X)
    assert ndarray(body) == [[12.0, 13.0]]  # b received a's output
    assert served.calls == [("a", "predict"), ("b", "predict")]
    assert body["meta"]["routing"] == {"a": -1, "b": -1}
    assert body["meta"]["requestPath"] == {"a": "test/a:0.1", "b": "test/b:0.1"}


async def test_transformer_feeds_the_model(graph: GraphHarness) -> None:
    graph_spec = unit("t", "TRANSFORMER", model("m", 1.0), cls="Transformer")
    served = await graph.serve(deployment(graph_spec))
    body = await served.ok(X)
    assert ndarray(body) == [[11.0, 21.0]]  # (X * 10) + 1
    assert served.calls == [("t", "transform_input"), ("m", "predict")]


async def test_output_transformer_wraps_its_subtree(graph: GraphHarness) -> None:
    graph_spec = unit("o", "OUTPUT_TRANSFORMER", model("m", 1.0), cls="OutputTransformer")
    served = await graph.serve(deployment(graph_spec))
    body = await served.ok(X)
    # its input goes to the child untouched (no transform_input), then -(X + 1)
    assert ndarray(body) == [[-2.0, -3.0]]
    assert served.calls == [("m", "predict"), ("o", "transform_output")]
    assert body["meta"]["routing"] == {"o": -1, "m": -1}


@pytest.mark.parametrize("choice", [pytest.param(n, id=f"child-{n}") for n in range(3)])
async def test_router_index_calls_that_child_only(graph: GraphHarness, choice: int) -> None:
    children = [model(f"m{i}", float(i * 100)) for i in range(3)]
    served = await graph.serve(deployment(router("r", choice, *children)))
    for _ in range(3):
        body = await served.ok(X)
        assert ndarray(body) == [[1.0 + choice * 100, 2.0 + choice * 100]]
        assert body["meta"]["routing"] == {"r": choice, f"m{choice}": -1}
    assert served.called("predict") == [f"m{choice}"] * 3
    assert served.called("route") == ["r"] * 3


async def test_router_minus_one_calls_all_children_concurrently(graph: GraphHarness) -> None:
    # Meeting children only answer when both are inside predict at the same time
    served = await graph.serve(deployment(router("r", -1, meeting("a", 1.0), meeting("b", 2.0))))
    body = await served.ok(X)
    assert ndarray(body) == [[2.0, 3.0]]  # the first child's answer
    assert sorted(served.called("predict")) == ["a", "b"]
    assert body["meta"]["routing"] == {"r": -1, "a": -1, "b": -1}


async def test_router_minus_two_stops_with_the_current_message(graph: GraphHarness) -> None:
    spec = unit("t", "TRANSFORMER", router("r", -2, model("a", 1.0)), cls="Transformer")
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert ndarray(body) == [[10.0, 20.0]]  # the transformer's output, unchanged
    assert served.calls == [("t", "transform_input"), ("r", "route")]
    assert body["meta"]["routing"] == {"t": -1, "r": -2}


@pytest.mark.parametrize("choice", [pytest.param(2, id="past-end"), pytest.param(-3, id="neg")])
async def test_router_index_out_of_range_is_a_400_naming_the_router(
    graph: GraphHarness, seldon_error: Any, choice: int
) -> None:
    served = await graph.serve(deployment(router("picky", choice, model("a"), model("b"))))
    response = await served.predict(X)
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "'picky'", str(choice), "2 children")
    assert served.called("predict") == []


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        pytest.param("nested", ["m1"], id="ndarray-[[N]]"),
        pytest.param("flat", ["m1"], id="ndarray-[N]"),
        pytest.param("tensor", ["m1"], id="tensor"),
        pytest.param("empty", ["m0", "m1"], id="empty-means-all"),
    ],
)
async def test_route_raw_answer_forms(graph: GraphHarness, form: str, expected: list[str]) -> None:
    spec = unit(
        "r", "ROUTER", model("m0"), model("m1"), cls="RawRouter", params={"choice": 1, "form": form}
    )
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert sorted(served.called("predict")) == expected
    assert body["meta"]["routing"]["r"] == (1 if len(expected) == 1 else -1)


async def test_combiner_calls_children_concurrently_then_aggregates(graph: GraphHarness) -> None:
    spec = unit("c", "COMBINER", meeting("a", 1.0), meeting("b", 2.0), cls="Combiner")
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert ndarray(body) == [[5.0, 7.0]]  # (X + 1) + (X + 2)
    assert served.calls[-1] == ("c", "aggregate")
    assert sorted(served.called("predict")) == ["a", "b"]
    assert served.details("aggregate") == [("c", 2)]
    assert body["meta"]["routing"] == {"c": -1, "a": -1, "b": -1}
    assert set(body["meta"]["requestPath"]) >= {"a", "b", "c"}


async def test_average_combiner_averages_element_wise(graph: GraphHarness) -> None:
    spec = unit(
        "avg", None, model("a", 1.0), model("b", 3.0), model("c", 8.0),
        implementation="AVERAGE_COMBINER",
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    body = await served.ok([[1.0, 2.0], [3.0, 4.0]])
    assert ndarray(body) == [[5.0, 6.0], [7.0, 8.0]]  # X + mean(1, 3, 8)
    assert sorted(served.called("predict")) == ["a", "b", "c"]


async def test_average_combiner_refuses_non_2d_outputs_naming_the_node(
    graph: GraphHarness, seldon_error: Any
) -> None:
    spec = unit("avg", None, model("a"), model("b"), implementation="AVERAGE_COMBINER")
    served = await graph.serve(deployment(spec))
    response = await served.predict([1.0, 2.0])
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "node 'avg'", "not 2 dimensional")


async def test_several_children_without_combiner_answer_with_the_first(
    graph: GraphHarness,
) -> None:
    spec = unit("t", "TRANSFORMER", meeting("a", 1.0), meeting("b", 2.0), cls="Transformer")
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert ndarray(body) == [[11.0, 21.0]]  # a's answer to the transformed input
    assert sorted(served.called("predict")) == ["a", "b"]
    assert body["meta"]["routing"]["t"] == -1


@pytest.mark.parametrize(
    ("ratio", "expected_a"),
    [pytest.param(1.0, 1.0, id="ratioA-1"), pytest.param(0.0, 0.0, id="ratioA-0"),
     pytest.param(0.25, 0.25, id="ratioA-0.25")],
)  # fmt: skip
async def test_random_abtest_follows_ratio_a(
    graph: GraphHarness, ratio: float, expected_a: float
) -> None:
    spec = unit(
        "ab", None, model("a"), model("b"),
        implementation="RANDOM_ABTEST", params={"ratioA": ratio, "seed": 7},
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    n = 800
    routes = [(await served.ok(X))["meta"]["routing"]["ab"] for _ in range(n)]
    share_a = routes.count(0) / n
    assert abs(share_a - expected_a) < 0.06, share_a  # > 3.9 sd at 0.25
    assert served.called("predict").count("a") == routes.count(0)
    assert served.called("predict").count("b") == routes.count(1)


@pytest.mark.parametrize(
    ("implementation", "params"),
    [
        pytest.param("EPSILON_GREEDY", {"epsilon": 0.5}, id="epsilon-greedy"),
        pytest.param("THOMPSON_SAMPLING", {}, id="thompson"),
        pytest.param("UCB1", {}, id="ucb1"),
    ],
)
async def test_bandit_builtins_route_to_one_child(
    graph: GraphHarness, implementation: str, params: dict[str, Any]
) -> None:
    spec = unit(
        "bandit", None, model("a", 1.0), model("b", 2.0), model("c", 3.0),
        implementation=implementation, params={"n_branches": 3, "seed": 3, **params},
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    chosen = set()
    for i in range(60):
        body = await served.ok(X)
        branch = body["meta"]["routing"]["bandit"]
        assert branch in (0, 1, 2)
        name = "abc"[branch]
        assert served.called("predict")[i] == name  # exactly the routed child ran
        assert ndarray(body) == [[1.0 + branch + 1, 2.0 + branch + 1]]
        chosen.add(branch)
    assert len(served.called("predict")) == 60
    assert len(chosen) > 1  # they explore


async def test_methods_list_adds_transform_input_and_output(graph: GraphHarness) -> None:
    spec = unit(
        "io", None, model("m", 0.0), cls="InOut", methods=["TRANSFORM_INPUT", "TRANSFORM_OUTPUT"]
    )
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert ndarray(body) == [[4.0, 6.0]]  # ((X + 1) + 0) * 2
    assert served.calls == [("io", "transform_input"), ("m", "predict"), ("io", "transform_output")]


async def test_methods_list_on_a_typed_node(graph: GraphHarness) -> None:
    # A MODEL with TRANSFORM_OUTPUT: predict, the children, then transform_output
    spec = unit(
        "mo", "MODEL", model("m", 5.0), cls="InOutModel", methods=["TRANSFORM_OUTPUT"],
    )  # fmt: skip
    extra = """
    class InOutModel(InOut):
        def predict(self, X, names):
            record(self.node, "predict")
            return np.asarray(X, dtype=float) * 3
    """
    served = await graph.serve(deployment(spec), extra=extra)
    body = await served.ok(X)
    assert ndarray(body) == [[16.0, 22.0]]  # ((X * 3) + 5) * 2
    assert served.calls == [("mo", "predict"), ("m", "predict"), ("mo", "transform_output")]


async def test_nested_graph(graph: GraphHarness) -> None:
    # output transformer > transformer > router (child 1) > combiner > two models
    combiner = unit("c", "COMBINER", model("m1", 1.0), model("m2", 2.0), cls="Combiner")
    spec = unit(
        "o", "OUTPUT_TRANSFORMER",
        unit("t", "TRANSFORMER", router("r", 1, model("a", 99.0), combiner), cls="Transformer"),
        cls="OutputTransformer",
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert ndarray(body) == [[-23.0, -43.0]]  # -((10X + 1) + (10X + 2))
    assert body["meta"]["routing"] == {"o": -1, "t": -1, "r": 1, "c": -1, "m1": -1, "m2": -1}
    assert "a" not in served.called()
    assert served.calls[:2] == [("t", "transform_input"), ("r", "route")]
    assert served.calls[-2:] == [("c", "aggregate"), ("o", "transform_output")]
    assert set(body["meta"]["requestPath"]) >= {"o", "t", "c", "m1", "m2"}


async def test_router_inside_a_chain_after_a_model(graph: GraphHarness) -> None:
    # a MODEL whose child is a router: the router routes on the model's output
    spec = model("first", 1.0, "Model", router("r", 0, model("x", 10.0), model("y", 20.0)))
    served = await graph.serve(deployment(spec))
    body = await served.ok(X)
    assert ndarray(body) == [[12.0, 13.0]]
    assert served.called() == ["first", "r", "x"]


# ---------------------------------------------------------------- meta and puid


async def test_puid_is_generated_and_echoed(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 0.0, "Model", model("b"))))
    response = await served.predict(X)
    assert response.status_code == 200
    puid = response.headers["seldon-puid"]
    assert uuid.UUID(puid).version == 4
    assert response.json()["meta"]["puid"] == puid
    other = await served.predict(X)
    assert other.headers["seldon-puid"] != puid  # one per request
    # every node saw it in the meta it was given
    metas = served.details("predict")
    assert [name for name, _ in metas] == ["a", "b", "a", "b"]
    assert [m["puid"] for _, m in metas] == [puid, puid] + [other.headers["seldon-puid"]] * 2


async def test_given_puid_is_echoed_and_forwarded(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 0.0, "Model", model("b"))))
    response = await served.predict(X, headers={"Seldon-Puid": "my-request-1"})
    assert response.headers["seldon-puid"] == "my-request-1"
    assert response.json()["meta"]["puid"] == "my-request-1"
    assert [m["puid"] for _, m in served.details("predict")] == ["my-request-1"] * 2


async def test_body_puid_is_used_when_no_header_is_sent(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(model("a", 0.0, "Model", model("b"))))
    body = {"data": {"ndarray": [[1.0, 2.0]]}, "meta": {"puid": "from-the-body"}}
    response = await served.predict(body)
    assert response.headers["seldon-puid"] == "from-the-body"
    assert response.json()["meta"]["puid"] == "from-the-body"
    assert [m["puid"] for _, m in served.details("predict")] == ["from-the-body"] * 2
    # the header wins over the body
    response = await served.predict(body, headers={"Seldon-Puid": "from-the-header"})
    assert response.json()["meta"]["puid"] == "from-the-header"


async def test_routing_and_request_path_always_present(graph: GraphHarness) -> None:
    # even for a single built-in node that writes no requestPath of its own
    served = await graph.serve(deployment(unit("simple", None, implementation="SIMPLE_MODEL")))
    body = await served.ok(X)
    assert body["meta"]["routing"] == {"simple": -1}
    assert "requestPath" in body["meta"]
    assert body["meta"]["puid"]
    assert ndarray(body) == [[0.1, 0.9, 0.5]]


async def test_tags_from_several_nodes_merge(graph: GraphHarness) -> None:
    chain = model("a", 0.0, "Tagged", model("b", 0.0, "Tagged"))
    served = await graph.serve(deployment(chain))
    tags = (await served.ok(X))["meta"]["tags"]
    assert tags == {"a": True, "b": True, "last": "b"}


async def test_tags_merge_through_a_combiner(graph: GraphHarness) -> None:
    spec = unit(
        "c", "COMBINER", model("a", 0.0, "Tagged"), model("b", 0.0, "Tagged"), cls="Combiner"
    )
    served = await graph.serve(deployment(spec))
    tags = (await served.ok(X))["meta"]["tags"]
    assert tags["a"] is True and tags["b"] is True


# ---------------------------------------------------------------- metrics


async def test_executor_metrics(graph: GraphHarness) -> None:
    spec = unit("t", "TRANSFORMER", router("r", 1, model("a"), model("b")), cls="Transformer")
    served = await graph.serve(deployment(spec))
    for _ in range(3):
        await served.ok(X)
    samples = await served.metrics()
    server = "seldon_api_executor_server_requests_seconds_count"
    labels = {"deployment_name": "g", "predictor_name": "default"}
    assert metric_sum(samples, server, service="predictions", method="post", code="200") == 3
    assert metric_sum(samples, server, **labels, service="predictions") == 3
    client = "seldon_api_executor_client_requests_seconds_count"
    for node, service in (("t", "/transform-input"), ("r", "/route"), ("b", "/predict")):
        assert metric_sum(samples, client, **labels, model_name=node, service=service) == 3
    assert metric_sum(samples, client, model_name="a") == 0
    image = next(s for s in samples if s.name == client and s.labels["model_name"] == "b")
    assert (image.labels["model_image"], image.labels["model_version"]) == ("test/b", "0.1")
    # three hops per request (t, r, b) and one overhead observation per request
    assert metric_sum(samples, "infergraph_executor_hops_count", **labels) == 3
    assert metric_sum(samples, "infergraph_executor_hops_sum", **labels) == len(served.calls) == 9
    assert metric_sum(samples, "infergraph_executor_overhead_seconds_count", **labels) == 3
    overhead = metric_sum(samples, "infergraph_executor_overhead_seconds_sum", **labels)
    assert 0 <= overhead < 1.0


async def test_node_calls_are_measured_with_the_node_type(graph: GraphHarness) -> None:
    spec = unit("t", "TRANSFORMER", router("r", 1, model("a"), model("b")), cls="Transformer")
    served = await graph.serve(deployment(spec))
    for _ in range(2):
        await served.ok(X)
    samples = await served.metrics()
    name = "infergraph_node_request_duration_seconds_count"
    counts = {
        (s.labels["node"], s.labels["node_type"], s.labels["service"]): s.value
        for s in samples
        if s.name == name and s.labels["predictor_name"] == "default"
    }
    assert counts == {
        ("t", "TRANSFORMER", "/transform-input"): 2,
        ("r", "ROUTER", "/route"): 2,
        ("b", "MODEL", "/predict"): 2,
    }


async def test_router_decisions_and_feedback_are_counted_per_child(graph: GraphHarness) -> None:
    spec = unit(
        "bandit", None, model("a", 1.0), model("b", 2.0),
        implementation="EPSILON_GREEDY", params={"n_branches": 2, "seed": 3, "epsilon": 0.5},
    )  # fmt: skip
    served = await graph.serve(deployment(spec))
    routed: dict[str, int] = {"a": 0, "b": 0}
    rewards = {"a": 0.25, "b": 1.0}
    for _ in range(20):
        body = await served.ok(X)
        child = "ab"[body["meta"]["routing"]["bandit"]]
        routed[child] += 1
        feedback = {"request": {"data": {"ndarray": X}}, "response": body}
        ack = await served.feedback({**feedback, "reward": rewards[child]})
        assert ack.status_code == 200, ack.text
    assert all(routed.values()), routed
    samples = await served.metrics()
    for branch, child in enumerate("ab"):
        labels = {"router": "bandit", "branch": str(branch), "child": child}
        assert metric_sum(samples, "infergraph_router_routes_total", **labels) == routed[child]
        assert metric_sum(samples, "infergraph_router_feedback_total", **labels) == routed[child]
        reward = metric_sum(samples, "infergraph_router_reward_total", **labels)
        assert reward == routed[child] * rewards[child]


async def test_router_calling_every_child_is_counted_as_all(graph: GraphHarness) -> None:
    served = await graph.serve(deployment(router("r", -1, model("a"))))
    await served.ok(X)
    routes = await served.metric("infergraph_router_routes_total", branch="-1", child="*")
    assert routes == 1


async def test_hops_count_every_call_of_a_fan_out(graph: GraphHarness) -> None:
    spec = unit("c", "COMBINER", meeting("a", 1.0), meeting("b", 2.0), cls="Combiner")
    served = await graph.serve(deployment(spec))
    await served.ok(X)
    assert await served.metric("infergraph_executor_hops_sum") == len(served.calls) == 3


async def test_failed_node_call_is_labelled_with_its_status(graph: GraphHarness) -> None:
    spec = model("a", 0.0, "Model", unit("bad", "MODEL", cls="Failing", params={"status": 422}))
    served = await graph.serve(deployment(spec))
    assert (await served.predict(X)).status_code == 422
    client = "seldon_api_executor_client_requests_seconds_count"
    assert await served.metric(client, model_name="bad", code="422") == 1
    assert await served.metric(client, model_name="a", code="200") == 1
    server = "seldon_api_executor_server_requests_seconds_count"
    assert await served.metric(server, service="predictions", code="422") == 1
