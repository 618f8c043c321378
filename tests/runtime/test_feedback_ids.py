"""Feedback by request id: the routing each prediction took is kept by its puid (and V2
request id), so a feedback naming only the id reaches the routers and models that served it.

The memory store's bounds (count and TTL, on an injected clock), then the graph served in
process: REST (body puid, ``Seldon-Puid`` header, V2 request ids) and gRPC, bandits credited
on the routed arm, and unknown or expired ids refused with a 404 that credits nobody.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from infergraph.protocol import seldon_json, seldon_pb
from infergraph.protocol.message import DataKind
from infergraph.protocol.proto import inference_pb2 as v2_pb
from infergraph.protocol.proto import inference_pb2_grpc as v2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.runtime.feedback_ids import MAX_ID_LENGTH, MemoryRoutingStore
from infergraph.settings import GraphSettings
from infergraph.transport.grpc.graph import build_graph_grpc_server
from tests.helpers.graph_fixtures import GraphHarness, Served, deployment, unit
from tests.helpers.procs import http_request, poll
from tests.serving.test_processes import read_floats, router_yaml
from tests.serving.test_processes import serving as serving_processes

X = [[1.0, 2.0]]
ROUTING = {"r": 1, "b": -1}
PATH = {"r": "test/r:0.1", "b": "test/b:0.1"}
FEEDBACK_TOTAL = "seldon_api_model_feedback_total"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- the memory store


async def test_memory_store_finds_what_it_recorded() -> None:
    store = MemoryRoutingStore(10, 60.0, clock=Clock())
    await store.record(("p-1", "v2-1"), "default", ROUTING, PATH)
    for request_id in ("p-1", "v2-1"):  # one prediction, two ids
        served = await store.lookup(request_id)
        assert served is not None
        assert (served.predictor, dict(served.routing), dict(served.request_path)) == (
            "default",
            ROUTING,
            PATH,
        )
    assert await store.lookup("p-2") is None
    assert len(store) == 2


async def test_memory_store_forgets_after_the_ttl() -> None:
    clock = Clock()
    store = MemoryRoutingStore(10, 60.0, clock=clock)
    await store.record(("old",), "default", ROUTING, PATH)
    clock.now += 30.0
    await store.record(("young",), "default", ROUTING, PATH)
    clock.now += 29.999
    assert await store.lookup("old") is not None  # just inside its 60 s
    clock.now += 0.001
    assert await store.lookup("old") is None  # expired at exactly 60 s
    assert await store.lookup("young") is not None
    await store.record(("new",), "default", ROUTING, PATH)  # expired entries leave
    assert len(store) == 2
    clock.now += 60.0
    await store.record(("newest",), "default", ROUTING, PATH)
    assert len(store) == 1


async def test_memory_store_keeps_only_the_last_capacity_ids() -> None:
    store = MemoryRoutingStore(3, 60.0, clock=Clock())
    for i in range(5):
        await store.record((f"p-{i}",), "default", {"r": i % 2}, PATH)
    assert len(store) == 3
    assert [await store.lookup(f"p-{i}") is not None for i in range(5)] == [0, 0, 1, 1, 1]
    served = await store.lookup("p-3")
    assert served is not None and dict(served.routing) == {"r": 1}


async def test_an_id_recorded_again_gets_its_latest_routing_and_a_fresh_ttl() -> None:
    clock = Clock()
    store = MemoryRoutingStore(3, 60.0, clock=clock)
    await store.record(("same",), "default", {"r": 0}, PATH)
    clock.now += 50.0
    await store.record(("same",), "default", {"r": 1}, PATH)
    for i in range(2):  # the queue holds same (twice) and two others: same's old entry goes
        await store.record((f"other-{i}",), "default", ROUTING, PATH)
    clock.now += 20.0  # past the first recording's TTL, inside the second's
    served = await store.lookup("same")
    assert served is not None and dict(served.routing) == {"r": 1}


async def test_memory_store_shares_identical_routings() -> None:
    store = MemoryRoutingStore(100, 60.0, clock=Clock())
    for i in range(40):  # fresh dicts each time, as the executor makes them
        await store.record((f"p-{i}",), "default", {"r": i % 2, "b": -1}, dict(PATH))
    values = {id(await store.lookup(f"p-{i}")) for i in range(40)}
    assert len(values) == 2


@pytest.mark.parametrize(
    "request_id",
    [pytest.param("", id="empty"), pytest.param("x" * (MAX_ID_LENGTH + 1), id="too-long")],
)
async def test_memory_store_does_not_record_empty_or_huge_ids(request_id: str) -> None:
    store = MemoryRoutingStore(10, 60.0, clock=Clock())
    await store.record((request_id,), "default", ROUTING, PATH)
    assert len(store) == 0
    assert await store.lookup(request_id) is None


@pytest.mark.parametrize(
    ("capacity", "ttl"),
    [pytest.param(0, 60.0, id="no-capacity"), pytest.param(5, 0.0, id="no-ttl")],
)
def test_memory_store_refuses_empty_bounds(capacity: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="capacity >= 1 and ttl_s > 0"):
        MemoryRoutingStore(capacity, ttl)


def test_settings_from_the_environment() -> None:
    default = GraphSettings.from_env({})
    assert (default.feedback_id_capacity, default.feedback_id_ttl) == (100_000, 3600.0)
    env = {"INFERGRAPH_FEEDBACK_ID_CAPACITY": "50", "INFERGRAPH_FEEDBACK_ID_TTL": "2.5"}
    settings = GraphSettings.from_env(env)
    assert (settings.feedback_id_capacity, settings.feedback_id_ttl) == (50, 2.5)


def test_a_feedback_part_with_only_meta_decodes_as_an_empty_message() -> None:
    from_json = seldon_json.decode_feedback({"response": {"meta": {"puid": "p-1"}}, "reward": 1})
    proto = pb.Feedback(reward=1.0)
    proto.response.meta.puid = "p-1"
    for feedback in (from_json, seldon_pb.decode_feedback(proto)):
        assert feedback.response is not None
        assert (feedback.response.kind, feedback.response.meta.puid) == (DataKind.NONE, "p-1")
        assert feedback.request is None and feedback.reward == 1.0


# ---------------------------------------------------------------- the graph, over REST


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[GraphHarness]:
    async with GraphHarness(tmp_path) as harness:
        yield harness


def model(name: str, add: float = 0.0) -> dict[str, Any]:
    return unit(name, "MODEL", cls="Model", params={"add": add})


def router_graph() -> dict[str, Any]:
    return deployment(
        unit("r", "ROUTER", model("a"), model("b", 1.0), cls="Router", params={"choice": 1})
    )


def bandit_graph() -> dict[str, Any]:
    spec = unit(
        "bandit", None, model("a"), model("b", 1.0),
        implementation="EPSILON_GREEDY", params={"n_branches": 2, "seed": 3, "epsilon": 0.5},
    )  # fmt: skip
    return deployment(spec)


def by_id(request_id: str, reward: float = 1.0) -> dict[str, Any]:
    """The feedback form any client can send: the response's puid, and the reward."""
    return {"response": {"meta": {"puid": request_id}}, "reward": reward}


