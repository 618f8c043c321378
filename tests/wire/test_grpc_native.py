"""infergraph's own gRPC server (``--grpc-server native``), on the test's event loop.

Two kinds of client, neither ours: grpcio (``grpc.aio``) for what gRPC users see, and
python-hyper's ``h2`` over a plain asyncio connection for HTTP/2 itself (frames, settings,
flow control, HPACK), with every frame the server sends recorded as it came. Each test
serves its own server on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import struct
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from google.protobuf import descriptor_pb2, wrappers_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from infergraph.transport.grpc.server import new_server, register
from infergraph.wire.grpc.server import NativeGrpcServer
from infergraph.wire.http2 import HeaderDecoder

SERVICE = "test.Native"
MiB = 1 << 20
NO_LIMIT = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]

PROTOCOL_ERROR, REFUSED_STREAM = 0x1, 0x7


def path(method: str) -> str:
    return f"/{SERVICE}/{method}"


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` bytes no two places of which look alike (a chunk out of place shows)."""
    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------- the service under test


@dataclass
class Probe:
    """What the handlers saw and did."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    crashes: int = 0
    running: int = 0
    peak: int = 0
    seen: list[Any] = field(default_factory=list)


def _delay(request: bytes) -> float:
    text, _, _ = request.partition(b"|")
    return float(text or 0)


def handlers(probe: Probe) -> dict[str, grpc.RpcMethodHandler]:
    """Raw-bytes methods (no serializers) but ``Parse``, which takes a protobuf message."""

    async def echo(request: bytes, context: Any) -> bytes:
        """The request back; its ``x-`` metadata back as trailing metadata."""
        extra = [(k, v) for k, v in context.invocation_metadata() if k.startswith("x-")]
        probe.seen.append(extra)
        context.set_trailing_metadata(extra)
        return request

    async def slow(request: bytes, context: Any) -> bytes:
        """``b"<seconds>|..."``: sleeps, then answers the request (cancellation noted)."""
        probe.running += 1
        probe.peak = max(probe.peak, probe.running)
        probe.started.set()
        try:
            await asyncio.sleep(_delay(request))
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        finally:
            probe.running -= 1
        probe.finished.set()
        return request

    async def sized(request: bytes, context: Any) -> bytes:
        """``b"<size>|<seconds>"``: ``payload(size)`` after the delay."""
        size, _, delay = request.partition(b"|")
        probe.started.set()
        await asyncio.sleep(float(delay or 0))
        return payload(int(size))

    async def parse(request: wrappers_pb2.BytesValue, context: Any) -> wrappers_pb2.BytesValue:
        return wrappers_pb2.BytesValue(value=request.value[::-1])

    async def crash(request: bytes, context: Any) -> bytes:
        probe.crashes += 1
        raise RuntimeError("the handler broke")

    async def abort(request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, request.decode())
        raise AssertionError("abort returns")

    async def set_code(request: bytes, context: Any) -> bytes:
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details("nothing by that name")
        return b"ignored"

    async def header(request: bytes, context: Any) -> bytes:
        """The ``x-n`` metadata's value (the HPACK tests)."""
        values = [v for k, v in context.invocation_metadata() if k == "x-n"]
        return "\n".join(str(v) for v in values).encode()

    async def deadline(request: bytes, context: Any) -> bytes:
        return repr(context.time_remaining()).encode()

    async def count_up(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for i in range(int(request)):
            yield str(i).encode()

    async def total(requests: AsyncIterator[bytes], context: Any) -> bytes:
        return str(sum([len(r) async for r in requests])).encode()

    async def shout(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for r in requests:
            yield r.upper()

    unary = grpc.unary_unary_rpc_method_handler
    return {
        "Echo": unary(echo),
        "Slow": unary(slow),
        "Sized": unary(sized),
        "Parse": unary(
            parse,
            request_deserializer=wrappers_pb2.BytesValue.FromString,
            response_serializer=wrappers_pb2.BytesValue.SerializeToString,
        ),
        "Crash": unary(crash),
        "Abort": unary(abort),
        "SetCode": unary(set_code),
        "Header": unary(header),
        "Deadline": unary(deadline),
        "CountUp": grpc.unary_stream_rpc_method_handler(count_up),
        "Total": grpc.stream_unary_rpc_method_handler(total),
        "Shout": grpc.stream_stream_rpc_method_handler(shout),
    }


@asynccontextmanager
async def serving(
    probe: Probe | None = None,
    *,
    max_message_size: int = 4 * MiB,
    options: Iterable[tuple[str, Any]] = (),
    reflection: Iterable[str] | None = None,
) -> AsyncIterator[tuple[NativeGrpcServer, str]]:
    server = new_server(max_message_size, list(options), kind="native")
    assert isinstance(server, NativeGrpcServer)
    register(server, {SERVICE: handlers(probe or Probe())}, reflection)
    port = server.add_insecure_port("127.0.0.1:0")
    assert port
    await server.start()
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def channel(address: str, **kwargs: Any) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=NO_LIMIT, **kwargs)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


# ---------------------------------------------------------------- an independent HTTP/2 client


def grpc_frame(body: bytes, compressed: bool = False) -> bytes:
    return struct.pack(">BI", int(compressed), len(body)) + body


def raw_frame(kind: int, flags: int, stream: int, body: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(body))[1:] + bytes((kind, flags)) + struct.pack(">I", stream) + body
    )


