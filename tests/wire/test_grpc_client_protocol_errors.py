"""The orchestrator's gRPC client against a server that breaks HTTP/2.

A fake server on a plain asyncio connection reads the client's preface and frames and
answers with frames built by hand here (header blocks by python-hyper's ``hpack``, an
encoder independent of ours). Each way of breaking RFC 9113's bounds (a WINDOW_UPDATE of
0, a window pushed past 2^31-1, settings out of range, DATA past the window we granted, a
frame or a header block over what we advertised) must end the connection with GOAWAY and
the code RFC 9113 names, and fail the call in flight at once with UNAVAILABLE saying what
the server broke, never leave it waiting for its deadline. Through a graph, that is the
node's failure: a 503 naming the node and what it broke.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import hpack
import pytest

from infergraph.errors import InferGraphError
from infergraph.graph.executor import CallContext, Executor
from infergraph.graph.nodes import GrpcNodeClient
from infergraph.graph.plan import PlanNode, PredictorPlan
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.metrics import Registry
from infergraph.protocol.message import DataKind, Message
from infergraph.status import grpc_status, http_status
from infergraph.wire import trips
from infergraph.wire.grpc.client import GrpcChannel, RpcError
from infergraph.wire.grpc.connection import Connection
from infergraph.wire.limits import Http2Limits

HEADER_LIMIT = "http2.max_header_list_size"

# RFC 9113's numbers, written out here rather than taken from the code under test
DATA, HEADERS, SETTINGS, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x0, 0x1, 0x4, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ENABLE_PUSH, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x2, 0x4, 0x5, 0x6
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, ENHANCE_YOUR_CALM = 0x1, 0x3, 0x6, 0xB
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = 2**31 - 1
LIMIT = 1024
"""The header list limit the client is given (and advertises)."""
MiB = 1 << 20
CALL_S = 3.0
"""The calls' deadline: a check that is missing shows as DEADLINE_EXCEEDED after it."""


# ---------------------------------------------------------------- frames, by hand


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def settings(**values: int) -> bytes:
    codes = {"ENABLE_PUSH": ENABLE_PUSH, "INITIAL_WINDOW_SIZE": INITIAL_WINDOW_SIZE}
    codes["MAX_FRAME_SIZE"] = MAX_FRAME_SIZE
    payload = b"".join(struct.pack(">HI", codes[k], v) for k, v in values.items())
    return frame(SETTINGS, 0, 0, payload)


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def data(stream: int, payload: bytes, end_stream: bool = False) -> bytes:
    return frame(DATA, END_STREAM if end_stream else 0, stream, payload)


ANSWER_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


# ---------------------------------------------------------------- the fake server


@dataclass
class Peer:
    """One connection to the fake server, as its script sees it."""

    writer: asyncio.StreamWriter
    encoder: hpack.Encoder = field(default_factory=hpack.Encoder)
    client_settings: dict[int, int] = field(default_factory=dict)
    requests: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    """The stream id of each call the client opened."""
    goaway: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """The error code of the client's GOAWAY."""
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    def headers(
        self, stream: int, headers: list[tuple[str, str]], flags: int = END_HEADERS
    ) -> bytes:
        return frame(HEADERS, flags, stream, self.encoder.encode(headers, huffman=False))

    def answer_ok(self, stream: int, message: bytes = b"") -> None:
        """A gRPC answer as a well-behaved server sends it."""
        self.send(
            self.headers(stream, ANSWER_HEADERS),
            data(stream, b"\x00" + struct.pack(">I", len(message)) + message),
            self.headers(stream, [("grpc-status", "0")], END_HEADERS | END_STREAM),
        )

    async def request(self) -> int:
        return await asyncio.wait_for(self.requests.get(), 5)


Script = Callable[[Peer], Awaitable[None]]


