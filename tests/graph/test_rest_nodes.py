"""RestNodeClient and its HTTP pool against real node servers in the test's own loop.

What the orchestrator relies on when it calls node processes over REST (docs/processes.md):
every Seldon method answers as it does in one process, a node's error keeps its status and
words, replicas take turns and one that goes away is skipped (feedback is never sent twice),
connections are kept alive and a connection the server closed is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from infergraph.app import component_app
from infergraph.errors import (
    BadMetadata,
    BadRequest,
    DeadlineExceeded,
    InferGraphError,
    MicroserviceError,
    NotFound,
    NotReady,
    PayloadTooLarge,
)
from infergraph.graph.nodes.rest_client import RestNodeClient
from infergraph.graph.nodes.seldon_codecs import error_from_status
from infergraph.protocol.message import DataKind, Feedback, Message, Meta
from infergraph.serving.server import bind_socket
from infergraph.status import http_status
from infergraph.wire.http1.client import (
    ConnectFailed,
    ConnectionLost,
    HttpPool,
    ResponseTooLarge,
)
from infergraph.wire.http1.server import HttpServer

MiB = 1024 * 1024


class Everything:
    """A node with every method; ``tags`` name the replica that answered.

    ``predict`` of a negative number -N raises MicroserviceError with status N (-1: a bug)."""

    def __init__(self, replica: str = "a") -> None:
        self.replica = replica
        self.rewards: list[tuple[float, Any]] = []
        self.predictions = 0

    def init_metadata(self) -> dict[str, Any]:
        inputs = [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}]
        outputs = [{"name": "y", "datatype": "FP64", "shape": [1, 2]}]
        return {"name": "everything", "versions": ["v1"], "inputs": inputs, "outputs": outputs}

    def tags(self) -> dict[str, Any]:
        return {"replica": self.replica}

    def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
        self.predictions += 1
        first = int(np.asarray(X).flat[0]) if np.asarray(X).size else 0
        if first == -1:
            raise ValueError("boom")
        if first < 0:
            raise MicroserviceError(
                f"status {-first}", status_code=-first, reason="NODE_SAYS", payload={"extra": 1}
            )
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


class Zeros:
    """Answers as many zeros as the request's first number: a big answer on demand."""

    def predict(self, X: Any, names: Any) -> Any:
        return np.zeros((1, int(np.asarray(X).flat[0])))


class Stuck:
    """Never answers until the test lets it go."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def predict(self, X: Any, names: Any) -> Any:
        await self.release.wait()
        return X


class BadMeta:
    def init_metadata(self) -> dict[str, Any]:
        return {"name": "bad", "inputs": "not a list"}

    def predict(self, X: Any, names: Any) -> Any:
        return X


def rows(*values: float, puid: str = "p1") -> Message:
    return Message(DataKind.NDARRAY, np.array([list(values)]), [], Meta(puid=puid))


@contextlib.asynccontextmanager
async def serving(user: Any, **options: Any) -> AsyncIterator[tuple[str, HttpServer]]:
    """``user`` served by the node's own HTTP server on a free port of this loop."""
    app = component_app(user, unit_id="node", **options)
    await app.ensure_loaded()
    sock = bind_socket("127.0.0.1", 0)
    server = HttpServer(app)
    await server.start(sock)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", server
    finally:
        await server.stop(grace=1.0)