def split_frames(data: bytes) -> Iterable[tuple[int, bytes]]:
    """(type, payload) of each whole frame in ``data``."""
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        yield data[3], data[9 : 9 + length]
        data = data[9 + length :]


@dataclass
class Reply:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    ended: bool = False
    reset: int | None = None

    @property
    def status(self) -> bytes | None:
        """grpc-status, from the trailers or a trailers-only answer."""
        return self.trailers.get(b"grpc-status", self.headers.get(b"grpc-status"))

    @property
    def message(self) -> bytes:
        """The one gRPC message of the answer, its prefix checked."""
        flag, length = struct.unpack_from(">BI", self.data)
        assert flag == 0 and len(self.data) == 5 + length
        return bytes(self.data[5:])


class Peer:
    """python-hyper's h2 client over asyncio streams; each frame the server sends is recorded
    as (type, flags, stream, payload) before h2 reads it, and received data is acknowledged
    (so h2 sends WINDOW_UPDATE as a client should). h2 reads nothing after a GOAWAY (it has
    no graceful shutdown): later frames are only recorded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.frames: list[tuple[int, int, int, bytes]] = []
        self.goaway = False
        self.events: list[h2.events.Event] = []
        self.replies: dict[int, Reply] = {}
        self.closed = False
        self._raw = bytearray()

    @classmethod
    async def connect(cls, address: str, settings: dict[int, int] | None = None) -> Peer:
        host, _, port = address.rpartition(":")
        peer = cls(*await asyncio.open_connection(host, int(port)))
        if settings:
            peer.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)  # type: ignore[arg-type]
        peer.conn.initiate_connection()
        peer.flush()
        await peer.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        return peer

    def flush(self) -> None:
        if data := self.conn.data_to_send():
            self.writer.write(data)

    def _record(self, data: bytes) -> bytes:
        """Record the whole frames ``data`` completes; the bytes of those h2 is to read."""
        self._raw += data
        for_h2 = bytearray()
        while len(self._raw) >= 9:
            length = int.from_bytes(self._raw[:3], "big")
            if len(self._raw) < 9 + length:
                break
            kind, flags = self._raw[3], self._raw[4]
            stream = int.from_bytes(self._raw[5:9], "big") & 0x7FFFFFFF
            self.frames.append((kind, flags, stream, bytes(self._raw[9 : 9 + length])))
            if not self.goaway:
                for_h2 += self._raw[: 9 + length]
            self.goaway = self.goaway or kind == 7
            del self._raw[: 9 + length]
        return bytes(for_h2)

    def sizes(self, kind: int, stream: int) -> list[int]:
        """The lengths of the frames of ``kind`` the server sent on ``stream``."""
        return [len(body) for k, _, s, body in self.frames if k == kind and s == stream]

    async def receive(self, timeout: float = 5.0) -> list[h2.events.Event]:
        data = await asyncio.wait_for(self.reader.read(1 << 20), timeout)
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(self._record(data))
        for event in events:
            self._note(event)
        self.flush()
        self.events.extend(events)
        return events

    def _note(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None)
        if stream_id is None or stream_id not in self.replies:
            return
        reply = self.replies[stream_id]
        if isinstance(event, h2.events.ResponseReceived):
            reply.headers = dict(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.DataReceived):
            reply.data += event.data or b""
            self.conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            reply.trailers = dict(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.StreamEnded):
            reply.ended = True
        elif isinstance(event, h2.events.StreamReset):
            reply.reset = event.error_code

    async def until(self, done: Any, timeout: float = 5.0, since: int = 0) -> h2.events.Event:
        """Read until an event ``done`` accepts (from the ``since``-th on); that event."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for event in self.events[seen:]:
                if done(event):
                    return event
            seen = len(self.events)
            if self.closed:
                raise AssertionError(f"connection closed; events: {self.events}")
            await self.receive(max(0.01, deadline - time.monotonic()))

    async def closed_by_server(self, timeout: float = 5.0) -> None:
        while not self.closed:
            await self.receive(timeout)

    def request(
        self,
        method: str,
        body: bytes | None = b"",
        *,
        metadata: Iterable[tuple[bytes, bytes]] = (),
        http_method: bytes = b"POST",
        content_type: bytes | None = b"application/grpc",
        end: bool = True,
    ) -> int:
        """Open a stream calling ``method`` with ``body`` as one gRPC message."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", http_method),
            (b":scheme", b"http"),
            (b":path", path(method).encode()),
            (b":authority", b"test"),
        ]
        if content_type is not None:
            headers.append((b"content-type", content_type))
        headers += [(b"te", b"trailers"), *metadata]
        self.replies[stream_id] = Reply()
        self.conn.send_headers(stream_id, headers, end_stream=body is None and end)
        if body is not None:
            self.conn.send_data(stream_id, grpc_frame(body), end_stream=end)
        self.flush()
        return stream_id

    async def reply(self, stream_id: int, timeout: float = 5.0) -> Reply:
        reply = self.replies[stream_id]
        deadline = time.monotonic() + timeout
        while not (reply.ended or reply.reset is not None):
            if self.closed:
                raise AssertionError(f"connection closed; events: {self.events}")
            await self.receive(max(0.01, deadline - time.monotonic()))
        return reply

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@asynccontextmanager
async def peer_to(address: str, settings: dict[int, int] | None = None) -> AsyncIterator[Peer]:
    peer = await Peer.connect(address, settings)
    try:
        yield peer
    finally:
        await peer.close()


# ---------------------------------------------------------------- unary calls, metadata


async def test_unary_round_trip_echoes_metadata_including_binary() -> None:
    async with serving() as (_, address), channel(address) as ch:
        call = ch.unary_unary(path("Echo"))(
            b"hello",
            metadata=(("x-text", "plain words"), ("x-blob-bin", b"\x00\xff\x10 binary\x80")),
        )
        assert await call == b"hello"
        trailing = dict(list(await call.trailing_metadata()))  # type: ignore[arg-type]
        assert await call.code() is grpc.StatusCode.OK
    assert trailing["x-text"] == "plain words"
    assert trailing["x-blob-bin"] == b"\x00\xff\x10 binary\x80"


async def test_handler_sees_the_metadata_it_was_sent() -> None:
    probe = Probe()
    async with serving(probe) as (_, address), channel(address) as ch:
        await ch.unary_unary(path("Echo"))(b"", metadata=(("x-one-bin", b"\x01\x02\x03\x04"),))
    assert probe.seen == [[("x-one-bin", b"\x01\x02\x03\x04")]]


async def test_protobuf_messages_are_parsed_and_serialized() -> None:
    async with serving() as (_, address), channel(address) as ch:
        parse = ch.unary_unary(
            path("Parse"),
            request_serializer=wrappers_pb2.BytesValue.SerializeToString,
            response_deserializer=wrappers_pb2.BytesValue.FromString,
        )
        answer = await parse(wrappers_pb2.BytesValue(value=b"abc"))
    assert answer.value == b"cba"


async def test_time_remaining_follows_the_client_deadline() -> None:
    async with serving() as (_, address), channel(address) as ch:
        remaining = float(await ch.unary_unary(path("Deadline"))(b"", timeout=30))
        unbounded = await ch.unary_unary(path("Deadline"))(b"")
    assert 25 < remaining <= 31  # grpc-core rounds the grpc-timeout it sends up
    assert unbounded == b"None"


async def test_streaming_calls_every_shape() -> None:
    async with serving() as (_, address), channel(address) as ch:
        counted = [m async for m in ch.unary_stream(path("CountUp"))(b"5")]
        total = await ch.stream_unary(path("Total"))(iter([b"ab", b"cde", b""]))
        shouted = [m async for m in ch.stream_stream(path("Shout"))(iter([b"a", b"bc"]))]
    assert counted == [b"0", b"1", b"2", b"3", b"4"]
    assert total == b"5"
    assert shouted == [b"A", b"BC"]


# ---------------------------------------------------------------- errors


async def test_unknown_method_is_unimplemented_naming_it() -> None:
    async with serving() as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(f"/{SERVICE}/NoSuchMethod")(b"x"))
        assert await ch.unary_unary(path("Echo"))(b"after") == b"after"
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert f"/{SERVICE}/NoSuchMethod" in (error.details() or "")


async def test_unparseable_request_is_invalid_argument() -> None:
    async with serving() as (_, address), channel(address) as ch:
        # field 1, length-delimited, claims 100 bytes and has 1
        error = await rpc_error(ch.unary_unary(path("Parse"))(b"\x0a\x64\x00"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot be parsed" in (error.details() or "")


async def test_handler_crash_is_internal_and_the_server_goes_on() -> None:
    probe = Probe()
    async with serving(probe) as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(path("Crash"))(b""))
        again = await rpc_error(ch.unary_unary(path("Crash"))(b""))
        assert await ch.unary_unary(path("Echo"))(b"still here") == b"still here"
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error.details() == "RuntimeError: the handler broke"
    assert again.code() is grpc.StatusCode.INTERNAL
    assert probe.crashes == 2


@pytest.mark.parametrize(
    "details",
    [
        "plain",
        "100% sure: ünïcödé 日本語 ✓",
        "a%20b %41 % %%",
        "line one\nline two\ttab",
        " spaces at both ends ",
    ],
)
async def test_abort_details_arrive_intact(details: str) -> None:
    async with serving() as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(path("Abort"))(details.encode()))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == details


async def test_status_set_without_raising_is_sent() -> None:
    async with serving() as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(path("SetCode"))(b""))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "nothing by that name"


async def test_long_error_details_come_in_continuation_frames() -> None:
    """A status larger than the client's frame size (16 KiB here) goes in HEADERS and
    CONTINUATION frames: one frame over that size would end the whole connection."""
    details = "why ✓ " * 3000  # 54 KB once percent-encoded
    async with serving() as (_, address), peer_to(address) as peer:
        slow = peer.request("Slow", b"0.2|other call")
        aborted = await peer.reply(peer.request("Abort", details.encode()))
        other = await peer.reply(slow)
    assert aborted.status == b"9"  # FAILED_PRECONDITION
    assert unquote(aborted.headers[b"grpc-message"].decode("ascii")) == details
    assert peer.sizes(9, 3)  # CONTINUATION
    assert all(len(body) <= 16_384 for _, _, _, body in peer.frames)
    assert other.message == b"0.2|other call"


# ---------------------------------------------------------------- large messages


async def test_large_messages_both_ways() -> None:
    request = payload(8 * MiB, seed=1)
    async with serving(max_message_size=16 * MiB) as (_, address), channel(address) as ch:
        assert await ch.unary_unary(path("Echo"))(request) == request
        assert await ch.unary_unary(path("Sized"))(b"%d" % (8 * MiB)) == payload(8 * MiB)


async def test_twenty_mebibytes_with_raised_limits() -> None:
    request = payload(20 * MiB, seed=2)
    async with serving(max_message_size=32 * MiB) as (_, address), channel(address) as ch:
        echo = ch.unary_unary(path("Echo"))
        first, second = await asyncio.gather(echo(request), echo(request[::-1]))
    assert first == request
    assert second == request[::-1]


async def test_request_over_the_receive_limit_is_resource_exhausted() -> None:
    async with serving(max_message_size=1 * MiB) as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(path("Echo"))(payload(MiB + 1)))
        assert await ch.unary_unary(path("Echo"))(payload(MiB)) == payload(MiB)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MiB) in (error.details() or "")


async def test_response_over_the_send_limit_is_resource_exhausted() -> None:
    options = [("grpc.max_send_message_length", MiB)]
    async with serving(options=options) as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(path("Sized"))(b"%d" % (2 * MiB)))
        assert await ch.unary_unary(path("Sized"))(b"%d" % MiB) == payload(MiB)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Sent message larger than max" in (error.details() or "")


# ---------------------------------------------------------------- concurrency


async def test_two_hundred_concurrent_calls_on_one_channel() -> None:
    probe = Probe()
    rng = random.Random(3)
    requests = [b"%.3f|call %d" % (rng.uniform(0, 0.05), i) for i in range(200)]
    async with serving(probe) as (_, address), channel(address) as ch:
        slow = ch.unary_unary(path("Slow"))
        answers = await asyncio.gather(*(slow(r) for r in requests))
    assert answers == requests
    assert probe.peak > 50  # they ran together, not one after another


# ---------------------------------------------------------------- deadlines and cancellation


async def test_deadline_exceeded_cancels_the_handler() -> None:
    probe = Probe()
    async with serving(probe) as (_, address), channel(address) as ch:
        error = await rpc_error(ch.unary_unary(path("Slow"))(b"5|", timeout=0.2))
        await asyncio.wait_for(probe.cancelled.wait(), 2)
        assert await ch.unary_unary(path("Echo"))(b"next") == b"next"
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert not probe.finished.is_set()


async def test_the_server_enforces_grpc_timeout_itself() -> None:
    """A client that never gives up (h2) still gets DEADLINE_EXCEEDED from the server."""
    probe = Probe()
    async with serving(probe) as (_, address), peer_to(address) as peer:
        started = time.monotonic()
        stream = peer.request("Slow", b"5|", metadata=[(b"grpc-timeout", b"100m")])
        reply = await peer.reply(stream, timeout=3)
        elapsed = time.monotonic() - started
        await asyncio.wait_for(probe.cancelled.wait(), 2)
    assert reply.status == b"4"  # DEADLINE_EXCEEDED
    assert reply.headers[b":status"] == b"200"
    assert 0.09 < elapsed < 2


async def test_client_cancel_cancels_the_handler_and_the_connection_stays() -> None:
    probe = Probe()
    async with serving(probe) as (_, address), channel(address) as ch:
        call = ch.unary_unary(path("Slow"))(b"5|")
        await asyncio.wait_for(probe.started.wait(), 2)
        call.cancel()
        await asyncio.wait_for(probe.cancelled.wait(), 2)
        assert await call.code() is grpc.StatusCode.CANCELLED
        assert await ch.unary_unary(path("Echo"))(b"next") == b"next"
    assert not probe.finished.is_set()


async def test_rst_stream_cancels_only_its_call() -> None:
    probe = Probe()
    async with serving(probe) as (_, address), peer_to(address) as peer:
        doomed = peer.request("Slow", b"5|")
        await asyncio.wait_for(probe.started.wait(), 2)
        peer.conn.reset_stream(doomed, error_code=0x8)  # CANCEL
        peer.flush()
        await asyncio.wait_for(probe.cancelled.wait(), 2)
        reply = await peer.reply(peer.request("Echo", b"after"))
    assert reply.status == b"0"
    assert reply.message == b"after"


# ---------------------------------------------------------------- compression


async def test_gzip_requests_from_grpcio_are_inflated() -> None:
    request = b"squeeze me " * 50_000
    async with serving() as (_, address):
        async with channel(address, compression=grpc.Compression.Gzip) as ch:
            assert await ch.unary_unary(path("Echo"))(request) == request
        async with channel(address) as ch:
            echo = ch.unary_unary(path("Echo"))
            assert await echo(request, compression=grpc.Compression.Gzip) == request
            assert await echo(request, compression=grpc.Compression.Deflate) == request


async def test_gzip_requests_inflate_under_the_limit() -> None:
    """550 KB inflated, some KB on the wire: a 256 KiB limit holds against what it inflates to
    (which also shows grpcio's message reached the server compressed)."""
    request = b"squeeze me " * 50_000
    async with (
        serving(max_message_size=256 << 10) as (_, address),
        channel(address, compression=grpc.Compression.Gzip) as ch,
    ):
        error = await rpc_error(ch.unary_unary(path("Echo"))(request))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "gzip-compressed" in (error.details() or "")


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [(b"gzip", gzip.compress), (b"deflate", zlib.compress)],
)
async def test_compressed_messages_at_the_frame_level(encoding: bytes, compress: Any) -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        stream = peer.request("Echo", None, metadata=[(b"grpc-encoding", encoding)], end=False)
        peer.conn.send_data(stream, grpc_frame(compress(b"inflated"), compressed=True), True)
        peer.flush()
        ok = await peer.reply(stream)
        stream = peer.request("Echo", None, metadata=[(b"grpc-encoding", b"snappy")], end=False)
        peer.conn.send_data(stream, grpc_frame(b"whatever", compressed=True), True)
        peer.flush()
        unknown = await peer.reply(stream)
    assert ok.status == b"0"
    assert ok.message == b"inflated"
    assert unknown.status == b"12"  # UNIMPLEMENTED


