"""The native gRPC server against a peer that means harm: floods, stalls and abuse of flow
control, each bounded by a limit of ``Http2Limits`` (``docs/limits.md``).

Every test serves a real component (a Seldon model class, the services
``build_grpc_server`` registers) and speaks raw frames over a TCP socket (``h2_raw``),
as an attacker would; grpcio is the well-behaved client beside it. What the same attacks
cost the server's memory is measured in ``test_h2_memory.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.settings import ComponentSettings
from infergraph.transport.grpc.component import build_grpc_server
from infergraph.wire import trips
from infergraph.wire.limits import Http2Limits
from tests.helpers.h2_raw import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    GOAWAY,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    PRIORITY,
    PROTOCOL_ERROR,
    RST_STREAM,
    WINDOW_UPDATE,
    RawPeer,
    call,
    frame,
    grpc_message,
    header_fields,
    ping,
    request_block,
    rst_stream,
    settings,
    window_update,
)

MiB = 1 << 20
PREDICT = "/seldon.protos.Model/Predict"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
REQUEST = pb.SeldonMessage(
    data=pb.DefaultData(tensor=pb.Tensor(shape=[1, 2], values=[1.0, 2.0]))
).SerializeToString()
DEFAULTS = Http2Limits()
NO_ERROR = 0
ANSWER_VALUES = 32_768
"""The ``Big`` model's answer: 256 KiB of float64."""


class Doubler:
    def predict(self, X: Any, names: list[str]) -> Any:
        return np.asarray(X) * 2


class Big:
    def predict(self, X: Any, names: list[str]) -> Any:
        return np.zeros(ANSWER_VALUES)


@asynccontextmanager
async def component(user: Any = None, limits: Http2Limits | None = None) -> AsyncIterator[str]:
    """A component served by the native server on a free port: its address."""
    dataplane = ComponentDataPlane(user or Doubler(), ComponentSettings(sync_mode="inline"))
    server = build_grpc_server(dataplane, max_message_size=8 * MiB, limits=limits)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
        dataplane.close()


@asynccontextmanager
async def raw(address: str, values: dict[int, int] | None = None) -> AsyncIterator[RawPeer]:
    peer = await RawPeer.connect(address, values)
    try:
        yield peer
    finally:
        await peer.close()


async def predicts(address: str) -> list[float]:
    """One Predict from grpcio: the model's answer."""
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await pb_grpc.ModelStub(channel).Predict(pb.SeldonMessage.FromString(REQUEST))
    return list(reply.data.tensor.values)


class Trips:
    """How often each limit tripped during the ``with``."""

    def __enter__(self) -> Trips:
        self.before = trips.counts()
        return self

    def __exit__(self, *exc: object) -> None:
        after = trips.counts()
        self.delta = {
            k: v - self.before.get(k, 0) for k, v in after.items() if v != self.before.get(k, 0)
        }


# ---------------------------------------------------------------- header blocks


@pytest.mark.parametrize(
    ("fragments", "limit"),
    [
        pytest.param([b""] * 20_000, "http2.max_continuations", id="twenty-thousand-empty"),
        pytest.param([b"\x00" * 16_000] * 5, "http2.max_header_list_size", id="past-the-size"),
    ],
)
async def test_a_header_block_in_endless_continuations_is_refused_at_once(
    fragments: list[bytes], limit: str
) -> None:
    """Each CONTINUATION frame is counted and the block's size kept as it grows: 20,000
    empty ones took seconds to join (the sum redone at each) and never reached the cap."""
    block = request_block(PREDICT)
    frames = [frame(HEADERS, 0, 1, block[:10])]
    frames += [frame(CONTINUATION, 0, 1, f) for f in fragments]
    frames.append(frame(CONTINUATION, END_HEADERS, 1, block[10:]))
    with Trips() as tripped:
        async with component() as address, raw(address) as peer:
            started = time.monotonic()
            peer.send(*frames)
            code = await peer.goaway()
            elapsed = time.monotonic() - started
            assert await predicts(address) == [2.0, 4.0]  # the server is still there
    assert code == ENHANCE_YOUR_CALM
    assert elapsed < 1.0
    assert tripped.delta == {limit: 1}