async def _read_frames(reader: asyncio.StreamReader, peer: Peer) -> None:
    assert await reader.readexactly(len(PREFACE)) == PREFACE
    try:
        while True:
            head = await reader.readexactly(9)
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            stream = int.from_bytes(head[5:9], "big") & MAX_WINDOW
            payload = await reader.readexactly(length)
            if kind == SETTINGS and not flags & ACK:
                peer.client_settings.update(struct.iter_unpack(">HI", payload))
            elif kind == HEADERS:
                peer.requests.put_nowait(stream)
            elif kind == GOAWAY and not peer.goaway.done():
                peer.goaway.set_result(int.from_bytes(payload[4:8], "big"))
    except asyncio.IncompleteReadError:
        pass  # the client closed the connection
    finally:
        peer.closed.set()


@asynccontextmanager
async def fake_server(script: Script) -> AsyncIterator[tuple[str, list[Peer]]]:
    """A server running ``script`` on each connection while it reads the client's frames."""
    peers: list[Peer] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(writer)
        peers.append(peer)
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        reading = asyncio.create_task(_read_frames(reader, peer))
        try:
            await script(peer)
            await reading
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            reading.cancel()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", peers
    finally:
        server.close()
        for peer in peers:
            peer.writer.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


# ---------------------------------------------------------------- the ways to break HTTP/2


def breaking(*frames: Callable[[Peer, int], bytes]) -> Script:
    """A script: SETTINGS (none changed), then, once the client's call came, ``frames``."""

    async def script(peer: Peer) -> None:
        peer.send(settings())
        stream = await peer.request()
        peer.send(*(make(peer, stream) for make in frames))

    return script


def big_value(size: int) -> str:
    return "".join(chr(0x61 + (i * 7) % 26) for i in range(size))


def dynamic_table_blowup(peer: Peer, stream: int) -> bytes:
    """Headers under the limit whose trailers name the same big header twice from the
    dynamic table: a few bytes on the wire that decode to twice the limit."""
    big = ("x-big", big_value(800))
    head = peer.headers(stream, [*ANSWER_HEADERS, big])
    trailers = peer.headers(stream, [big, big, ("grpc-status", "0")], END_HEADERS | END_STREAM)
    assert len(trailers) < 100
    return head + trailers


def continued(peer: Peer, stream: int) -> bytes:
    block = peer.encoder.encode([*ANSWER_HEADERS, ("x-big", big_value(3 * LIMIT))], huffman=False)
    thirds = [block[i : i + LIMIT] for i in range(0, len(block), LIMIT)]
    out = frame(HEADERS, 0, stream, thirds[0])
    for i, piece in enumerate(thirds[1:], 1):
        out += frame(CONTINUATION, END_HEADERS if i == len(thirds) - 1 else 0, stream, piece)
    return out


@dataclass(frozen=True)
class Breach:
    script: Script
    code: int
    words: str
    header_trip: bool = False
    windows: tuple[int, int] | None = None
    """(stream, connection) receive windows the client grants, when not its defaults."""