# ---------------------------------------------------------------- reflection


async def test_reflection_through_the_native_server() -> None:
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1alpha.ServerReflection"
        ),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
    ]
    async with serving(reflection=[SERVICE]) as (_, address), channel(address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = [a async for a in stub.ServerReflectionInfo(iter(requests))]
    listed, found, missing = answers
    assert {s.name for s in listed.list_services_response.service} == {
        SERVICE,
        "grpc.reflection.v1alpha.ServerReflection",
    }
    proto = descriptor_pb2.FileDescriptorProto.FromString(
        found.file_descriptor_response.file_descriptor_proto[0]
    )
    assert proto.package == "grpc.reflection.v1alpha"
    assert [s.name for s in proto.service] == ["ServerReflection"]
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


# ---------------------------------------------------------------- HTTP/2 itself


async def test_settings_are_advertised_and_acknowledged() -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        remote = peer.conn.remote_settings
        assert remote.initial_window_size == 4 * MiB
        assert remote.max_frame_size == MiB
        assert remote.max_concurrent_streams == 1000
        await peer.until(lambda e: isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0)
        assert peer.conn.outbound_flow_control_window == 64 * MiB
        await peer.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged))  # our first
        since = len(peer.events)
        peer.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 7})
        peer.flush()
        await peer.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), since=since)


