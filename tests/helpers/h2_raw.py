"""HTTP/2 written by hand, for tests that must send what no well-behaved client would.

Frames are built here from RFC 9113 (a 9-byte header and a payload) and header blocks are
HPACK literals without indexing (RFC 7541 §6.2.2), so nothing here shares code with
infergraph's own HTTP/2. :class:`RawPeer` is an asyncio connection that records every
frame the server sends; :func:`blocking_peer` is a plain socket, for a thread that floods.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4

INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 4, 5

NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, CANCEL, ENHANCE_YOUR_CALM = 0, 1, 3, 8, 11


class Frame(NamedTuple):
    kind: int
    flags: int
    stream: int
    payload: bytes


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((kind, flags))
        + struct.pack(">I", stream)
        + payload
    )


def settings(values: dict[int, int] | None = None, ack: bool = False) -> bytes:
    body = b"".join(struct.pack(">HI", k, v) for k, v in (values or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, body)


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def rst_stream(stream: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping(data: bytes = b"12345678") -> bytes:
    return frame(PING, 0, 0, data)


def literal_block(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A header block of literals without indexing, new names, no Huffman coding."""
    out = bytearray()
    for name, value in headers:
        assert len(name) < 127 and len(value) < 127
        out += b"\x00" + bytes((len(name),)) + name + bytes((len(value),)) + value
    return bytes(out)


def request_block(path: str) -> bytes:
    return literal_block(
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"test"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]
    )


def grpc_message(body: bytes) -> bytes:
    return struct.pack(">BI", 0, len(body)) + body


def call(stream: int, path: str, body: bytes) -> bytes:
    """A whole unary call: HEADERS, then one DATA frame that ends the stream."""
    return frame(HEADERS, END_HEADERS, stream, request_block(path)) + frame(
        DATA, END_STREAM, stream, grpc_message(body)
    )


def parse(data: bytearray) -> list[Frame]:
    """The whole frames at the start of ``data``, removed from it."""
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            break
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        out.append(Frame(data[3], data[4], stream, bytes(data[9 : 9 + length])))
        del data[: 9 + length]
    return out


def goaway_code(f: Frame) -> int:
    return int.from_bytes(f.payload[4:8], "big")


def header_fields(block: bytes) -> dict[bytes, bytes]:
    """The fields of a header block from infergraph's server, decoded by ``hpack``."""
    import hpack

    return dict(hpack.Decoder().decode(block, raw=True))  # type: ignore[arg-type]


class RawPeer:
    """A client connection speaking raw frames; every frame received is kept in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames: list[Frame] = []
        self.closed = False
        self._buffer = bytearray()

    @classmethod
    async def connect(cls, address: str, values: dict[int, int] | None = None) -> RawPeer:
        host, _, port = address.rpartition(":")
        peer = cls(*await asyncio.open_connection(host, int(port)))
        peer.send(PREFACE + settings(values))
        await peer.until(lambda f: f.kind == SETTINGS and not f.flags & ACK)
        peer.send(settings(ack=True))
        return peer

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    async def receive(self, timeout: float) -> None:
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 20), timeout)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return
        self._buffer += data
        self.frames += parse(self._buffer)

    async def until(self, done: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """Read until a frame ``done`` accepts comes (looking at those kept too)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for f in self.frames[seen:]:
                if done(f):
                    return f
            seen = len(self.frames)
            if self.closed:
                raise AssertionError(f"connection closed; frames: {self.frames[-10:]}")
            await self.receive(max(0.01, deadline - time.monotonic()))

    async def goaway(self, timeout: float = 10.0) -> int:
        """The error code of the server's GOAWAY; then the connection must end."""
        code = goaway_code(await self.until(lambda f: f.kind == GOAWAY, timeout))
        await self.closed_by_server(timeout)
        return code

    async def closed_by_server(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed:
            await self.receive(max(0.01, deadline - time.monotonic()))

    async def pong(self, data: bytes = b"syncsync", timeout: float = 10.0) -> None:
        """PING and wait for its ACK: the server has read everything sent before."""
        self.send(frame(PING, 0, 0, data))
        await self.until(lambda f: f.kind == PING and f.flags & ACK and f.payload == data, timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def blocking_peer(port: int, values: dict[int, int] | None = None) -> socket.socket:
    """A plain socket that has sent the preface and its SETTINGS (and reads nothing)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(PREFACE + settings(values))
    return sock


def rss_bytes(pid: int) -> int:
    """The resident set of process ``pid`` (``VmRSS`` of ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")