@contextlib.asynccontextmanager
async def client_for(*addresses: str, **options: Any) -> AsyncIterator[RestNodeClient]:
    client = RestNodeClient(
        "node", addresses, max_message_size=options.pop("limit", MiB), **options
    )
    try:
        yield client
    finally:
        await client.aclose()


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` without blocking the event loop (the client's probes run on it)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def free_address() -> str:
    """An address where nothing listens (a port that was free a moment ago)."""
    with bind_socket("127.0.0.1", 0) as sock:
        return f"127.0.0.1:{sock.getsockname()[1]}"


# ---------------------------------------------------------------- every method


async def test_client_calls_every_seldon_method() -> None:
    user = Everything()
    async with serving(user, unit_image="ex/node:2") as (address, _), client_for(address) as client:
        assert client.transport == "rest" and not client.ready
        await client.load()
        assert client.ready
        answer = await client.predict(rows(1, 2))
        assert answer.kind is DataKind.NDARRAY and answer.raw is None
        assert answer.data == [[2, 3]] and type(answer.data[0][0]) is int  # the JSON, as it is
        assert answer.meta.puid == "p1" and answer.meta.tags == {"replica": "a"}
        assert answer.meta.request_path == {"node": "ex/node:2"}
        assert (await client.transform_input(rows(1, 2))).data == [[2, 4]]
        assert (await client.transform_output(rows(1, 2))).data == [[3, 6]]
        assert (await client.route(rows(1, 2))).data == [[1]]
        summed = await client.aggregate([rows(1, 2), rows(10, 20)])
        assert summed.data == [[11, 22]]
        response = Message(DataKind.NDARRAY, [[2.0]], [], Meta(routing={"node": 1}))
        assert (await client.send_feedback(Feedback(rows(1, 2), response, 0.5, None))).meta
        assert user.rewards == [(0.5, 1)]
        meta = client.metadata()
        assert meta["name"] == "everything" and meta["versions"] == ["v1"]
        assert meta["inputs"] == [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}]
        assert meta["outputs"] == [{"name": "y", "datatype": "FP64", "shape": [1, 2]}]


async def test_client_sends_the_fields_not_a_stale_raw_message() -> None:
    async with serving(Everything()) as (address, _), client_for(address) as client:
        await client.load()
        message = rows(1, 2, puid="new")
        message.raw = {"strData": "stale", "meta": {"puid": "old"}}
        answer = await client.predict(message)
        assert answer.data == [[2, 3]] and answer.meta.puid == "new"


async def test_bad_metadata_is_reported_by_metadata_not_load() -> None:
    async with serving(BadMeta()) as (address, _), client_for(address) as client:
        await client.load()
        assert client.ready
        with pytest.raises(BadMetadata, match="must be a list"):
            client.metadata()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (404, NotFound),
        (413, PayloadTooLarge),
        (503, NotReady),
        (504, DeadlineExceeded),
        (418, MicroserviceError),
        (502, MicroserviceError),
    ],
)
async def test_a_node_error_keeps_its_status_and_words(
    status: int, error: type[InferGraphError]
) -> None:
    async with serving(Everything()) as (address, _), client_for(address) as client:
        await client.load()
        with pytest.raises(error) as info:
            await client.predict(rows(-status))
        raised = info.value
        assert type(raised) is error and str(raised) == f"status {status}"
        assert http_status(raised) == status and raised.reason == "NODE_SAYS"
        if error is MicroserviceError:
            assert raised.payload == {"extra": 1}  # the node's other fields pass through
        assert client.replica_up(address)  # an answer, even an error, is no outage


async def test_a_node_bug_passes_through_as_a_500() -> None:
    async with serving(Everything()) as (address, _), client_for(address) as client:
        await client.load()
        with pytest.raises(MicroserviceError, match="boom") as info:
            await client.predict(rows(-1))
        assert http_status(info.value) == 500
        assert info.value.reason == "MICROSERVICE_INTERNAL_ERROR"


def test_error_bodies_that_are_not_seldon_json() -> None:
    plain = error_from_status(502, b"Bad Gateway from a proxy")
    assert type(plain) is MicroserviceError and http_status(plain) == 502
    assert (
        str(plain) == "Bad Gateway from a proxy" and plain.reason == "MICROSERVICE_INTERNAL_ERROR"
    )
    empty = error_from_status(429, b"")
    assert str(empty) == "HTTP 429" and http_status(empty) == 429
    assert empty.reason == "MICROSERVICE_BAD_DATA"
    assert type(error_from_status(404, b'{"status": {"info": "gone"}}')) is NotFound


async def test_timeout_and_message_limits() -> None:
    stuck = Stuck()
    async with serving(stuck) as (address, _), client_for(address, timeout=0.2) as client:
        await client.load()
        with pytest.raises(DeadlineExceeded):
            await client.predict(rows(1))
        assert client.replica_up(address)
        stuck.release.set()
        assert (await client.predict(rows(1))).data == [[1]]
    async with serving(Zeros()) as (address, _), client_for(address, limit=1024) as client:
        await client.load()
        with pytest.raises(PayloadTooLarge, match="answer"):
            await client.predict(rows(1000))
        with pytest.raises(PayloadTooLarge, match="request"):
            await client.predict(rows(*range(1000)))
        assert (await client.predict(rows(2))).data == [[0.0, 0.0]]


async def test_load_fails_when_nothing_answers() -> None:
    async with client_for(free_address(), load_timeout=0.3) as client:
        with pytest.raises(NotReady, match="no answer"):
            await client.load()
        assert not client.ready
        with pytest.raises(NotReady):
            await client.predict(rows(1))


# ---------------------------------------------------------------- replicas


async def test_replicas_take_turns_and_one_marked_down_rejoins_once_it_answers() -> None:
    async with (
        serving(Everything("a")) as (first, _),
        serving(Everything("b")) as (second, _),
        client_for(first, second, probe_interval=0.05) as client,
    ):
        await client.load()

        async def replicas(n: int) -> list[str]:
            return [(await client.predict(rows(1))).meta.tags["replica"] for _ in range(n)]

        assert await replicas(4) == ["a", "b", "a", "b"]
        client.mark_down(second)  # as the supervisor does when a process dies
        assert client.ready and not client.replica_up(second)
        await eventually(lambda: client.replica_up(second), "the probe")
        assert sorted(await replicas(2)) == ["a", "b"]
    assert not client.ready


async def test_a_replica_that_goes_away_is_skipped_except_by_feedback() -> None:
    survivor = Everything("a")
    async with serving(survivor) as (first, _), contextlib.AsyncExitStack() as stack:
        async with serving(Everything("b")) as (second, _):
            both = (first, second)
            retried = await stack.enter_async_context(client_for(*both, probe_interval=0.05))
            feedback = await stack.enter_async_context(client_for(*both, probe_interval=0.05))
            for client in (retried, feedback):
                await client.load()
                assert (await client.predict(rows(1))).meta.tags["replica"] == "a"
        # "b" is gone, and it is its turn on both clients
        answers = [(await retried.predict(rows(1))).meta.tags["replica"] for _ in range(3)]
        assert answers == ["a", "a", "a"]
        assert retried.ready and not retried.replica_up(second)
        # a reward must never be counted twice, so feedback is not sent elsewhere
        with pytest.raises(NotReady):
            await feedback.send_feedback(Feedback(rows(1), None, 1.0, None))
        assert survivor.rewards == [] and not feedback.replica_up(second)


# ---------------------------------------------------------------- connections


async def test_calls_reuse_one_kept_alive_connection() -> None:
    async with serving(Everything()) as (address, server), client_for(address) as client:
        await client.load()
        (connection,) = server.connections
        for _ in range(5):
            await client.predict(rows(1))
        assert server.connections == {connection}
        await asyncio.gather(*(client.predict(rows(1)) for _ in range(3)))
        opened = set(server.connections)
        assert connection in opened and len(opened) <= 3
        for _ in range(5):
            await client.predict(rows(1))
        assert server.connections == opened  # the idle ones are reused, none is opened


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    user = Everything()
    async with serving(user) as (address, server):
        pool = HttpPool(address, max_response_size=MiB)
        try:
            assert (await pool.request("GET", "/ready"))[0] == 200
            for connection in list(server.connections):
                connection.transport.close()  # as a server's idle timeout does
            await eventually(lambda: pool.connections == 0, "the client to see the close")
            assert (await pool.request("GET", "/ready"))[0] == 200
            assert pool.connections_made == 2
        finally:
            await pool.aclose()


async def test_a_close_that_races_the_request_is_retried_once_unless_not_idempotent() -> None:
    user = Everything()
    body = b'{"data": {"ndarray": [[1]]}}'
    async with serving(user) as (address, server):
        pool = HttpPool(address, max_response_size=MiB)
        try:
            for idempotent in (True, False):
                assert (await pool.request("GET", "/ready"))[0] == 200
                for connection in list(server.connections):
                    connection.transport.close()  # the client has not seen it yet
                before = user.predictions
                if idempotent:
                    status, _ = await pool.request("POST", "/predict", body)
                    assert status == 200 and user.predictions == before + 1
                else:
                    with pytest.raises(ConnectionLost) as info:
                        await pool.request("POST", "/predict", body, idempotent=False)
                    assert not info.value.answered and user.predictions == before
                assert pool.connections_made == 2  # the first, then one for the retry
        finally:
            await pool.aclose()
        with pytest.raises(ConnectFailed, match="closed"):
            await pool.request("GET", "/ready")


async def test_an_answer_over_the_limit_is_not_read() -> None:
    async with serving(Zeros()) as (address, _):
        pool = HttpPool(address, max_response_size=200)
        try:
            body = b'{"data": {"ndarray": [[1000]]}}'
            with pytest.raises(ResponseTooLarge, match="exceeds"):
                await pool.request("POST", "/predict", body)
            assert pool.connections == 0  # dropped: the rest of the answer is never read
            status, answer = await pool.request("POST", "/predict", b'{"data":{"ndarray":[[1]]}}')
            assert status == 200 and b"0.0" in answer
        finally:
            await pool.aclose()