async def test_the_stream_limit_is_an_option_and_enforced() -> None:
    options = [("grpc.max_concurrent_streams", 2)]
    async with serving(options=options) as (_, address), peer_to(address) as peer:
        assert peer.conn.remote_settings.max_concurrent_streams == 2
        async with channel(address) as chan:  # grpcio queues behind the limit: all answered
            echo = chan.unary_unary(f"/{SERVICE}/Echo")
            answers = await asyncio.gather(*(echo(b"%d" % i) for i in range(20)))
    assert answers == [b"%d" % i for i in range(20)]


async def test_ping_is_acknowledged_with_its_payload() -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        peer.conn.ping(b"8 bytes!")
        peer.flush()
        ack = await peer.until(lambda e: isinstance(e, h2.events.PingAckReceived))
    assert ack.ping_data == b"8 bytes!"  # type: ignore[attr-defined]


async def test_non_post_is_405() -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        reply = await peer.reply(peer.request("Echo", None, http_method=b"GET"))
        ok = await peer.reply(peer.request("Echo", b"still fine"))
    assert reply.headers[b":status"] == b"405"
    assert ok.message == b"still fine"


async def test_non_grpc_content_type_is_415() -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        plain = await peer.reply(peer.request("Echo", b"x", content_type=b"text/plain"))
        missing = await peer.reply(peer.request("Echo", b"x", content_type=None))
        proto = await peer.reply(peer.request("Echo", b"x", content_type=b"application/grpc+proto"))
    assert plain.headers[b":status"] == b"415"
    assert missing.headers[b":status"] == b"415"
    assert proto.status == b"0"


