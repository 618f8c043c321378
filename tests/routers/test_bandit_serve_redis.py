"""``infergraph serve --redis-url``: bandit routers of several server processes share one state.

Two real ``python -m infergraph serve`` processes serve the same SeldonDeployment (a bandit
router over two models) against a real ``redis-server``. Predictions and feedback hit both at
once, feedback often going to the server that did *not* answer the prediction; the router's
Redis hash must then hold exactly what was sent, and both servers must route on it. When
Redis is missing at start the server refuses to start; when it goes away while serving,
predictions and feedback fail fast with a 503 and feedback is never acknowledged unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.routers import seldon_key
from tests.helpers import procs, redis_server
from tests.helpers.ports import HeldPorts, HoldPorts, released_ports

pytestmark = pytest.mark.slow

redis_url = redis_server.redis_url  # the session's redis-server

PREDICTOR = "default"
ROUTER = "router"
OUTPUTS = {0: 10.0, 1: 20.0}  # what models.A (branch 0) and models.B (branch 1) predict
REQUEST = {"data": {"ndarray": [[1.0]]}}  # one row: a reward of 1.0 is one success
REWARDS = (0.0, 0.25, 0.5, 1.0)  # exact in binary floating point, so sums compare with ==
# Branch 1 is the better model: 60% of its rewards are 1.0 (a success), 10% of branch 0's.
WEIGHTS = {0: (0.4, 0.3, 0.2, 0.1), 1: (0.1, 0.1, 0.2, 0.6)}
PREDICTIONS = 300  # per server
WORKERS = 8  # concurrent predict-then-feedback loops per server
AFTER = 100  # predictions per server once the bandit has learned
REDIS_TIMEOUT = 5.0  # RedisStore's socket timeout in the server
ANSWER_BOUND = REDIS_TIMEOUT + 5.0  # how long a request may take while Redis is away

MODELS = """
class A:
    def predict(self, X, names, meta=None):
        return [[10.0]]


class B:
    def predict(self, X, names, meta=None):
        return [[20.0]]
"""


def write_deployment(folder: Path, name: str, implementation: str) -> Path:
    """A SeldonDeployment: a bandit router ``router`` over models ``a`` and ``b``."""
    procs.write_module(folder, "models", MODELS)
    params = ['{name: n_branches, value: "2", type: INT}', '{name: seed, value: "7", type: INT}']
    if implementation == "EPSILON_GREEDY":
        params.append('{name: epsilon, value: "0.1", type: FLOAT}')
    manifest = folder / "deployment.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: machinelearning.seldon.io/v1
            kind: SeldonDeployment
            metadata:
              name: {name}
            spec:
              predictors:
                - name: {PREDICTOR}
                  componentSpecs:
                    - spec:
                        containers:
                          - name: a
                            image: example.com/a:1
                            env:
                              - {{name: MODEL_NAME, value: models.A}}
                          - name: b
                            image: example.com/b:1
                            env:
                              - {{name: MODEL_NAME, value: models.B}}
                  graph:
                    name: {ROUTER}
                    implementation: {implementation}
                    parameters: [{", ".join(params)}]
                    children:
                      - name: a
                      - name: b
            """
        )
    )
    return manifest


def bandit_key(name: str) -> str:
    """The router node's Redis key (one per deployment, predictor and node)."""
    return seldon_key(name, PREDICTOR, ROUTER, "-bandit")


def serve_command(manifest: Path, *args: str) -> list[str]:
    return [procs.PYTHON, "-m", "infergraph", "serve", str(manifest), *args]


