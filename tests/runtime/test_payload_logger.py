"""PayloadLogger against a real HTTP sink: CloudEvents headers, bodies, drops, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pytest

from infergraph.graph.executor import CallContext
from infergraph.graph.plan import NodeClient, PlanNode
from infergraph.observability.metrics import Registry
from infergraph.observability.payload_logger import DROPPED, FAILED, SENT, logger_options
from infergraph.protocol.message import DataKind, Feedback, Message, Meta
from infergraph.runtime.payload_logger import PayloadLogger
from tests.helpers.ports import HoldPorts

REQUEST = "io.seldon.serving.inference.request"
RESPONSE = "io.seldon.serving.inference.response"
FEEDBACK = "io.seldon.serving.feedback"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """A minimal HTTP/1.1 server that records requests and can hold its answers."""

    status: int = 200
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self, hold: bool = False) -> Sink:
        if not hold:
            self.release.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/log"
        return self

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(lambda: len(self.requests) >= count)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.append(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                async with self.changed:
                    self.requests.append(Received(method, path, headers, body))
                    self.changed.notify_all()
                await self.release.wait()
                writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()

    async def stop(self) -> None:
        self.release.set()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def sinks() -> AsyncIterator[Callable[..., Any]]:
    made: list[Sink] = []

    async def make(status: int = 200, hold: bool = False) -> Sink:
        sink = await Sink(status=status).start(hold)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        await sink.stop()


@pytest.fixture
async def loggers() -> AsyncIterator[Callable[..., Any]]:
    made: list[PayloadLogger] = []

    async def make(**kwargs: Any) -> PayloadLogger:
        kwargs.setdefault("deployment", "sdep")
        kwargs.setdefault("predictor", "default")
        logger = PayloadLogger(kwargs.pop("registry", Registry()), **kwargs)
        await logger.start()
        made.append(logger)
        return logger

    yield make
    for logger in made:
        await logger.close(drain_timeout=0.1)


def node(name: str = "model", url: str | None = None) -> PlanNode:
    return PlanNode(
        name=name, client=cast(NodeClient, object()), image="img:1", logger_mode="all",
        logger_url=url,
    )  # fmt: skip


def ctx(puid: str = "puid-1", **headers: str) -> CallContext:
    return CallContext(puid, {k.replace("_", "-"): v for k, v in headers.items()})


def message(values: list[Any], puid: str = "puid-1") -> Message:
    return Message(DataKind.NDARRAY, np.array(values), ["a", "b"], Meta(puid=puid))


def seldon(values: list[Any]) -> dict[str, Any]:
    """The Seldon JSON that ``message(values)`` must be logged as."""
    return {"meta": {"puid": "puid-1"}, "data": {"names": ["a", "b"], "ndarray": values}}


def counter(logger: PayloadLogger, name: str, node: str, reason: str | None = None) -> float:
    labels = [("deployment_name", logger.deployment), ("predictor_name", logger.predictor)]
    labels.append(("node", node))
    if reason is not None:
        labels.append(("reason", reason))
    return logger.registry.counters.get((name, tuple(labels)), 0.0)


async def test_cloudevent_headers_and_seldon_json_body(sinks: Any, loggers: Any) -> None:
    sink = await sinks()
    logger = await loggers(
        namespace="prod", hostname="exec-host", http_port=8123, default_endpoint=sink.url,
        clock=lambda: 1_700_000_000.25, new_id=lambda: "id-1",
    )  # fmt: skip
    logger.submit(node("clf"), REQUEST, message([[1, 2]]), ctx("puid-9"))
    await logger.close()
    [got] = sink.requests
    assert got.method == "POST" and got.path == "/log"
    assert got.headers["ce-specversion"] == "1.0"
    assert got.headers["ce-id"] == "id-1"
    assert got.headers["ce-type"] == REQUEST
    assert got.headers["ce-source"] == "http://exec-host:8123/"
    assert got.headers["ce-time"] == "2023-11-14T22:13:20.250000Z"
    assert got.headers["ce-modelid"] == "clf"
    assert got.headers["ce-requestid"] == "puid-9"
    assert got.headers["ce-inferenceservicename"] == "sdep"
    assert got.headers["ce-namespace"] == "prod"
    assert got.headers["ce-endpoint"] == "default"
    assert got.headers["ce-protocol"] == "seldon"
    assert got.headers["content-type"] == "application/json"
    assert got.json() == seldon([[1, 2]])
    assert counter(logger, SENT, "clf") == 1


async def test_default_ids_are_fresh_uuid4(sinks: Any, loggers: Any) -> None:
    sink = await sinks()
    logger = await loggers(default_endpoint=sink.url)
    for _ in range(2):
        logger.submit(node(), REQUEST, message([1]), ctx())
    await logger.close()
    ids = [r.headers["ce-id"] for r in sink.requests]
    assert len(set(ids)) == 2 and all(uuid.UUID(i).version == 4 for i in ids)


async def test_response_and_feedback_events(sinks: Any, loggers: Any) -> None:
    sink = await sinks()
    logger = await loggers(default_endpoint=sink.url, workers=1)
    logger.submit(node(), RESPONSE, message([[0.5, 0.5]]), ctx())
    feedback = Feedback(message([[1, 2]]), message([[3, 4]]), 1.0, None)
    logger.submit(node(), FEEDBACK, feedback, ctx())
    await logger.close()
    response, fb = sink.requests
    assert response.headers["ce-type"] == RESPONSE
    assert response.json()["data"] == {"names": ["a", "b"], "ndarray": [[0.5, 0.5]]}
    assert fb.headers["ce-type"] == FEEDBACK
    assert fb.json() == {
        "reward": 1.0,
        "request": seldon([[1, 2]]),
        "response": seldon([[3, 4]]),
    }


async def test_skip_logging_header(sinks: Any, loggers: Any) -> None:
    sink = await sinks()
    logger = await loggers(default_endpoint=sink.url)
    for value in ("true", "TRUE", " On ", "1"):
        logger.submit(node(), REQUEST, message([1]), ctx("skipped", seldon_skip_logging=value))
    logger.submit(node(), REQUEST, message([1]), ctx("logged", seldon_skip_logging="false"))
    logger.submit(node(), REQUEST, message([1]), ctx("plain"))
    await logger.close()
    assert sorted(r.headers["ce-requestid"] for r in sink.requests) == ["logged", "plain"]


async def test_node_url_overrides_default_endpoint(sinks: Any, loggers: Any) -> None:
    own, default = await sinks(), await sinks()
    logger = await loggers(default_endpoint=default.url)
    logger.submit(node("a", own.url), REQUEST, message([1]), ctx())
    logger.submit(node("b"), REQUEST, message([1]), ctx())
    await logger.close()
    assert [r.headers["ce-modelid"] for r in own.requests] == ["a"]
    assert [r.headers["ce-modelid"] for r in default.requests] == ["b"]


async def test_full_queue_drops_and_counts(sinks: Any, loggers: Any) -> None:
    sink = await sinks(hold=True)
    logger = await loggers(default_endpoint=sink.url, queue_size=2, workers=1)
    for i in range(10):  # no await in between: the worker has not taken anything yet
        logger.submit(node(), REQUEST, message([i]), ctx(f"p{i}"))
    assert counter(logger, DROPPED, "model", "queue_full") == 8
    sink.release.set()
    await logger.close()
    assert [r.headers["ce-requestid"] for r in sink.requests] == ["p0", "p1"]
    assert counter(logger, SENT, "model") == 2


async def test_submit_never_blocks_on_a_hanging_sink(sinks: Any, loggers: Any) -> None:
    sink = await sinks(hold=True)
    logger = await loggers(default_endpoint=sink.url, queue_size=100, workers=1)
    logger.submit(node(), REQUEST, message([0]), ctx())
    await sink.wait_for(1)  # the only worker is now stuck in a send
    took = []
    for i in range(500):
        started = time.perf_counter()
        logger.submit(node(), REQUEST, message([i]), ctx())
        took.append(time.perf_counter() - started)
    took.sort()
    # microseconds in practice; the bounds are generous for a loaded CI machine, and a
    # blocking submit would wait for the held sink (forever) or the 60 s client timeout
    assert took[len(took) // 2] < 0.001
    assert took[-1] < 0.5
    assert counter(logger, DROPPED, "model", "queue_full") == 400
    await logger.close(drain_timeout=0.05)


async def test_refused_endpoint_counts_failures_and_warns_once(
    loggers: Any, caplog: pytest.LogCaptureFixture, held_ports: HoldPorts
) -> None:
    (port,) = held_ports(1)  # nothing listens there
    logger = await loggers(default_endpoint=f"http://127.0.0.1:{port}/")
    with caplog.at_level(logging.WARNING, "infergraph.observability.payload_logger"):
        for _ in range(3):
            logger.submit(node(), REQUEST, message([1]), ctx())
        await logger.close()
    assert counter(logger, FAILED, "model", "connect") == 3
    assert counter(logger, SENT, "model") == 0
    assert len([r for r in caplog.records if "model" in r.getMessage()]) == 1


async def test_non_2xx_counts_failure(sinks: Any, loggers: Any) -> None:
    sink = await sinks(status=503)
    logger = await loggers(default_endpoint=sink.url)
    logger.submit(node(), REQUEST, message([1]), ctx())
    await logger.close()
    assert len(sink.requests) == 1
    assert counter(logger, FAILED, "model", "http_503") == 1


async def test_slow_sink_times_out(sinks: Any, loggers: Any) -> None:
    sink = await sinks(hold=True)
    logger = await loggers(default_endpoint=sink.url, timeout=0.2)
    logger.submit(node(), REQUEST, message([1]), ctx())
    await logger.close()
    assert counter(logger, FAILED, "model", "timeout") == 1


async def test_unencodable_payload_fails_and_worker_survives(sinks: Any, loggers: Any) -> None:
    sink = await sinks()
    logger = await loggers(default_endpoint=sink.url, workers=1)
    logger.submit(node(), REQUEST, Message(DataKind.CUSTOM, object()), ctx("bad"))
    logger.submit(node(), REQUEST, message([1]), ctx("good"))
    await logger.close()
    assert counter(logger, FAILED, "model", "encode") == 1
    assert [r.headers["ce-requestid"] for r in sink.requests] == ["good"]


async def test_close_drains_the_queue(sinks: Any, loggers: Any) -> None:
    sink = await sinks()
    logger = await loggers(default_endpoint=sink.url)
    for i in range(50):
        logger.submit(node(), REQUEST, message([i]), ctx(f"p{i}"))
    await logger.close()
    assert len(sink.requests) == 50
    assert counter(logger, SENT, "model") == 50


async def test_close_deadline_drops_what_is_left(sinks: Any, loggers: Any) -> None:
    sink = await sinks(hold=True)
    logger = await loggers(default_endpoint=sink.url, workers=1)
    for _ in range(5):
        logger.submit(node(), REQUEST, message([1]), ctx())
    await sink.wait_for(1)
    await logger.close(drain_timeout=0.05)
    assert counter(logger, DROPPED, "model", "shutdown") == 5  # 4 queued + 1 in flight
    logger.submit(node(), REQUEST, message([1]), ctx())  # after close: counted, no raise
    assert counter(logger, DROPPED, "model", "shutdown") == 6


def test_options_from_annotations_and_environment() -> None:
    annotations = {
        "seldon.io/executor-logger-queue-size": "25",
        "seldon.io/executor-logger-write-timeout-ms": "1500",
    }
    env = {"REQUEST_LOGGER_DEFAULT_ENDPOINT": "http://broker.ns"}
    assert logger_options(annotations, env) == {
        "queue_size": 25,
        "write_timeout": 1.5,
        "default_endpoint": "http://broker.ns",
    }
    assert logger_options({"seldon.io/executor-logger-queue-size": "lots"}, {}) == {}