async def test_a_bad_preface_closes_the_connection_only() -> None:
    async with serving() as (_, address):
        host, _, port = address.rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        received = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closed it
        writer.close()
        # the server's SETTINGS and WINDOW_UPDATE, then GOAWAY for PROTOCOL_ERROR, last
        frames = list(split_frames(received))
        assert [kind for kind, _ in frames] == [4, 8, 7]
        assert struct.unpack_from(">I", frames[-1][1], 4)[0] == PROTOCOL_ERROR
        async with channel(address) as ch:
            assert await ch.unary_unary(path("Echo"))(b"others") == b"others"


async def test_data_on_stream_zero_is_a_protocol_error() -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        peer.writer.write(raw_frame(0, 0, 0, b"stray"))
        ended = await peer.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        await peer.closed_by_server()
    assert ended.error_code == PROTOCOL_ERROR  # type: ignore[attr-defined]


async def test_tiny_client_window_still_gets_the_whole_answer() -> None:
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100}
    async with serving() as (_, address), peer_to(address, settings) as peer:
        stream = peer.request("Sized", b"%d" % 100_000)
        reply = await peer.reply(stream)
    assert reply.status == b"0"
    assert reply.message == payload(100_000)
    data = peer.sizes(0, stream)
    assert max(data) <= 100
    assert sum(data) == 100_005