def start_server(
    folder: Path, manifest: Path, url: str | None, env: dict[str, str] | None = None
) -> procs.Service:
    """Start ``infergraph serve`` in its own session on held ports (not waited for)."""
    held = HeldPorts(2)
    http_port, grpc_port = held.ports
    args = ["--path", str(folder), "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    if url is not None:
        args += ["--redis-url", url]
    logs = folder / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            serve_command(manifest, *args),
            cwd=folder,
            env=procs.clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return procs.Service(proc, http_port, grpc_port, 0, logs, held=held)


@contextlib.contextmanager
def serving(folder: Path, manifest: Path, url: str, count: int) -> Iterator[list[procs.Service]]:
    """``count`` ready servers of ``manifest`` sharing ``url``; all killed on exit."""
    servers: list[procs.Service] = []
    try:
        for _ in range(count):  # start all, then wait: they load side by side
            servers.append(start_server(folder, manifest, url))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.kill()


def read_hash(url: str, key: str) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    try:
        return {k.decode(): float(v) for k, v in client.hgetall(key).items()}
    finally:
        client.close()


def branch_of(response: dict[str, Any]) -> int:
    """The branch the router chose, checked against the model that answered."""
    branch = response["meta"]["routing"][ROUTER]
    assert response["data"]["ndarray"] == [[OUTPUTS[branch]]], response
    return int(branch)


def feedback_body(response: dict[str, Any], reward: float) -> dict[str, Any]:
    return {"request": REQUEST, "response": response, "reward": reward}


# ---------------------------------------------------------------- shared, exact state


async def send_traffic(ports: list[int], seed: int) -> list[tuple[int, int, int, float]]:
    """Predict ``PREDICTIONS`` times on each server and send feedback for every response.

    Returns one ``(predicted_on, feedback_to, branch, reward)`` per feedback. Rewards come
    from a fixed-seed plan per (server, request): one draw per branch, used for the branch the
    router chose; half of the feedback goes to the other server.
    """
    rng = random.Random(seed)
    plan = [
        [
            (
                rng.choices(REWARDS, WEIGHTS[0])[0],
                rng.choices(REWARDS, WEIGHTS[1])[0],
                rng.random() < 0.5,
            )
            for _ in range(PREDICTIONS)
        ]
        for _ in ports
    ]
    sent: list[tuple[int, int, int, float]] = []
    limits = httpx.Limits(max_connections=4 * WORKERS)
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0, limits=limits)
        for port in ports
    ]

    async def loop(server: int, todo: Iterator[int]) -> None:
        for i in todo:
            answer = await clients[server].post("/api/v1.0/predictions", json=REQUEST)
            assert answer.status_code == 200, answer.text
            response = answer.json()
            branch = branch_of(response)
            reward = plan[server][i][branch]
            target = 1 - server if plan[server][i][2] else server
            ack = await clients[target].post(
                "/api/v1.0/feedback", json=feedback_body(response, reward)
            )
            assert ack.status_code == 200, ack.text
            sent.append((server, target, branch, reward))

    try:
        async with asyncio.TaskGroup() as group:
            for server in range(len(ports)):
                todo = iter(range(PREDICTIONS))  # shared by this server's workers
                for _ in range(WORKERS):
                    group.create_task(loop(server, todo))
    finally:
        for client in clients:
            await client.aclose()
    return sent


async def routes(port: int, n: int) -> Counter[int]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
        answers = await asyncio.gather(
            *(client.post("/api/v1.0/predictions", json=REQUEST) for _ in range(n))
        )
    for answer in answers:
        assert answer.status_code == 200, answer.text
    return Counter(branch_of(answer.json()) for answer in answers)


def ucb1_choice(fields: dict[str, float]) -> int:
    """The branch UCB1 picks from these counters (no ties expected with these numbers)."""
    scores = []
    tries = [fields[f"successes:{b}"] + fields[f"failures:{b}"] for b in (0, 1)]
    for b in (0, 1):
        bonus = math.sqrt(2.0 * math.log(sum(tries)) / tries[b])
        scores.append(fields[f"successes:{b}"] / tries[b] + bonus)
    assert scores[0] != scores[1], scores
    return scores.index(max(scores))


@pytest.mark.parametrize("implementation", ["EPSILON_GREEDY", "THOMPSON_SAMPLING", "UCB1"])
async def test_two_servers_sharing_redis_lose_no_feedback(
    redis_url: str, tmp_path: Path, implementation: str
) -> None:
    name = implementation.lower().replace("_", "-")  # a key of its own in the session's Redis
    manifest = write_deployment(tmp_path, name, implementation)
    key = bandit_key(name)
    with serving(tmp_path, manifest, redis_url, 2) as servers:
        ports = [s.http for s in servers]
        sent = await send_traffic(ports, seed=2024)
        fields = read_hash(redis_url, key)

        # every feedback is recorded exactly once, whichever server took it
        assert len(sent) == 2 * PREDICTIONS
        assert Counter((p, t) for p, t, _, _ in sent)[(0, 1)] > PREDICTIONS // 4  # crossed
        assert Counter((p, t) for p, t, _, _ in sent)[(1, 0)] > PREDICTIONS // 4
        assert set(fields) <= {
            "feedback",
            "reward",
            *(f"{c}:{b}" for c in ("successes", "failures") for b in (0, 1)),
        }
        assert fields["feedback"] == len(sent)
        assert fields["reward"] == sum(reward for *_, reward in sent)  # exact: no lost update
        for b in (0, 1):
            rewards = [reward for _, _, branch, reward in sent if branch == b]
            # Seldon's rule with one row: successes = int(reward * 1)
            assert fields.get(f"successes:{b}", 0) == sum(r == 1.0 for r in rewards), b
            assert fields.get(f"failures:{b}", 0) == sum(r != 1.0 for r in rewards), b

        # both servers now route on the shared counters: branch 1 is the better model
        tries = [fields.get(f"successes:{b}", 0) + fields.get(f"failures:{b}", 0) for b in (0, 1)]
        rate = [fields.get(f"successes:{b}", 0) / max(tries[b], 1) for b in (0, 1)]
        assert rate[1] > rate[0] + 0.2, fields
        shares = await asyncio.gather(*(routes(port, AFTER) for port in ports))
        if implementation == "UCB1":  # deterministic given the counters: both agree
            best = ucb1_choice(fields)
            assert shares == [Counter({best: AFTER})] * 2, (shares, fields)
        else:
            for share in shares:
                assert share[1] >= 0.75 * AFTER, (share, fields)
        if implementation == "EPSILON_GREEDY":  # epsilon 0.1 still explores branch 0
            assert 0 < shares[0][0] + shares[1][0] <= 0.25 * 2 * AFTER, shares
        print(
            f"{implementation}: feedback {len(sent)} sent / {fields['feedback']:g} recorded; "
            f"reward {sum(r for *_, r in sent)} sent / {fields['reward']} recorded; "
            f"branches of feedback {Counter(b for _, _, b, _ in sent)}; "
            f"fields {fields}; routes after: {[dict(s) for s in shares]}"
        )
        for server in servers:
            assert "Traceback" not in server.stderr(), server.stderr()