def counts(served: Served) -> tuple[list[int], list[int]]:
    bandit = served.user("bandit")
    snapshot = bandit.store.read(bandit.key, 2)
    return list(snapshot.successes), list(snapshot.tries)


async def test_feedback_by_puid_is_applied_as_if_the_routing_had_been_sent(
    graph: GraphHarness,
) -> None:
    served = await graph.serve(router_graph())
    body = await served.ok(X, headers={"Seldon-Puid": "req-1"})
    assert body["meta"]["puid"] == "req-1"
    served.reset()
    replayed = await served.feedback(
        {"request": {"data": {"ndarray": X}}, "response": body, "reward": 1.0}
    )
    assert replayed.status_code == 200, replayed.text
    expected = served.details("send_feedback")
    assert expected == [("b", {"reward": 1.0, "routing": -1}), ("r", {"reward": 1.0, "routing": 1})]

    for request in (by_id("req-1"), {**by_id("req-1"), "request": {"data": {"ndarray": X}}}):
        served.reset()
        response = await served.feedback(request)
        assert response.status_code == 200, response.text
        assert served.details("send_feedback") == expected
        assert response.headers["seldon-puid"] == "req-1"
    assert await served.metric(FEEDBACK_TOTAL, model_name="a") == 0
    assert await served.metric(FEEDBACK_TOTAL, model_name="b") == 3


async def test_feedback_by_the_seldon_puid_header(graph: GraphHarness) -> None:
    served = await graph.serve(router_graph())
    body = await served.ok(X)
    puid = body["meta"]["puid"]  # generated by the graph
    served.reset()
    response = await served.feedback({"reward": 0.5}, headers={"Seldon-Puid": puid})
    assert response.status_code == 200, response.text
    assert served.details("send_feedback") == [
        ("b", {"reward": 0.5, "routing": -1}),
        ("r", {"reward": 0.5, "routing": 1}),
    ]