async def test_data_frames_respect_the_client_frame_size() -> None:
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}
    async with serving() as (_, address), peer_to(address, settings) as peer:
        peer.conn.increment_flow_control_window(2**30)
        small, large = peer.request("Sized", b"1000"), peer.request("Sized", b"%d" % MiB)
        await peer.reply(small)
        reply = await peer.reply(large)
        # the client allows larger frames: the server may send them
        since = len(peer.events)
        peer.conn.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 65_536})
        peer.flush()
        await peer.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged), since=since)
        larger = peer.request("Sized", b"%d" % MiB)
        assert (await peer.reply(larger)).message == payload(MiB)
    assert reply.message == payload(MiB)
    assert max(peer.sizes(0, large)) == 16_384
    assert 16_384 < max(peer.sizes(0, larger)) <= 65_536
    assert all(len(body) <= 16_384 for _, _, sid, body in peer.frames if sid != larger)


async def test_a_request_in_many_data_frames() -> None:
    async with serving() as (_, address), peer_to(address) as peer:
        message = grpc_frame(payload(50_000))
        stream = peer.request("Echo", None, end=False)
        for start in range(0, len(message), 7_000):
            peer.conn.send_data(stream, message[start : start + 7_000])
        peer.conn.end_stream(stream)
        peer.flush()
        reply = await peer.reply(stream)
    assert reply.message == payload(50_000)