# ---------------------------------------------------------------- Redis missing or lost


@pytest.mark.parametrize("via", ["flag", "env"])
def test_unreachable_redis_at_start_exits_naming_the_url(
    tmp_path: Path, via: str, held_ports: HoldPorts
) -> None:
    manifest = write_deployment(tmp_path, "unreachable", "EPSILON_GREEDY")
    (port,) = held_ports(1)  # nothing listens there
    url = f"redis://127.0.0.1:{port}/0"
    shown = url
    if via == "env":  # the password must not be shown
        url, shown = f"redis://:s3cret@127.0.0.1:{port}/0", f"redis://:***@127.0.0.1:{port}/0"
    server = start_server(
        tmp_path,
        manifest,
        url if via == "flag" else None,
        env={"INFERGRAPH_REDIS_URL": url} if via == "env" else None,
    )
    try:
        code = server.wait(timeout=30.0)
    finally:
        server.kill()
    err = server.stderr()
    assert code != 0, err
    assert shown in err, err
    assert "Cannot reach Redis" in err, err
    assert "Traceback" not in err, err
    assert "s3cret" not in err, err


@dataclass
class OwnRedis:
    """A redis-server of one test's own, which the test may stop, pause and restart."""

    executable: str
    workdir: Path
    port: int
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc, url = redis_server._start(self.executable, self.workdir, self.port)
        assert url == self.url

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a paused server cannot terminate
            redis_server._stop(self.proc)
            self.proc = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Redis hangs: connections stay open, nothing is answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(redis_server.INSTALL_HINT, pytrace=False)
    workdir = tmp_path / "redis"
    workdir.mkdir()
    (port,) = released_ports(1)  # redis-server binds without SO_REUSEPORT
    server = OwnRedis(executable, workdir, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


PREDICTIONS_PATH, FEEDBACK_PATH = "/api/v1.0/predictions", "/api/v1.0/feedback"


def timed_post(port: int, path: str, body: Any) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    status, _, data = procs.http_request(port, "POST", path, body, timeout=3 * ANSWER_BOUND)
    return status, json.loads(data), time.monotonic() - start


def timed_get(port: int, path: str) -> tuple[int, float]:
    start = time.monotonic()
    status, _, _ = procs.http_request(port, "GET", path, timeout=3 * ANSWER_BOUND)
    return status, time.monotonic() - start


def assert_unavailable(status: int, body: dict[str, Any], seconds: float, url: str) -> str:
    """A Seldon error JSON with HTTP 503 naming Redis and its URL, answered in time."""
    assert status == 503, (status, body)
    assert set(body) == {"status"}, body
    info = body["status"]["info"]
    assert "Redis" in info and url in info, info
    assert "Traceback" not in json.dumps(body), body
    assert seconds < ANSWER_BOUND, seconds
    return info


@contextlib.contextmanager
def served_on(own: OwnRedis, folder: Path) -> Iterator[tuple[procs.Service, str, dict[str, Any]]]:
    """One server on ``own``: (server, router key, a response that feedback can refer to)."""
    name = "goes-away"
    manifest = write_deployment(folder, name, "EPSILON_GREEDY")
    with serving(folder, manifest, own.url, 1) as (server,):
        for _ in range(20):  # warm: the router's calls now take their usual time
            status, response, _ = timed_post(server.http, PREDICTIONS_PATH, REQUEST)
            assert status == 200, response
        yield server, bandit_key(name), response
        assert server.proc.poll() is None, server.stderr()  # it never died meanwhile
        assert "Traceback" not in server.stderr(), server.stderr()


def test_redis_going_away_while_serving_gives_503_and_never_loses_feedback(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    url = own_redis.url
    with served_on(own_redis, tmp_path) as (server, key, response):
        status, ack, _ = timed_post(server.http, FEEDBACK_PATH, feedback_body(response, 1.0))
        assert status == 200, ack
        assert read_hash(url, key) == {
            "feedback": 1,
            "reward": 1.0,
            "successes:1": 1,
            "failures:1": 0,
        }

        # Redis stops: requests fail at once with a 503 naming Redis, over REST and gRPC
        own_redis.stop()
        status, body, seconds = timed_post(server.http, PREDICTIONS_PATH, REQUEST)
        assert_unavailable(status, body, seconds, url)
        status, body, seconds = timed_post(server.http, FEEDBACK_PATH, feedback_body(response, 1.0))
        assert "Feedback not recorded" in assert_unavailable(status, body, seconds, url)
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc}") as channel:
            stub = pb_grpc.SeldonStub(channel)
            request = pb.SeldonMessage()
            request.data.ndarray.extend([[1.0]])  # type: ignore[list-item]
            with pytest.raises(grpc.RpcError) as caught:
                stub.Predict(request, timeout=ANSWER_BOUND)
            feedback = pb.Feedback(request=request, reward=1.0)
            feedback.response.data.ndarray.extend([[OUTPUTS[1]]])  # type: ignore[list-item]
            feedback.response.meta.routing[ROUTER] = 1
            with pytest.raises(grpc.RpcError) as refused:
                stub.SendFeedback(feedback, timeout=ANSWER_BOUND)
        for error in (caught.value, refused.value):
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            assert url in (error.details() or ""), error.details()

        # Redis is back (empty: no persistence): the server recovers without a restart, and
        # what it acknowledges is recorded
        own_redis.start()
        procs.poll(
            lambda: timed_post(server.http, PREDICTIONS_PATH, REQUEST)[0] == 200,
            timeout=10.0,
            what="predictions after Redis came back",
        )
        status, ack, _ = timed_post(server.http, FEEDBACK_PATH, feedback_body(response, 0.5))
        assert status == 200, ack
        assert read_hash(url, key) == {
            "feedback": 1,
            "reward": 0.5,
            "successes:1": 0,
            "failures:1": 1,
        }

        # Redis hangs: a prediction is answered with a 503 within the socket timeout
        with own_redis.paused():
            status, body, seconds = timed_post(server.http, PREDICTIONS_PATH, REQUEST)
            assert_unavailable(status, body, seconds, url)
        assert timed_post(server.http, PREDICTIONS_PATH, REQUEST)[0] == 200


def test_a_hung_redis_does_not_freeze_the_server(own_redis: OwnRedis, tmp_path: Path) -> None:
    with served_on(own_redis, tmp_path) as (server, _, _), own_redis.paused():
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(timed_post, server.http, PREDICTIONS_PATH, REQUEST)
            live = []  # ask /live again and again while the prediction waits on Redis
            while not waiting.done():
                live.append(timed_get(server.http, "/live"))
            status, body, seconds = waiting.result()
        assert_unavailable(status, body, seconds, own_redis.url)
        assert all(code == 200 for code, _ in live), live
        slowest = max(took for _, took in live)
        assert slowest < 1.0, f"/live took {slowest:.1f}s while a prediction waited on Redis"


def test_feedback_timing_out_on_a_hung_redis_says_it_may_have_been_recorded(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    url = own_redis.url
    with served_on(own_redis, tmp_path) as (server, key, response):
        with own_redis.paused():
            status, body, seconds = timed_post(
                server.http, FEEDBACK_PATH, feedback_body(response, 0.25)
            )
            info = assert_unavailable(status, body, seconds, url)
        # the transaction was sent before Redis stopped answering: the outcome is unknown,
        # and the message must not claim otherwise (a client would resend and count twice)
        assert "may or may not have been recorded" in info
        # the next prediction goes through Redis after everything sent to it before
        assert timed_post(server.http, PREDICTIONS_PATH, REQUEST)[0] == 200
        recorded = read_hash(url, key)
        assert recorded.get("reward") == 0.25, recorded  # it was, exactly once
