"""infergraph's own gRPC client (:class:`~infergraph.wire.grpc.client.GrpcChannel`) against
servers that are not ours and against ours.

Every interop test runs against three servers: grpcio's asyncio server (``grpc.aio``),
grpcio's thread-pool server (``grpc.server``), both as a real Seldon microservice runs them,
and infergraph's native server. Where a server's behaviour cannot be chosen in grpcio (a
limit it does not enforce, an answer that is not gRPC), a small fake server on a plain
asyncio connection stands in. Each test serves its own server on its own port; asyncio's
logger must stay silent (no unretrieved task exception, no task destroyed pending).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import numpy as np
import pytest

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import BadRequest, NotImplementedByComponent, PayloadTooLarge
from infergraph.graph.nodes import GrpcNodeClient
from infergraph.protocol.message import DataKind, Message, Meta
from infergraph.settings import ComponentSettings
from infergraph.transport.grpc.component import build_grpc_server
from infergraph.transport.grpc.server import new_server
from infergraph.wire.grpc.client import GrpcChannel, RpcError
from tests.helpers.ports import HoldPorts

SERVICE = "test.Client"
MiB = 1 << 20
KINDS = ["aio", "sync", "native"]
"""grpc.aio.server(), grpc.server(ThreadPoolExecutor), infergraph's NativeGrpcServer."""

Code = grpc.StatusCode