async def test_grpc_message_is_a_valid_http2_field_value() -> None:
    """h2 checks what gRPC's percent-encoding alone would let through: no whitespace at
    either end of a field value (RFC 9113 §8.2.1)."""
    details = " \tpadded\n "
    async with serving() as (_, address), peer_to(address) as peer:
        reply = await peer.reply(peer.request("Abort", details.encode()))
    assert reply.status == b"9"
    assert unquote(reply.headers[b"grpc-message"].decode("ascii")) == details


async def test_continuation_padding_priority_and_unknown_frames_are_read() -> None:
    big = b"v" * 20_000  # a header block over 16 KiB: h2 sends HEADERS and CONTINUATION
    async with serving() as (_, address), peer_to(address) as peer:
        peer.conn.max_outbound_frame_size = 16_384
        peer.writer.write(raw_frame(0xFA, 0, 0, b"an extension frame"))  # to be ignored
        stream = peer.conn.get_next_available_stream_id()
        peer.replies[stream] = Reply()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path("Echo").encode()),
            (b":authority", b"test"),
            (b"content-type", b"application/grpc"),
            (b"x-big", big),
        ]
        peer.conn.send_headers(stream, headers)
        peer.conn.send_data(stream, grpc_frame(b"padded"), end_stream=True, pad_length=40)
        peer.flush()
        reply = await peer.reply(stream)
        stream = peer.conn.get_next_available_stream_id()
        peer.replies[stream] = Reply()
        peer.conn.send_headers(stream, headers[:5], priority_weight=200, priority_depends_on=0)
        peer.conn.send_data(stream, grpc_frame(b"prioritized"), end_stream=True)
        peer.flush()
        prioritized = await peer.reply(stream)
    assert reply.message == b"padded"
    assert reply.trailers[b"x-big"] == big  # trailing metadata: our own CONTINUATION
    assert peer.sizes(9, 1)
    assert prioritized.message == b"prioritized"


async def test_undecodable_binary_metadata_leaves_the_connection_alone() -> None:
    bad = [(b"x-bad-bin", b"a")]  # one base64 character cannot be decoded
    async with serving() as (_, address), peer_to(address) as peer:
        unknown = await peer.reply(peer.request("NoSuchMethod", b"", metadata=bad))
        echoed = await peer.reply(peer.request("Echo", b"", metadata=bad))
        after = await peer.reply(peer.request("Echo", b"after"))
    assert unknown.status == b"13"  # INTERNAL, as grpc-go answers it
    assert echoed.status == b"13"
    assert b"x-bad-bin" in echoed.headers[b"grpc-message"]
    assert after.message == b"after"


# ---------------------------------------------------------------- HPACK


async def test_headers_decoded_right_as_the_dynamic_table_changes() -> None:
    """Each block is decoded against the table as it is then: repeated blocks (the cache's
    hits) must never answer with headers from an older table."""
    values = ["1", "2", "1", "3", "2", "1", "1", "a" * 3000, "a" * 3000, "b" * 3000]
    values += ["b" * 3000, "1", "c" * 4000, "1", "1"]
    async with serving() as (_, address), peer_to(address) as peer:

        async def check(value: str) -> None:
            stream = peer.request("Header", b"", metadata=[(b"x-n", value.encode())])
            assert (await peer.reply(stream)).message == value.encode()

        for value in values:
            await check(value)
        # the client empties its table (size updates to 0 and back, RFC 7541 §6.3) and
        # fills it again: the same entries, in the same number, naming other values
        for value in ("4", "5", "6", "7"):
            peer.conn.encoder.header_table_size = 0
            peer.conn.encoder.header_table_size = 4096
            await check(value)
            await check(value)
        for _ in range(2):  # two large entries a block: each evicts the one before
            for first, second in (("d", "e"), ("f", "g")):
                stream = peer.request(
                    "Header",
                    b"",
                    metadata=[(b"x-m", first.encode() * 3000), (b"x-n", second.encode() * 3000)],
                )
                assert (await peer.reply(stream)).message == second.encode() * 3000
                stream = peer.request("Header", b"", metadata=[(b"x-n", second.encode() * 3000)])
                assert (await peer.reply(stream)).message == second.encode() * 3000