async def test_feedback_by_id_rewards_the_bandit_arm_that_answered(graph: GraphHarness) -> None:
    served = await graph.serve(bandit_graph())
    sent = {0: 0, 1: 0}
    for i in range(20):
        body = await served.ok(X, headers={"Seldon-Puid": f"p-{i}"})
        branch = body["meta"]["routing"]["bandit"]
        reward = 1.0 if branch == 1 else 0.0
        response = await served.feedback(by_id(f"p-{i}", reward))
        assert response.status_code == 200, response.text
        sent[branch] += 1
    assert sent[0] and sent[1]  # epsilon 0.5 explores both
    successes, tries = counts(served)
    assert tries == [sent[0], sent[1]]
    assert successes == [0, sent[1]]


@pytest.mark.parametrize(
    ("kind", "request_id"),
    [
        pytest.param("never-seen", "nobody-sent-this", id="unknown"),
        pytest.param("expired", "p-old", id="expired"),
        pytest.param("evicted", "p-old", id="evicted"),
    ],
)
async def test_an_unknown_or_expired_id_is_a_404_that_credits_nobody(
    graph: GraphHarness, seldon_error: Any, kind: str, request_id: str
) -> None:
    served = await graph.serve(bandit_graph())
    clock = Clock()
    served.dp.routings = store = MemoryRoutingStore(2, 60.0, clock=clock)
    await served.ok(X, headers={"Seldon-Puid": "p-old"})
    if kind == "expired":
        clock.now += 60.0
    elif kind == "evicted":
        for i in range(2):
            await served.ok(X, headers={"Seldon-Puid": f"p-new-{i}"})
    before = counts(served)
    served.reset()
    for request in ({"body": by_id(request_id)}, {"body": {"reward": 1}, "header": request_id}):
        headers = {"Seldon-Puid": request["header"]} if "header" in request else None
        response = await served.feedback(request["body"], headers=headers)
        block = seldon_error(response, 404, "MICROSERVICE_BAD_DATA", repr(request_id))
        assert "unknown or expired" in block["info"], block["info"]
        assert "last 2 predictions for 60 s" in block["info"], block["info"]
    assert served.called("send_feedback") == []
    assert counts(served) == before
    assert await served.metric(FEEDBACK_TOTAL) == 0
    assert await served.metric("seldon_api_model_feedback_reward_total") == 0
    assert store.limits() in block["info"]


async def test_a_refused_feedback_by_id_credits_no_model_below_the_bandit(
    graph: GraphHarness, seldon_error: Any
) -> None:
    served = await graph.serve(bandit_graph())
    await served.ok(X, headers={"Seldon-Puid": "p-1"})
    before = counts(served)
    response = await served.feedback(by_id("p-1", reward=2.0))  # a bandit takes 0..1
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "node 'bandit'", "between 0 and 1")
    assert served.called("send_feedback") == []
    assert counts(served) == before
    assert await served.metric(FEEDBACK_TOTAL) == 0


async def test_bandit_feedback_without_routing_or_id_credits_no_model(
    graph: GraphHarness, seldon_error: Any
) -> None:
    served = await graph.serve(bandit_graph())
    body = {"request": {"data": {"ndarray": X}}, "response": {"data": {"ndarray": X}}, "reward": 1}
    seldon_error(
        await served.feedback(body), 400, "MICROSERVICE_BAD_DATA", "node 'bandit'", "routing"
    )
    assert served.called("send_feedback") == []  # a and b were credited before this fix
    assert await served.metric(FEEDBACK_TOTAL) == 0


async def test_routing_sent_with_the_feedback_wins_over_the_id(graph: GraphHarness) -> None:
    served = await graph.serve(router_graph())
    await served.ok(X, headers={"Seldon-Puid": "p-1"})  # routed to b
    served.reset()
    body = {"response": {"meta": {"puid": "p-1", "routing": {"r": 0}}}, "reward": 1}
    assert (await served.feedback(body)).status_code == 200
    assert served.called("send_feedback") == ["a", "r"]


async def test_feedback_by_id_can_be_turned_off(graph: GraphHarness) -> None:
    served = await graph.serve(router_graph(), feedback_id_capacity=0)
    assert served.dp.routings is None
    await served.ok(X, headers={"Seldon-Puid": "p-1"})
    served.reset()
    assert (await served.feedback(by_id("p-1"))).status_code == 200
    assert sorted(served.called("send_feedback")) == ["a", "b", "r"]  # Seldon's: no routing


