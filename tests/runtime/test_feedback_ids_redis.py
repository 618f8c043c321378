"""Feedback by request id across replicas: with ``--redis-url`` the routing of each prediction
is kept in Redis with a TTL, so a feedback naming only the id may reach any replica.

The Redis store on a real ``redis-server``, then two real ``infergraph serve`` processes
sharing one: predictions on one, feedback by id (REST and gRPC, puid and V2 request id) on
the other, and the bandit's Redis hash must hold exactly what was sent.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import redis

from infergraph.errors import NotReady
from infergraph.protocol.proto import inference_pb2 as v2_pb
from infergraph.protocol.proto import inference_pb2_grpc as v2_grpc
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.routers import RedisStore
from infergraph.runtime.feedback_ids import RedisRoutingStore
from tests.helpers import redis_server
from tests.helpers.ports import HoldPorts
from tests.routers.test_bandit_serve_redis import (
    bandit_key,
    read_hash,
    start_server,
    write_deployment,
)

pytestmark = pytest.mark.slow

redis_url = redis_server.redis_url  # the session's redis-server

ROUTING = {"router": 1, "b": -1}
PATH = {"router": "EPSILON_GREEDY", "b": "example.com/b:1"}
REQUEST = {"data": {"ndarray": [[1.0]]}}
TTL = 120.0


@pytest.fixture
def shared(redis_url: str) -> Iterator[tuple[RedisStore, RedisRoutingStore]]:
    bandits = RedisStore(redis_url)
    store = RedisRoutingStore(bandits.client, deployment="unit", ttl_s=TTL, url=bandits.url)
    try:
        yield bandits, store
    finally:
        bandits.close()


async def test_redis_store_keeps_each_id_with_a_ttl(
    redis_url: str, shared: tuple[RedisStore, RedisRoutingStore]
) -> None:
    _, store = shared
    await store.record(("r-1", "v2-r-1"), "default", ROUTING, PATH)
    for request_id in ("r-1", "v2-r-1"):
        served = await store.lookup(request_id)
        assert served is not None
        assert (served.predictor, served.routing, served.request_path) == (
            "default",
            ROUTING,
            PATH,
        )
    assert await store.lookup("r-unknown") is None
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < client.pttl("infergraph_unit_puid_r-1") <= TTL * 1000
        client.set("infergraph_unit_puid_r-bad", b"not json")  # not ours: ignored, not a crash
    finally:
        client.close()
    assert await store.lookup("r-bad") is None
    assert "Redis at redis://127.0.0.1:" in store.limits() and "120 s" in store.limits()


async def test_redis_store_unavailable(
    caplog: pytest.LogCaptureFixture, held_ports: HoldPorts
) -> None:
    url = f"redis://127.0.0.1:{held_ports(1)[0]}/0"  # nothing listens there
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    store = RedisRoutingStore(client, deployment="unit", ttl_s=TTL, url=url)
    try:
        for _ in range(2):  # logged once; the prediction's answer still goes out
            await store.record(("r-2",), "default", ROUTING, PATH)
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and url in warnings[0], warnings
        with pytest.raises(NotReady, match=f"cannot read its routing from Redis at {url}"):
            await store.lookup("r-2")
    finally:
        client.close()


@contextlib.contextmanager
def two_servers(folder: Path, url: str) -> Iterator[list[tuple[httpx.Client, int]]]:
    manifest = write_deployment(folder, "by-id", "EPSILON_GREEDY")
    servers = [
        start_server(folder, manifest, url, env={"INFERGRAPH_FEEDBACK_ID_TTL": str(TTL)})
        for _ in range(2)
    ]
    clients: list[httpx.Client] = []
    try:
        for server in servers:
            server.wait_ready()
            clients.append(httpx.Client(base_url=f"http://127.0.0.1:{server.http}", timeout=30))
        yield [(client, server.grpc) for client, server in zip(clients, servers, strict=True)]
        for server in servers:
            assert "Traceback" not in server.stderr(), server.stderr()
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.kill()


def test_predict_on_one_server_feedback_by_id_on_the_other(redis_url: str, tmp_path: Path) -> None:
    key = bandit_key("by-id")
    with two_servers(tmp_path, redis_url) as servers:
        sent: Counter[tuple[int, float]] = Counter()
        for i in range(16):  # REST: the puid in the feedback's body, or in its header
            (client, _), (other, _) = servers[i % 2], servers[1 - i % 2]
            puid = f"two-{i}"
            answer = client.post(
                "/api/v1.0/predictions", json=REQUEST, headers={"Seldon-Puid": puid}
            )
            assert answer.status_code == 200, answer.text
            branch = answer.json()["meta"]["routing"]["router"]
            reward = 1.0 if branch == 1 else 0.25
            if i % 4 < 2:
                ack = other.post(
                    "/api/v1.0/feedback",
                    json={"response": {"meta": {"puid": puid}}, "reward": reward},
                )
            else:
                ack = other.post(
                    "/api/v1.0/feedback", json={"reward": reward}, headers={"Seldon-Puid": puid}
                )
            assert ack.status_code == 200, ack.text
            sent[(branch, reward)] += 1

        # V2 over REST on one, feedback over gRPC on the other; then V2 over gRPC, feedback
        # over REST
        rest, grpc_port = servers[0][0], servers[1][1]
        v2 = {
            "id": "v2-two",
            "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}],
        }
        answer = rest.post("/v2/models/by-id/infer", json=v2)
        assert answer.status_code == 200, answer.text
        branch = 0 if answer.json()["outputs"][0]["data"] == [10.0] else 1
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            feedback = pb.Feedback(reward=1.0)
            feedback.response.meta.puid = "v2-two"
            pb_grpc.SeldonStub(channel).SendFeedback(feedback, timeout=30)
            sent[(branch, 1.0)] += 1
            request = v2_pb.ModelInferRequest(model_name="by-id", id="v2-grpc-two")
            request.inputs.add(
                name="x", datatype="FP64", shape=[1, 1]
            ).contents.fp64_contents.append(1.0)
            v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        with contextlib.closing(redis.Redis.from_url(redis_url)) as client:
            recorded = client.get("infergraph_by-id_puid_v2-grpc-two")  # what gRPC's V2 took
            assert 0 < client.pttl("infergraph_by-id_puid_two-0") <= TTL * 1000
        branch = json.loads(recorded or b"{}")["r"]["router"]
        ack = rest.post(
            "/api/v1.0/feedback",
            json={"response": {"meta": {"puid": "v2-grpc-two"}}, "reward": 0.0},
        )
        assert ack.status_code == 200, ack.text
        sent[(branch, 0.0)] += 1

        fields = read_hash(redis_url, key)
        assert fields["feedback"] == sum(sent.values())
        assert fields["reward"] == sum(r * n for (_, r), n in sent.items())
        for b in (0, 1):  # one row: a reward of 1.0 is a success, anything less a failure
            wins = sum(n for (x, r), n in sent.items() if x == b and r == 1.0)
            losses = sum(n for (x, r), n in sent.items() if x == b and r != 1.0)
            assert (fields.get(f"successes:{b}", 0), fields.get(f"failures:{b}", 0)) == (
                wins,
                losses,
            )

        # an id no replica recorded: a 404 on both transports, and nothing recorded
        refused = servers[1][0].post(
            "/api/v1.0/feedback", json={"response": {"meta": {"puid": "never"}}, "reward": 1}
        )
        assert refused.status_code == 404, refused.text
        info = refused.json()["status"]["info"]
        assert "'never'" in info and "unknown or expired" in info and "120 s" in info, info
        with grpc.insecure_channel(f"127.0.0.1:{servers[0][1]}") as channel:
            feedback = pb.Feedback(reward=1.0)
            feedback.response.meta.puid = "never"
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.SeldonStub(channel).SendFeedback(feedback, timeout=30)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value
        assert read_hash(redis_url, key) == fields