def test_header_decoder_cache_never_serves_a_stale_block() -> None:
    """The same bytes name other headers once the table changed, however it changed: new
    entries evicting old ones one for one (the table's length unchanged), or a size update
    emptying it."""
    encoder, decoder = hpack.Encoder(), HeaderDecoder(1 << 16)

    def check(headers: list[tuple[bytes, bytes]]) -> None:
        assert decoder.decode(encoder.encode(headers)) == headers

    for _ in range(3):
        check([(b"x-n", b"a" * 3000)])
        check([(b"x-n", b"a" * 3000)])
        check([(b"x-m", b"b" * 3000), (b"x-n", b"c" * 3000)])
        check([(b"x-n", b"c" * 3000)])
        check([(b"x-n", b"1")])
        check([(b"x-n", b"1")])
        encoder.header_table_size = 0
        encoder.header_table_size = 4096
        check([(b"x-n", b"2")])
        check([(b"x-n", b"2")])


# ---------------------------------------------------------------- stopping


async def test_graceful_stop_lets_calls_in_flight_finish() -> None:
    probe = Probe()
    async with serving(probe) as (server, address), channel(address) as ch:
        call = ch.unary_unary(path("Slow"))(b"0.3|in flight")
        await asyncio.wait_for(probe.started.wait(), 2)
        started = time.monotonic()
        stopping = asyncio.create_task(server.stop(2))
        await asyncio.sleep(0.05)
        late = await rpc_error(ch.unary_unary(path("Echo"))(b"late", timeout=2))
        assert await call == b"0.3|in flight"
        await asyncio.wait_for(stopping, 3)
        await asyncio.wait_for(server.wait_for_termination(), 1)
    assert late.code() is grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 1.5  # it did not wait out the grace
    assert not probe.cancelled.is_set()


async def test_graceful_stop_delivers_a_large_answer_whole() -> None:
    probe = Probe()
    async with (
        serving(probe, max_message_size=16 * MiB) as (server, address),
        channel(address) as ch,
    ):
        call = ch.unary_unary(path("Sized"))(b"%d|0.1" % (8 * MiB))
        await asyncio.wait_for(probe.started.wait(), 2)
        await server.stop(5)
        assert await call == payload(8 * MiB)


async def test_graceful_stop_refuses_new_streams_at_the_frame_level() -> None:
    probe = Probe()
    async with serving(probe) as (server, address), peer_to(address) as peer:
        first = peer.request("Slow", b"0.3|first")
        await asyncio.wait_for(probe.started.wait(), 2)
        stopping = asyncio.create_task(server.stop(2))
        goaway = await peer.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        # h2 opens no stream after GOAWAY: these HEADERS go by hand
        block = hpack.Encoder().encode([(b":method", b"POST"), (b":path", b"/x/y")])
        peer.writer.write(raw_frame(1, 0x4 | 0x1, 99, block))
        await peer.closed_by_server()
        stopped = time.monotonic()
        await peer.close()  # as a client does at the server's end of the connection
        await asyncio.wait_for(stopping, 3)
        assert time.monotonic() - stopped < 1  # the server saw it: no waiting out the grace
    assert goaway.error_code == 0  # type: ignore[attr-defined]
    assert goaway.last_stream_id == first  # type: ignore[attr-defined]
    assert (3, 0, 99, struct.pack(">I", REFUSED_STREAM)) in peer.frames
    # the call in flight was answered in full before the server closed
    answer = [(kind, flags, body) for kind, flags, sid, body in peer.frames if sid == first]
    assert [kind for kind, _, _ in answer] == [1, 0, 1]
    assert answer[1][2] == grpc_frame(b"0.3|first")
    assert hpack.Decoder().decode(answer[2][2], raw=True) == [(b"grpc-status", b"0")]
    assert answer[2][1] & 0x1  # END_STREAM


async def test_stop_cancels_calls_past_the_grace() -> None:
    probe = Probe()
    async with serving(probe) as (server, address), channel(address) as ch:
        call = ch.unary_unary(path("Slow"))(b"30|")
        await asyncio.wait_for(probe.started.wait(), 2)
        started = time.monotonic()
        await server.stop(0.2)
        await asyncio.wait_for(probe.cancelled.wait(), 1)
        error = await rpc_error(call)
        await asyncio.wait_for(server.wait_for_termination(), 1)
    assert time.monotonic() - started < 1.5
    assert error.code() is grpc.StatusCode.UNAVAILABLE