BREACHES = {
    "window-update-of-0-on-the-connection": Breach(
        breaking(lambda p, s: window_update(0, 0)), PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on stream 0"
    ),
    "window-update-of-0-on-the-call": Breach(
        breaking(lambda p, s: window_update(s, 0)), PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on stream 1"
    ),
    "connection-window-past-2^31-1": Breach(
        breaking(lambda p, s: window_update(0, MAX_WINDOW)), FLOW_CONTROL_ERROR, "over 2^31-1"
    ),
    "stream-window-past-2^31-1": Breach(
        breaking(lambda p, s: window_update(s, MAX_WINDOW)), FLOW_CONTROL_ERROR, "over 2^31-1"
    ),
    "initial-window-size-past-2^31-1": Breach(
        breaking(lambda p, s: settings(INITIAL_WINDOW_SIZE=MAX_WINDOW + 1)),
        FLOW_CONTROL_ERROR,
        "SETTINGS_INITIAL_WINDOW_SIZE of 2147483648",
    ),
    "initial-window-size-change-past-2^31-1": Breach(
        breaking(
            lambda p, s: window_update(s, MAX_WINDOW - 65_535),
            lambda p, s: settings(INITIAL_WINDOW_SIZE=65_535 + 100),
        ),
        FLOW_CONTROL_ERROR,
        "over 2^31-1",
    ),
    "max-frame-size-of-0": Breach(
        breaking(lambda p, s: settings(MAX_FRAME_SIZE=0)),
        PROTOCOL_ERROR,
        "SETTINGS_MAX_FRAME_SIZE of 0",
    ),
    "max-frame-size-of-2^24": Breach(
        breaking(lambda p, s: settings(MAX_FRAME_SIZE=2**24)),
        PROTOCOL_ERROR,
        "SETTINGS_MAX_FRAME_SIZE",
    ),
    "push-enabled": Breach(
        breaking(lambda p, s: settings(ENABLE_PUSH=1)), PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH of 1"
    ),
    "settings-ack-with-a-payload": Breach(
        breaking(lambda p, s: frame(SETTINGS, ACK, 0, b"\x00" * 6)),
        FRAME_SIZE_ERROR,
        "SETTINGS ACK",
    ),
    "frame-over-the-max-frame-size-advertised": Breach(
        breaking(
            lambda p, s: struct.pack(">I", MiB + 1)[1:] + bytes([DATA, 0]) + struct.pack(">I", s)
        ),
        FRAME_SIZE_ERROR,
        f"frame of {MiB + 1} bytes",
    ),
    "data-past-the-stream-window": Breach(
        breaking(lambda p, s: p.headers(s, ANSWER_HEADERS) + data(s, bytes(70_000))),
        FLOW_CONTROL_ERROR,
        "DATA of 70000 bytes on stream 1 overruns the window granted",
        windows=(65_535, 64 * MiB),
    ),
    "data-past-the-connection-window": Breach(
        breaking(lambda p, s: p.headers(s, ANSWER_HEADERS) + data(s, bytes(70_000))),
        FLOW_CONTROL_ERROR,
        "DATA of 70000 bytes on the connection overruns the window granted",
        windows=(MiB, 65_535),
    ),
    "data-on-a-stream-never-opened": Breach(
        breaking(lambda p, s: data(s + 2, b"\x00" * 5)), PROTOCOL_ERROR, "DATA on stream 3"
    ),
    "headers-on-a-server-stream": Breach(
        breaking(lambda p, s: p.headers(2, ANSWER_HEADERS)), PROTOCOL_ERROR, "HEADERS on stream 2"
    ),
    "header-block-over-the-limit": Breach(
        breaking(lambda p, s: p.headers(s, [*ANSWER_HEADERS, ("x-big", big_value(2 * LIMIT))])),
        ENHANCE_YOUR_CALM,
        f"(the limit is {LIMIT}",
        header_trip=True,
    ),
    "header-block-over-the-limit-in-continuations": Breach(
        breaking(continued), ENHANCE_YOUR_CALM, f"(the limit is {LIMIT}", header_trip=True
    ),
    "header-list-over-the-limit-once-decoded": Breach(
        breaking(dynamic_table_blowup), ENHANCE_YOUR_CALM, "header list too large", header_trip=True
    ),
}


@pytest.mark.parametrize("breach", [pytest.param(b, id=name) for name, b in BREACHES.items()])
async def test_a_server_breaking_http2_fails_the_call_and_the_connection(
    breach: Breach, monkeypatch: pytest.MonkeyPatch
) -> None:
    if breach.windows is not None:
        monkeypatch.setattr(Connection, "stream_window", breach.windows[0])
        monkeypatch.setattr(Connection, "connection_window", breach.windows[1])
    trips_before = trips.counts().get(HEADER_LIMIT, 0)
    async with fake_server(breach.script) as (address, peers):
        channel = GrpcChannel(address, limits=Http2Limits(max_header_list_size=LIMIT))
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(RpcError) as info:
                await channel.unary("/test.Node/Call", b"hi", timeout=CALL_S)
            took = asyncio.get_running_loop().time() - started
            goaway = await asyncio.wait_for(peers[0].goaway, 5)
            await asyncio.wait_for(peers[0].closed.wait(), 5)
        finally:
            await channel.close()
    error = info.value
    assert error.code() is grpc.StatusCode.UNAVAILABLE, error
    assert f"the server at {address} broke HTTP/2" in error.details()
    assert breach.words in error.details()
    assert took < CALL_S / 2  # failed at once, not at its deadline
    assert goaway == breach.code
    assert peers[0].client_settings[MAX_HEADER_LIST_SIZE] == LIMIT  # what it held them to
    assert trips.counts().get(HEADER_LIMIT, 0) - trips_before == int(breach.header_trip)


