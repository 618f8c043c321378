"""The state of one HTTP/2 stream of the native gRPC server: one call, both directions."""

from __future__ import annotations

import asyncio

import grpc

from infergraph.transport.grpc_call import CallContext

__all__ = ["Stream"]


class Stream:
    __slots__ = (
        "closed",
        "context",
        "data",
        "handler",
        "headers",
        "id",
        "messages",
        "received",
        "reset",
        "send_window",
        "size",
        "task",
        "timeout",
        "unacked",
        "window_open",
    )

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]], window: int) -> None:
        self.id = stream_id
        self.headers = headers
        self.handler: grpc.RpcMethodHandler | None = None
        self.data: list[bytes | memoryview] = []
        self.size = 0
        self.unacked = 0
        self.received = False
        """The peer ended its side (END_STREAM)."""
        self.closed = False
        """Our side ended (trailers sent) or the stream was reset."""
        self.reset = False
        self.send_window = window
        self.window_open: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.messages: asyncio.Queue[bytes | None] | None = None
        """A streaming request's messages as they arrive (None ends them)."""
        self.context: CallContext | None = None
        self.timeout: float | None = None
        """Seconds the client gives the call (``grpc-timeout``), if it says."""

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None