async def test_a_header_block_at_the_limit_in_continuations_is_read() -> None:
    """A block a peer may send (up to max_continuations frames) is still taken."""
    block, n = request_block(PREDICT), DEFAULTS.max_continuations
    pieces = [block[i * len(block) // n : (i + 1) * len(block) // n] for i in range(n)]
    frames = [frame(HEADERS, 0, 1, b"")]
    frames += [
        frame(CONTINUATION, END_HEADERS if i == n - 1 else 0, 1, p) for i, p in enumerate(pieces)
    ]
    frames.append(frame(DATA, END_STREAM, 1, grpc_message(REQUEST)))
    async with component() as address, raw(address) as peer:
        peer.send(*frames)
        end = await peer.until(lambda f: f.kind == HEADERS and f.flags & END_STREAM)
    assert header_fields(end.payload)[b"grpc-status"] == b"0"


# ---------------------------------------------------------------- floods of control frames

OPEN_STREAM_1 = frame(HEADERS, END_HEADERS, 1, request_block(PREDICT))


@pytest.mark.parametrize(
    ("prelude", "flood"),
    [
        pytest.param(b"", ping(), id="ping"),
        pytest.param(b"", settings(), id="settings"),
        pytest.param(b"", window_update(0, 1), id="window-update"),
        pytest.param(b"", frame(PRIORITY, 0, 1, b"\0\0\0\0\x10"), id="priority"),
        pytest.param(b"", frame(0x42, 0, 0, b"?"), id="unknown-type"),
        pytest.param(OPEN_STREAM_1, frame(DATA, 0, 1), id="empty-data"),
        pytest.param(OPEN_STREAM_1 + rst_stream(1), rst_stream(1), id="rst-of-a-closed-stream"),
    ],
)
async def test_frames_that_ask_no_call_are_a_flood_past_the_budget(
    prelude: bytes, flood: bytes
) -> None:
    with Trips() as tripped:
        async with component() as address, raw(address) as peer:
            peer.send(prelude, flood * (DEFAULTS.max_control_frames + 10))
            code = await peer.goaway()
            assert await predicts(address) == [2.0, 4.0]
    assert code == ENHANCE_YOUR_CALM
    assert tripped.delta == {"http2.max_control_frames": 1}


async def test_calls_in_between_refill_the_control_budget() -> None:
    pings = ping() * (DEFAULTS.max_control_frames - 10)
    async with component() as address, raw(address) as peer:
        for stream in (1, 3, 5):
            peer.send(pings, call(stream, PREDICT, REQUEST))
            await peer.until(
                lambda f, s=stream: f.kind == HEADERS and f.stream == s and f.flags & END_STREAM
            )
        await peer.pong()
    assert not [f for f in peer.frames if f.kind == GOAWAY]


# ---------------------------------------------------------------- rapid reset


async def test_rapid_reset_is_cut_off_and_costs_little() -> None:
    """CVE-2023-44487: 20,000 calls opened and reset at once."""
    frames = [call(2 * i + 1, PREDICT, REQUEST) + rst_stream(2 * i + 1) for i in range(20_000)]
    with Trips() as tripped:
        async with component() as address, raw(address) as peer:
            started = time.monotonic()
            peer.send(*frames)
            code = await peer.goaway()
            elapsed = time.monotonic() - started
            assert await predicts(address) == [2.0, 4.0]
    assert code == ENHANCE_YOUR_CALM
    assert elapsed < 5.0
    assert tripped.delta == {"http2.max_resets": 1}


async def test_resets_between_completed_calls_are_allowed() -> None:
    """A client that cancels many calls but completes some keeps its connection."""
    resets = DEFAULTS.max_resets - 10
    async with component() as address, raw(address) as peer:
        stream = 1
        for _ in range(3):
            frames = []
            for _ in range(resets):
                frames.append(call(stream, PREDICT, REQUEST) + rst_stream(stream))
                stream += 2
            peer.send(*frames, call(stream, PREDICT, REQUEST))
            await peer.until(
                lambda f, s=stream: f.kind == HEADERS and f.stream == s and f.flags & END_STREAM
            )
            stream += 2
        await peer.pong()
    assert not [f for f in peer.frames if f.kind == GOAWAY]


# ---------------------------------------------------------------- answers a peer does not take


async def test_answers_past_max_pending_send_fail_and_the_held_ones_arrive_whole() -> None:
    limits = Http2Limits(max_pending_send=MiB)
    with Trips() as tripped:
        async with (
            component(Big(), limits) as address,
            raw(address, {INITIAL_WINDOW_SIZE: 0}) as peer,
        ):
            streams = [2 * i + 1 for i in range(10)]
            peer.send(*(call(s, PREDICT, REQUEST) for s in streams))
            for s in streams:
                await peer.until(lambda f, s=s: f.kind == HEADERS and f.stream == s)
            refused = {f.stream for f in peer.frames if f.kind == HEADERS and f.flags & END_STREAM}
            held = [s for s in streams if s not in refused]
            peer.send(window_update(0, 64 * MiB), *(window_update(s, 2 * MiB) for s in held))
            for s in held:
                await peer.until(
                    lambda f, s=s: f.kind == HEADERS and f.stream == s and f.flags & END_STREAM
                )
    statuses = {
        f.stream: header_fields(f.payload)[b"grpc-status"]
        for f in peer.frames
        if f.kind == HEADERS and f.flags & END_STREAM
    }
    assert {statuses[s] for s in refused} == {b"8"}  # RESOURCE_EXHAUSTED
    assert {statuses[s] for s in held} == {b"0"}
    sizes = set()
    for s in held:
        data = b"".join(f.payload for f in peer.frames if f.kind == DATA and f.stream == s)
        assert int.from_bytes(data[1:5], "big") == len(data) - 5
        assert len(pb.SeldonMessage.FromString(data[5:]).data.tensor.values) == ANSWER_VALUES
        sizes.add(len(data))
    (size,) = sizes
    assert len(held) == MiB // size  # as many as the limit holds
    assert tripped.delta == {"http2.max_pending_send": len(refused)}


# ---------------------------------------------------------------- flow control


async def _open_call(peer: RawPeer) -> None:
    """Stream 1, a Predict whose request has not ended: open on both sides."""
    peer.send(OPEN_STREAM_1)
    await peer.pong()


@pytest.mark.parametrize(
    ("abuse", "code"),
    [
        pytest.param(window_update(0, 0), PROTOCOL_ERROR, id="connection-increment-0"),
        pytest.param(window_update(0, 2**31 - 1), FLOW_CONTROL_ERROR, id="connection-overflow"),
        pytest.param(
            settings({INITIAL_WINDOW_SIZE: 2**31}),
            FLOW_CONTROL_ERROR,
            id="initial-window-too-large",
        ),
        pytest.param(
            window_update(1, 2**31 - 1 - 65_535) + settings({INITIAL_WINDOW_SIZE: 65_536}),
            FLOW_CONTROL_ERROR,
            id="initial-window-overflows-a-stream",
        ),
        pytest.param(window_update(7, 1), PROTOCOL_ERROR, id="window-update-of-an-idle-stream"),
        pytest.param(
            frame(DATA, 0, 1, grpc_message(b"x" * 10)) + frame(DATA, 0, 1, b"x" * (1 << 20)) * 4,
            FLOW_CONTROL_ERROR,
            id="data-past-the-stream-window",
        ),
    ],
)
async def test_flow_control_abuse_ends_the_connection(abuse: bytes, code: int) -> None:
    async with component() as address, raw(address) as peer:
        await _open_call(peer)
        peer.send(abuse)
        assert await peer.goaway() == code


@pytest.mark.parametrize(
    ("abuse", "code"),
    [
        pytest.param(window_update(1, 0), PROTOCOL_ERROR, id="increment-0"),
        pytest.param(window_update(1, 2**31 - 1), FLOW_CONTROL_ERROR, id="overflow"),
    ],
)
async def test_a_stream_window_update_abuse_resets_the_stream_only(abuse: bytes, code: int) -> None:
    async with component() as address, raw(address) as peer:
        await _open_call(peer)
        peer.send(abuse)
        reset = await peer.until(lambda f: f.kind == RST_STREAM and f.stream == 1)
        peer.send(call(3, PREDICT, REQUEST))
        await peer.until(lambda f: f.kind == HEADERS and f.stream == 3 and f.flags & END_STREAM)
    assert int.from_bytes(reset.payload, "big") == code


async def test_a_stream_window_is_given_back_as_the_handler_takes_messages() -> None:
    """Reflection (a bidirectional stream) answers each request before it reads the next;
    with no window for its answers it reads no more, and the client may send one stream
    window of requests, not more, until it takes answers."""
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="x" * 60_000)
    message = grpc_message(request.SerializeToString())
    headers = frame(HEADERS, END_HEADERS, 1, request_block(REFLECTION))
    async with component() as address, raw(address, {INITIAL_WINDOW_SIZE: 0}) as peer:
        peer.send(headers, window_update(0, 256 * MiB))
        window, sent = 4 * MiB, 0  # what our STREAM_WINDOW lets us send at first
        while sent < 16 * MiB:
            while window >= len(message):
                peer.send(frame(DATA, 0, 1, message))
                window -= len(message)
                sent += len(message)
            await peer.pong()
            window += sum(int.from_bytes(f.payload, "big") for f in _new_updates(peer, 1))
            if window < len(message):
                break
        assert sent <= 4 * MiB
        peer.send(window_update(1, 256 * MiB))  # now take the answers
        await peer.until(lambda f: f.kind == WINDOW_UPDATE and f.stream == 1)


def _new_updates(peer: RawPeer, stream: int) -> list[Any]:
    updates = [f for f in peer.frames if f.kind == WINDOW_UPDATE and f.stream == stream]
    seen = getattr(peer, "_updates_seen", 0)
    peer._updates_seen = len(updates)  # type: ignore[attr-defined]
    return updates[seen:]


async def test_the_stream_limit_is_a_limit_and_trips() -> None:
    limits = Http2Limits(max_concurrent_streams=2)
    with Trips() as tripped:
        async with component(limits=limits) as address, raw(address) as peer:
            peer.send(*(frame(HEADERS, END_HEADERS, s, request_block(PREDICT)) for s in (1, 3, 5)))
            reset = await peer.until(lambda f: f.kind == RST_STREAM)
    assert reset.stream == 5
    assert tripped.delta == {"http2.max_concurrent_streams": 1}


# ---------------------------------------------------------------- connections


async def test_connections_past_the_cap_are_refused_and_the_others_served() -> None:
    limits = Http2Limits(max_connections=2)
    with Trips() as tripped:
        async with component(limits=limits) as address, raw(address) as first:
            async with raw(address) as second, raw(address) as third:
                assert await third.goaway() == ENHANCE_YOUR_CALM
                await third.closed_by_server()
                second.send(call(1, PREDICT, REQUEST))
                await second.until(lambda f: f.kind == HEADERS and f.stream == 1)
            await first.pong()
            assert await predicts(address) == [2.0, 4.0]  # a place came free
    assert tripped.delta == {"http2.max_connections": 1}


async def test_an_idle_connection_is_ended_and_a_busy_one_is_not() -> None:
    limits = Http2Limits(idle_timeout=0.5)
    with Trips() as tripped:
        async with component(limits=limits) as address:
            async with raw(address) as idle, raw(address) as busy:
                started = time.monotonic()
                stream = 1
                while time.monotonic() - started < 1.5:  # calls paced for three looks or more
                    busy.send(call(stream, PREDICT, REQUEST))
                    await busy.until(lambda f, s=stream: f.kind == HEADERS and f.stream == s)
                    await asyncio.sleep(0.05)  # pacing the calls, not waiting for an event
                    stream += 2
                assert await idle.goaway(timeout=5) == NO_ERROR
                await idle.closed_by_server()
                assert not [f for f in busy.frames if f.kind == GOAWAY]
            assert await predicts(address) == [2.0, 4.0]  # a new connection is welcome
    assert tripped.delta == {"http2.idle_timeout": 1}