V2_ROW = {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="id-is-the-puid"),
        pytest.param({"Seldon-Puid": "p-9"}, id="and-a-puid"),
    ],
)
async def test_v2_request_id_names_the_feedback(graph: GraphHarness, headers: Any) -> None:
    served = await graph.serve(bandit_graph())
    answer = await served.client.post(
        "/v2/models/g/infer", json={"id": "v2-req-7", "inputs": [V2_ROW]}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == "v2-req-7"
    branch = 0 if answer.json()["outputs"][0]["data"] == [1.0, 2.0] else 1
    served.reset()
    response = await served.feedback(by_id("v2-req-7", 1.0))
    assert response.status_code == 200, response.text
    assert served.called("send_feedback") == ["ab"[branch]]  # and the (built-in) bandit:
    assert counts(served) == ([int(branch == 0), int(branch == 1)],) * 2
    if headers is not None:  # the puid names the same prediction
        assert (await served.feedback(by_id("p-9", 0.0))).status_code == 200
        assert counts(served)[1] == [2 * int(branch == 0), 2 * int(branch == 1)]


# ---------------------------------------------------------------- the graph, over gRPC


@pytest.fixture
async def grpc_channel(graph: GraphHarness) -> AsyncIterator[Any]:
    """``await grpc_channel(served)`` -> a channel to a real gRPC server for that graph."""
    servers: list[Any] = []
    channels: list[grpc.aio.Channel] = []

    async def make(served: Served) -> grpc.aio.Channel:
        server = build_graph_grpc_server(served.dp, max_message_size=1 << 20)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        return channels[-1]

    yield make
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


def seldon_message(rows: list[list[float]]) -> pb.SeldonMessage:
    return json_format.ParseDict({"data": {"ndarray": rows}}, pb.SeldonMessage())


async def test_grpc_feedback_by_id(graph: GraphHarness, grpc_channel: Any) -> None:
    served = await graph.serve(bandit_graph())
    stub = pb_grpc.SeldonStub(await grpc_channel(served))
    answer = await stub.Predict(seldon_message(X), metadata=(("seldon-puid", "g-1"),), timeout=10)
    branch = answer.meta.routing["bandit"]
    assert answer.meta.puid == "g-1"

    feedback = pb.Feedback(reward=1.0)
    feedback.response.meta.puid = "g-1"  # the response's puid only
    await stub.SendFeedback(feedback, timeout=10)
    successes, tries = counts(served)
    assert tries[branch] == successes[branch] == 1 and sum(tries) == 1

    await stub.SendFeedback(pb.Feedback(reward=0.0), metadata=(("seldon-puid", "g-1"),), timeout=10)
    assert counts(served)[1][branch] == 2  # by the seldon-puid metadata key

    before = counts(served)
    feedback.response.meta.puid = "g-unknown"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SendFeedback(feedback, timeout=10)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    details = refused.value.details() or ""
    assert "'g-unknown'" in details and "unknown or expired" in details and "3600 s" in details
    assert counts(served) == before
    assert await served.metric(FEEDBACK_TOTAL, model_name="bandit") == 1  # the reward of 1


async def test_grpc_v2_request_id_names_the_feedback(
    graph: GraphHarness, grpc_channel: Any
) -> None:
    served = await graph.serve(bandit_graph())
    channel = await grpc_channel(served)
    request = v2_pb.ModelInferRequest(model_name="g", id="v2-grpc-1")
    request.inputs.add(name="x", datatype="FP64", shape=[1, 2]).contents.fp64_contents.extend(
        [1, 2]
    )
    await v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    feedback = pb.Feedback(reward=1.0)
    feedback.response.meta.puid = "v2-grpc-1"
    await pb_grpc.SeldonStub(channel).SendFeedback(feedback, timeout=10)
    successes, tries = counts(served)
    assert sum(tries) == sum(successes) == 1


# ---------------------------------------------------------------- models in their own processes


@pytest.mark.slow
@pytest.mark.parametrize(
    "transport", [pytest.param("grpc", id="grpc"), pytest.param("rest", id="rest")]
)
def test_feedback_by_id_reaches_model_processes(tmp_path: Path, transport: str) -> None:
    spec = router_yaml(tmp_path)  # EPSILON_GREEDY always on model-a
    spec["spec"]["transport"] = transport
    spec["spec"]["predictors"][0]["componentSpecs"][0]["replicas"] = 1
    with serving_processes(tmp_path, spec) as graph:
        status, body = graph.predict([[1, 2]])
        assert status == 200, body
        feedback = by_id(body["meta"]["puid"], 0.75)  # the node gets a response of meta only
        status, _, data = http_request(graph.http, "POST", "/api/v1.0/feedback", feedback)
        assert status == 200, data
        rewards = poll(lambda: read_floats(tmp_path / "rewards-model-a"), what="the reward")
        assert rewards == [0.75]
        assert not (tmp_path / "rewards-model-b").exists()