def path(method: str) -> str:
    return f"/{SERVICE}/{method}"


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` bytes no two places of which look alike (a chunk out of place shows)."""
    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------- asyncio stays quiet


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def asyncio_is_quiet() -> Iterator[None]:
    """Nothing logged by asyncio at ERROR: an exception nobody retrieved, a task destroyed
    while pending, an exception in a callback. Checked once the test's loop is gone and
    the garbage collected (those messages come from finalizers)."""
    handler = _Collect()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        gc.collect()
    finally:
        logger.removeHandler(handler)
    errors = [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR]
    assert not errors, errors


# ---------------------------------------------------------------- the services under test


@dataclass
class Probe:
    """What the handlers saw and did; thread-safe (the sync server's handlers run in
    threads)."""

    started: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[tuple[str, Any], ...]] = field(default_factory=list)
    running: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.set()

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


async def until(event: threading.Event, timeout: float = 3.0) -> None:
    """Wait (without blocking the loop) for ``event``, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not event.is_set():
        assert time.monotonic() < deadline, "timed out waiting for the handler"
        await asyncio.sleep(0.005)


def _abort_args(request: bytes) -> tuple[grpc.StatusCode, str]:
    code, _, details = request.decode().partition("|")
    return Code[code], details


def async_handlers(probe: Probe) -> dict[str, grpc.RpcMethodHandler]:
    """Raw-bytes methods for the servers whose handlers run on the loop (grpc.aio, ours).

    ``Echo``: the request back, metadata noted; ``Slow``: ``b"<seconds>"`` of sleep, then
    the request back, cancellation noted; ``Sized``: ``payload(int(request))``; ``Abort``:
    ``b"<CODE>|<details>"``; ``Crash``: raises."""

    async def echo(request: bytes, context: Any) -> bytes:
        probe.seen.append(tuple(context.invocation_metadata()))
        return request

    async def slow(request: bytes, context: Any) -> bytes:
        probe.enter()
        try:
            await asyncio.sleep(float(request))
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        finally:
            probe.leave()
        probe.finished.set()
        return request

    async def sized(request: bytes, context: Any) -> bytes:
        return payload(int(request))

    async def abort(request: bytes, context: Any) -> bytes:
        await context.abort(*_abort_args(request))
        raise AssertionError("abort returns")

    async def crash(request: bytes, context: Any) -> bytes:
        raise RuntimeError("the handler broke")

    return _methods(echo, slow, sized, abort, crash)


def sync_handlers(probe: Probe) -> dict[str, grpc.RpcMethodHandler]:
    """:func:`async_handlers`, as grpcio's thread-pool server runs them."""

    def echo(request: bytes, context: Any) -> bytes:
        probe.seen.append(tuple(context.invocation_metadata()))
        return request

    def slow(request: bytes, context: Any) -> bytes:
        probe.enter()
        try:
            end = time.monotonic() + float(request)
            while time.monotonic() < end:
                if not context.is_active():
                    probe.cancelled.set()
                    return b""
                time.sleep(0.005)
        finally:
            probe.leave()
        probe.finished.set()
        return request

    def sized(request: bytes, context: Any) -> bytes:
        return payload(int(request))

    def abort(request: bytes, context: Any) -> bytes:
        context.abort(*_abort_args(request))
        raise AssertionError("abort returns")

    def crash(request: bytes, context: Any) -> bytes:
        raise RuntimeError("the handler broke")

    return _methods(echo, slow, sized, abort, crash)


def _methods(*functions: Callable[..., Any]) -> dict[str, grpc.RpcMethodHandler]:
    names = ("Echo", "Slow", "Sized", "Abort", "Crash")
    return {
        name: grpc.unary_unary_rpc_method_handler(function)
        for name, function in zip(names, functions, strict=True)
    }


class Served:
    """One server of ``kind`` on ``port`` (0: a free one), stopped and started again at
    will on the same port."""

    def __init__(
        self,
        kind: str,
        probe: Probe | None = None,
        *,
        port: int = 0,
        max_message_size: int = 4 * MiB,
        options: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.kind = kind
        self.probe = probe or Probe()
        self.port = port
        self.options = [
            ("grpc.max_receive_message_length", max_message_size),
            ("grpc.max_send_message_length", max_message_size),
            *(options or []),
        ]
        self.server: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        handlers = (sync_handlers if self.kind == "sync" else async_handlers)(self.probe)
        generic = grpc.method_handlers_generic_handler(SERVICE, handlers)
        if self.kind == "aio":
            self.server = grpc.aio.server(options=self.options)
        elif self.kind == "sync":
            pool = ThreadPoolExecutor(64, thread_name_prefix="test-grpc")
            self.server = grpc.server(pool, options=self.options)
        else:
            self.server = new_server(4 * MiB, self.options, kind="native")
        self.server.add_generic_rpc_handlers((generic,))
        port = self.server.add_insecure_port(self.address)
        assert port, f"cannot bind {self.address}"
        self.port = port
        if self.kind == "sync":
            self.server.start()
        else:
            await self.server.start()

    async def stop(self, grace: float | None = None) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        if self.kind == "sync":
            stopped = server.stop(grace)
            await asyncio.get_running_loop().run_in_executor(None, stopped.wait)
        else:
            await server.stop(grace)


@asynccontextmanager
async def serving(kind: str, probe: Probe | None = None, **options: Any) -> AsyncIterator[Served]:
    served = Served(kind, probe, **options)
    await served.start()
    try:
        yield served
    finally:
        await served.stop(0)


@asynccontextmanager
async def channel_to(address: str, **options: Any) -> AsyncIterator[GrpcChannel]:
    channel = GrpcChannel(address, **options)
    try:
        yield channel
    finally:
        await asyncio.wait_for(channel.close(), 2)


async def rpc_error(call: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await call
    return info.value


kinds = pytest.mark.parametrize("kind", KINDS)


# ---------------------------------------------------------------- 1. unary calls, metadata


@kinds
async def test_unary_round_trip_and_metadata_reach_the_handler(kind: str) -> None:
    probe = Probe()
    metadata = (("x-text", "plain words"), ("x-id", "42"))
    async with serving(kind, probe) as server, channel_to(server.address) as channel:
        assert await channel.unary(path("Echo"), b"hello", metadata=metadata) == b"hello"
        assert await channel.unary(path("Echo"), b"") == b""  # an empty message
        assert await channel.unary(path("Echo"), b"again", timeout=5) == b"again"
    first = dict(probe.seen[0])
    assert first["x-text"] == "plain words"
    assert first["x-id"] == "42"
    assert "x-text" not in dict(probe.seen[1])


async def test_metadata_that_cannot_be_sent_leaves_nothing_behind() -> None:
    """A value HTTP/2 cannot carry fails its call before anything is registered: no stream
    held against MAX_CONCURRENT_STREAMS, no failure unseen when the connection ends."""
    async with (
        serving("aio", options=[("grpc.max_concurrent_streams", 1)]) as server,
        channel_to(server.address) as channel,
    ):
        assert await channel.unary(path("Echo"), b"first") == b"first"
        with pytest.raises(ValueError):
            await channel.unary(path("Echo"), b"", metadata=(("x-text", "日本"),))
        after = channel.unary(path("Echo"), b"after", timeout=2)
        assert await asyncio.wait_for(after, 3) == b"after"


# ---------------------------------------------------------------- 2. error statuses

DETAILS = [
    "plain",
    "100% sure: ünïcödé 日本語 ✓",
    "a%20b %41 % %%",
    "line one\nline two\ttab",
]


@kinds
async def test_error_statuses_arrive_with_code_and_details(kind: str) -> None:
    async with serving(kind) as server, channel_to(server.address) as channel:
        for details in DETAILS:
            error = await rpc_error(
                channel.unary(path("Abort"), f"INVALID_ARGUMENT|{details}".encode())
            )
            assert (error.code(), error.details()) == (Code.INVALID_ARGUMENT, details)
        error = await rpc_error(channel.unary(path("Abort"), b"NOT_FOUND|no such thing"))
        assert (error.code(), error.details()) == (Code.NOT_FOUND, "no such thing")
        unknown = await rpc_error(channel.unary(f"/{SERVICE}/NoSuchMethod", b""))
        crash = await rpc_error(channel.unary(path("Crash"), b""))
        # an error ends its call only: the connection goes on
        assert await channel.unary(path("Echo"), b"after") == b"after"
    assert unknown.code() is Code.UNIMPLEMENTED
    # grpcio answers an exception in a handler with UNKNOWN, infergraph's server INTERNAL
    assert crash.code() is (Code.INTERNAL if kind == "native" else Code.UNKNOWN)
    assert "the handler broke" in crash.details()


# ---------------------------------------------------------------- 3. large messages


@kinds
async def test_eight_mebibytes_both_ways(kind: str) -> None:
    """grpcio's servers start with a 64 KiB window: the request goes out in many frames
    as the server's WINDOW_UPDATEs allow, and the answer needs ours."""
    request = payload(8 * MiB, seed=1)
    async with (
        serving(kind, max_message_size=16 * MiB) as server,
        channel_to(server.address, max_message_size=16 * MiB) as channel,
    ):
        assert await channel.unary(path("Echo"), request, timeout=10) == request
        assert await channel.unary(path("Sized"), b"%d" % (8 * MiB)) == payload(8 * MiB)
        assert await channel.unary(path("Echo"), b"small after") == b"small after"


@kinds
async def test_twenty_mebibytes_with_raised_limits(kind: str) -> None:
    request = payload(20 * MiB, seed=2)
    async with (
        serving(kind, max_message_size=32 * MiB) as server,
        channel_to(server.address, max_message_size=32 * MiB) as channel,
    ):
        first, second = await asyncio.gather(
            channel.unary(path("Echo"), request, timeout=15),
            channel.unary(path("Echo"), request[::-1], timeout=15),
        )
    assert first == request
    assert second == request[::-1]


# ---------------------------------------------------------------- 4. concurrency


@kinds
async def test_two_hundred_concurrent_calls_each_get_their_own_answer(kind: str) -> None:
    rng = random.Random(3)
    requests = [b"%.3f" % rng.uniform(0, 0.05) + b"0" * i for i in range(200)]
    async with serving(kind) as server, channel_to(server.address) as channel:
        answers = await asyncio.gather(*(channel.unary(path("Slow"), r) for r in requests))
        assert len(channel._all) == 1  # one connection carried them all
    assert answers == requests


@pytest.mark.parametrize("kind", ["aio", "sync"])
async def test_low_max_concurrent_streams_queues_the_calls(kind: str) -> None:
    probe = Probe()
    options = [("grpc.max_concurrent_streams", 4)]
    async with (
        serving(kind, probe, options=options) as server,
        channel_to(server.address) as channel,
    ):
        requests = [b"0.02" + b"0" * i for i in range(50)]
        answers = await asyncio.gather(*(channel.unary(path("Slow"), r) for r in requests))
    assert answers == requests
    assert probe.peak <= 4


# ---------------------------------------------------------------- 5, 6. deadlines, cancellation


@kinds
async def test_deadline_exceeded_cancels_the_handler_and_the_channel_goes_on(kind: str) -> None:
    probe = Probe()
    async with serving(kind, probe) as server, channel_to(server.address) as channel:
        assert await channel.unary(path("Echo"), b"warm") == b"warm"
        started = time.monotonic()
        error = await rpc_error(channel.unary(path("Slow"), b"5", timeout=0.2))
        elapsed = time.monotonic() - started
        await until(probe.cancelled)
        assert await channel.unary(path("Echo"), b"next", timeout=2) == b"next"
    assert error.code() is Code.DEADLINE_EXCEEDED
    assert 0.15 < elapsed < 1.0
    assert not probe.finished.is_set()


@kinds
async def test_cancelling_the_task_cancels_the_call_on_the_server(kind: str) -> None:
    probe = Probe()
    async with serving(kind, probe) as server, channel_to(server.address) as channel:
        task = asyncio.create_task(channel.unary(path("Slow"), b"5"))
        await until(probe.started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(probe.cancelled)
        assert await channel.unary(path("Echo"), b"next", timeout=2) == b"next"
    assert not probe.finished.is_set()


@kinds
async def test_a_deadline_of_days_is_accepted(kind: str) -> None:
    async with serving(kind) as server, channel_to(server.address) as channel:
        assert await channel.unary(path("Echo"), b"long", timeout=10 * 86_400) == b"long"
        assert await channel.unary(path("Echo"), b"longer", timeout=1e9) == b"longer"


# ---------------------------------------------------------------- 7. connecting


async def test_connection_refused_is_unavailable_at_once(held_ports: HoldPorts) -> None:
    async with channel_to(f"127.0.0.1:{held_ports(1)[0]}") as channel:
        started = time.monotonic()
        error = await rpc_error(channel.unary(path("Echo"), b"", timeout=5))
        assert time.monotonic() - started < 1
    assert error.code() is Code.UNAVAILABLE


@kinds
async def test_wait_for_ready_connects_once_the_server_listens(
    kind: str, held_ports: HoldPorts
) -> None:
    server = Served(kind, port=held_ports(1)[0])
    async with channel_to(server.address) as channel:
        call = asyncio.create_task(
            channel.unary(path("Echo"), b"waited", timeout=3, wait_for_ready=True)
        )
        await asyncio.sleep(0.3)
        assert not call.done()
        await server.start()
        try:
            assert await asyncio.wait_for(call, 3) == b"waited"
        finally:
            await server.stop(0)


async def test_wait_for_ready_waits_longer_than_connect_timeout(held_ports: HoldPorts) -> None:
    """``connect_timeout`` bounds one attempt; a call that waits for the server keeps
    trying for its own timeout (a node process loading its model refuses for a while)."""
    server = Served("native", port=held_ports(1)[0])
    async with channel_to(server.address, connect_timeout=0.2) as channel:
        call = asyncio.create_task(
            channel.unary(path("Echo"), b"waited", timeout=3, wait_for_ready=True)
        )
        await asyncio.sleep(0.5)
        assert not call.done()
        await server.start()
        try:
            assert await asyncio.wait_for(call, 3) == b"waited"
        finally:
            await server.stop(0)


async def test_wait_for_ready_gives_up_at_the_timeout(held_ports: HoldPorts) -> None:
    async with channel_to(f"127.0.0.1:{held_ports(1)[0]}") as channel:
        started = time.monotonic()
        error = await rpc_error(channel.unary(path("Echo"), b"", timeout=0.5, wait_for_ready=True))
        elapsed = time.monotonic() - started
    assert error.code() is Code.UNAVAILABLE
    assert 0.35 < elapsed < 1.5


# ---------------------------------------------------------------- 8, 9. servers that stop


@kinds
async def test_server_restart_on_the_same_port(kind: str, held_ports: HoldPorts) -> None:
    probe = Probe()
    server = Served(kind, probe, port=held_ports(1)[0])
    await server.start()
    async with channel_to(server.address) as channel:
        try:
            assert await channel.unary(path("Echo"), b"before") == b"before"
            in_flight = asyncio.create_task(channel.unary(path("Slow"), b"5", timeout=5))
            await until(probe.started)
            await server.stop(0)
            error = await rpc_error(asyncio.wait_for(in_flight, 3))
            assert error.code() in (Code.UNAVAILABLE, Code.CANCELLED), error
            await server.start()
            try:  # the next call may find the old connection's end first
                await channel.unary(path("Echo"), b"next", timeout=2)
            except RpcError as exc:
                assert exc.code() is Code.UNAVAILABLE, exc
            for i in range(3):
                answer = await channel.unary(path("Echo"), b"%d" % i, timeout=2)
                assert answer == b"%d" % i
        finally:
            await server.stop(0)


@kinds
async def test_graceful_stop_lets_the_call_in_flight_finish(
    kind: str, held_ports: HoldPorts
) -> None:
    probe = Probe()
    server = Served(kind, probe, port=held_ports(1)[0])
    await server.start()
    async with channel_to(server.address) as channel:
        try:
            assert await channel.unary(path("Echo"), b"before") == b"before"
            in_flight = asyncio.create_task(channel.unary(path("Slow"), b"0.4", timeout=5))
            await until(probe.started)
            stopping = asyncio.create_task(server.stop(3))
            await asyncio.sleep(0.1)  # the GOAWAY is on its way
            late = await rpc_error(asyncio.wait_for(channel.unary(path("Echo"), b"late"), 3))
            assert late.code() is Code.UNAVAILABLE, late
            assert await asyncio.wait_for(in_flight, 3) == b"0.4"
            await asyncio.wait_for(stopping, 4)
            assert not probe.cancelled.is_set()
            await server.start()
            assert await channel.unary(path("Echo"), b"after", timeout=2) == b"after"
        finally:
            await server.stop(0)


# ---------------------------------------------------------------- 10. message limits


@kinds
async def test_answer_over_the_limit_is_resource_exhausted(kind: str) -> None:
    async with (
        serving(kind, max_message_size=8 * MiB) as server,
        channel_to(server.address, max_message_size=MiB) as channel,
    ):
        error = await rpc_error(channel.unary(path("Sized"), b"%d" % (2 * MiB)))
        assert await channel.unary(path("Sized"), b"%d" % MiB) == payload(MiB)  # the limit
        again = await rpc_error(channel.unary(path("Sized"), b"%d" % (MiB + 1)))
        assert await channel.unary(path("Echo"), b"after") == b"after"
    assert error.code() is Code.RESOURCE_EXHAUSTED
    assert again.code() is Code.RESOURCE_EXHAUSTED


@kinds
async def test_request_over_the_limit_is_resource_exhausted_unsent(kind: str) -> None:
    probe = Probe()
    async with (
        serving(kind, probe) as server,
        channel_to(server.address, max_message_size=MiB) as channel,
    ):
        error = await rpc_error(channel.unary(path("Echo"), payload(MiB + 1)))
        assert not channel._all  # not even a connection was opened
        assert await channel.unary(path("Echo"), payload(MiB)) == payload(MiB)
    assert error.code() is Code.RESOURCE_EXHAUSTED
    assert len(probe.seen) == 1


# ---------------------------------------------------------------- 11. not gRPC


@asynccontextmanager
async def tcp_server(
    on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
) -> AsyncIterator[str]:
    """A plain TCP server running ``on_connect`` per connection; at the end the
    connections are closed and their handlers awaited (nothing left pending)."""
    handlers: set[asyncio.Task[Any]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        writers.append(writer)
        try:
            await on_connect(reader, writer)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=1)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await server.wait_closed()


async def read_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, read and never say a word."""
    while await reader.read(1 << 16):
        pass


async def test_an_http1_server_is_unavailable_not_a_hang() -> None:
    async def bad_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"
            b"Bad Request"
        )
        await writer.drain()

    async with tcp_server(bad_request) as address, channel_to(address) as channel:
        for _ in range(2):  # and again, on a new connection
            started = time.monotonic()
            error = await rpc_error(asyncio.wait_for(channel.unary(path("Echo"), b""), 3))
            assert error.code() is Code.UNAVAILABLE, error
            assert "HTTP/2" in error.details()
            assert time.monotonic() - started < 1


async def test_a_server_that_never_speaks_http2_fails_the_call_in_its_timeout() -> None:
    """The call is never sent (no SETTINGS came): UNAVAILABLE, as for a connection that
    cannot be made, at the call's timeout; and the attempt does not outlive
    ``connect_timeout`` to block the calls after it."""
    async with (
        tcp_server(read_all) as address,
        channel_to(address, connect_timeout=0.5) as channel,
    ):
        started = time.monotonic()
        error = await rpc_error(asyncio.wait_for(channel.unary(path("Echo"), b"", timeout=0.2), 3))
        assert time.monotonic() - started < 0.5
        assert error.code() is Code.UNAVAILABLE, error
        started = time.monotonic()
        error = await rpc_error(asyncio.wait_for(channel.unary(path("Echo"), b""), 3))
        assert 0.2 < time.monotonic() - started < 1  # connect_timeout, counted from the start
        assert error.code() is Code.UNAVAILABLE, error
        assert "SETTINGS" in error.details()


# ---------------------------------------------------------------- a strict HTTP/2 server


@dataclass
class H2Stats:
    peak: int = 0
    refused: int = 0
    """Streams refused, and connections closed for a protocol error."""
    answered: int = 0
    headers: list[dict[bytes, bytes]] = field(default_factory=list)


@asynccontextmanager
async def h2_server(
    max_streams: int | None = None, *, answer: bool = True, settings_delay: float = 0.0
) -> AsyncIterator[tuple[str, H2Stats]]:
    """An HTTP/2 server (python-hyper's h2) that echoes each request after 20 ms.

    With ``max_streams`` it advertises that limit and refuses (RST_STREAM REFUSED_STREAM)
    any stream over it, even one opened before its SETTINGS could be known (they go out
    ``settings_delay`` seconds after the connection opens). Without ``answer`` it never
    answers, nor gives back any window: a request over 64 KiB never goes out whole."""
    stats = H2Stats()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config)
        if max_streams is not None:
            conn.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams},
            )
        conn.initiate_connection()
        await asyncio.sleep(settings_delay)
        writer.write(conn.data_to_send())
        bodies: dict[int, bytearray] = {}
        replies: set[asyncio.Task[None]] = set()

        async def reply(stream_id: int) -> None:
            await asyncio.sleep(0.02)
            conn.send_headers(
                stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")]
            )
            conn.send_data(stream_id, bytes(bodies.pop(stream_id)))
            conn.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)
            writer.write(conn.data_to_send())
            stats.answered += 1

        def received(event: h2.events.Event) -> None:
            if isinstance(event, h2.events.RequestReceived):
                stats.headers.append(dict(event.headers))  # type: ignore[arg-type]
                if max_streams is not None and len(bodies) >= max_streams:
                    conn.reset_stream(event.stream_id, 0x7)  # REFUSED_STREAM
                    stats.refused += 1
                else:
                    bodies[event.stream_id] = bytearray()
                    stats.peak = max(stats.peak, len(bodies))
            elif isinstance(event, h2.events.DataReceived) and event.stream_id in bodies:
                bodies[event.stream_id] += event.data or b""
                conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in bodies:
                task = asyncio.create_task(reply(event.stream_id))
                replies.add(task)
                task.add_done_callback(replies.discard)

        try:
            while data := await reader.read(1 << 16):
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:  # e.g. streams over the limit
                    stats.refused += 1
                    conn.close_connection(error_code=0x1)
                    writer.write(conn.data_to_send())
                    return
                for event in events:
                    if answer:
                        received(event)
                    elif isinstance(event, h2.events.RequestReceived):
                        stats.headers.append(dict(event.headers))  # type: ignore[arg-type]
                writer.write(conn.data_to_send())
        finally:
            for task in list(replies):
                task.cancel()

    async with tcp_server(serve) as address:
        yield address, stats


async def test_a_strict_server_max_concurrent_streams_is_never_exceeded() -> None:
    """The client waits for the server's SETTINGS before it opens streams, and then keeps
    to their limit: a strict server refuses streams over it even before they could be
    known."""
    async with (
        h2_server(4, settings_delay=0.05) as (address, stats),
        channel_to(address) as channel,
    ):
        requests = [b"call %d" % i for i in range(50)]
        answers = await asyncio.gather(*(channel.unary(path("Echo"), r) for r in requests))
    assert answers == requests
    assert stats.refused == 0
    assert stats.peak == 4


async def test_a_server_that_never_answers_meets_the_deadline() -> None:
    """HTTP/2 is up, the call goes out, nothing comes back: DEADLINE_EXCEEDED at the
    timeout, for a request that went out whole and for one stuck on the server's window
    (the deadline bounds the sending too)."""
    async with h2_server(answer=False) as (address, stats), channel_to(address) as channel:
        for body in (b"small", payload(MiB)):
            started = time.monotonic()
            error = await rpc_error(
                asyncio.wait_for(channel.unary(path("Echo"), body, timeout=0.3), 3)
            )
            assert error.code() is Code.DEADLINE_EXCEEDED, error
            assert 0.25 < time.monotonic() - started < 1
    assert len(stats.headers) == 2


@pytest.mark.parametrize(
    ("timeout", "sent"),
    [
        (2.5, b"2500m"),
        (0.0004, b"1m"),
        (86_400, b"86400000m"),
        (10 * 86_400, b"864000S"),
        (1e9, b"16666666M"),
        (1e12, b"99999999H"),
    ],
)
async def test_grpc_timeout_has_at_most_eight_digits(timeout: float, sent: bytes) -> None:
    """gRPC's spec allows eight digits (grpc-go rejects more): a long timeout goes in a
    larger unit."""
    async with h2_server() as (address, stats), channel_to(address) as channel:
        await channel.unary(path("Echo"), b"x", timeout=max(timeout, 1))
        if timeout < 1:  # (the header sent for a timeout too short to wait for an answer)
            with pytest.raises(RpcError):
                await channel.unary(path("Echo"), b"x", timeout=timeout)
    value = stats.headers[-1][b"grpc-timeout"]
    assert value[-1:] == sent[-1:]
    assert len(value) <= 9
    # the time it took to send is off the remaining time (tens of ms on a loaded machine)
    assert abs(int(value[:-1]) - int(sent[:-1])) <= max(50, int(sent[:-1]) // 1000)


# ---------------------------------------------------------------- 12. close()


@kinds
async def test_close_fails_the_calls_in_flight_without_hanging(kind: str) -> None:
    probe = Probe()
    async with serving(kind, probe) as server:
        channel = GrpcChannel(server.address)
        calls = [asyncio.create_task(channel.unary(path("Slow"), b"5")) for _ in range(3)]
        await until(probe.started)
        await asyncio.wait_for(channel.close(), 1)
        errors = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 1)
        await until(probe.cancelled)  # the server saw the connection go
    for error in errors:
        assert isinstance(error, RpcError), error
        assert error.code() is Code.UNAVAILABLE


async def test_close_while_connecting_and_with_nothing_open(held_ports: HoldPorts) -> None:
    await GrpcChannel(f"127.0.0.1:{held_ports(1)[0]}").close()
    async with tcp_server(lambda r, w: r.read()) as address:
        channel = GrpcChannel(address)
        call = asyncio.create_task(channel.unary(path("Echo"), b"", timeout=5))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(channel.close(), 1)
        error = await rpc_error(asyncio.wait_for(call, 1))
    assert error.code() is Code.UNAVAILABLE


# ---------------------------------------------------------------- 13. the node client


class Node:
    """A Seldon model: ``predict`` adds one, fails as a user error on -1."""

    def init_metadata(self) -> dict[str, Any]:
        return {"name": "node", "versions": ["v3"]}

    def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
        if np.asarray(X).flat[0] == -1:
            raise BadRequest("negative input")
        return np.asarray(X) + 1


def rows(*values: float) -> Message:
    return Message(DataKind.NDARRAY, np.array([list(values)]), [], Meta(puid="p1"))


@pytest.mark.parametrize("kind", ["asyncio", "threads"])
async def test_grpc_node_client_against_a_grpcio_component_server(kind: str) -> None:
    """GrpcNodeClient (Seldon protocol) through the real code path to a component served
    by grpcio, as a Seldon microservice image would serve it."""
    dataplane = ComponentDataPlane(Node(), ComponentSettings(unit_id="node"))
    await dataplane.load()
    server = build_grpc_server(dataplane, max_message_size=4 * MiB, kind=kind)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = GrpcNodeClient("node", [f"127.0.0.1:{port}"], max_message_size=4 * MiB, timeout=5)
    try:
        await client.load()
        assert client.ready
        assert client.metadata()["versions"] == ["v3"]
        answer = await client.predict(rows(1, 2))
        assert answer.data.tolist() == [[2.0, 3.0]]
        assert answer.meta.puid == "p1"
        big = await client.predict(rows(*range(100_000)))  # 800 KB each way
        assert big.data.tolist() == [list(range(1, 100_001))]
        answers = await asyncio.gather(*(client.predict(rows(i)) for i in range(50)))
        assert [a.data.tolist() for a in answers] == [[[i + 1.0]] for i in range(50)]
        with pytest.raises(BadRequest, match="negative input"):
            await client.predict(rows(-1))
        with pytest.raises(NotImplementedByComponent):
            await client.route(rows(1))
        with pytest.raises(PayloadTooLarge):
            await client.predict(rows(*range(600_000)))  # over 4 MiB
    finally:
        await client.aclose()
        await server.stop(0)
        dataplane.close()