async def test_the_next_call_opens_a_new_connection() -> None:
    """A connection that ended for a breach is forgotten: the next call gets a fresh one
    (here a server that behaves from then on)."""
    broke = False

    async def script(peer: Peer) -> None:
        nonlocal broke
        peer.send(settings())
        stream = await peer.request()
        if not broke:
            broke = True
            peer.send(window_update(0, 0))
        else:
            peer.answer_ok(stream, b"fine")

    async with fake_server(script) as (address, peers):
        channel = GrpcChannel(address)
        try:
            with pytest.raises(RpcError):
                await channel.unary("/test.Node/Call", b"hi", timeout=CALL_S)
            assert await channel.unary("/test.Node/Call", b"hi", timeout=CALL_S) == b"fine"
        finally:
            await channel.close()
    assert len(peers) == 2


async def test_a_well_behaved_server_within_every_bound_is_answered() -> None:
    """The bounds themselves are allowed: a window of exactly 2^31-1, the largest and
    smallest frame sizes, a header block right at the limit."""

    async def script(peer: Peer) -> None:
        peer.send(settings(MAX_FRAME_SIZE=2**24 - 1, INITIAL_WINDOW_SIZE=MAX_WINDOW))
        stream = await peer.request()
        peer.send(window_update(0, MAX_WINDOW - 65_535 + len(b"hi") + 5))  # exactly the most
        peer.send(settings(MAX_FRAME_SIZE=16_384, ENABLE_PUSH=0))
        peer.answer_ok(stream, b"ok")

    async with fake_server(script) as (address, _):
        channel = GrpcChannel(address, limits=Http2Limits(max_header_list_size=LIMIT))
        try:
            assert await channel.unary("/test.Node/Call", b"hi", timeout=CALL_S) == b"ok"
        finally:
            await channel.close()


# ---------------------------------------------------------------- through a graph


async def test_through_a_graph_a_breach_is_the_node_s_failure() -> None:
    """The node answers its load-time Metadata call, then breaks HTTP/2 on a prediction:
    the graph answers 503 / UNAVAILABLE naming the node and what it broke."""

    async def script(peer: Peer) -> None:
        peer.send(settings())
        peer.answer_ok(await peer.request())  # Metadata, at load
        await peer.request()
        peer.send(window_update(0, 0))

    async with fake_server(script) as (address, _):
        client = GrpcNodeClient("classifier", [address], max_message_size=MiB, timeout=CALL_S)
        try:
            await client.load()
            node = PlanNode("classifier", client, "image:1", predict=True)
            plan = PredictorPlan("default", node, 100, False, "", {"classifier": node})
            executor = Executor(plan, ExecutorMetrics(Registry(), "test", "default", ""))
            with pytest.raises(InferGraphError) as info:
                await executor.predict(Message(DataKind.NDARRAY, [[1.0, 2.0]]), CallContext("p1"))
        finally:
            await client.aclose()
    error = info.value
    assert (http_status(error), grpc_status(error)) == (503, grpc.StatusCode.UNAVAILABLE)
    assert error.node == "classifier"
    assert str(error).startswith("node 'classifier': ")
    assert "broke HTTP/2: WINDOW_UPDATE of 0 on stream 0" in str(error)
