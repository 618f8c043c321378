"""infergraph's own gRPC server: HTTP/2 on an asyncio protocol, calls run on the event loop.

grpcio's servers cost 100 µs (thread pool) to 150 µs (``grpc.aio``) of CPU a call before any
work, more than a small model's prediction; this server answers a fixed unary call for about
a tenth of that (``bench/v2.py``'s ``bare`` targets). It implements what gRPC clients use:
unary and streaming calls (reflection is a bidirectional stream), metadata both ways, the
``grpc-timeout`` deadline, ``gzip``/``deflate`` request messages, both directions' flow
control, PING, RST_STREAM, GOAWAY on a graceful stop, and HTTP/2's own errors. It takes
grpcio's ``RpcMethodHandler`` objects, so services register on it as on grpcio's servers,
and a handler's ``context`` offers what infergraph's handlers and grpcio-reflection call
(``invocation_metadata``, ``set_trailing_metadata``, ``abort``, ``set_code``,
``set_details``, ``time_remaining``, ``peer``). TLS: a port bound by
:meth:`NativeGrpcServer.add_secure_port` with an :class:`ssl.SSLContext` offering ALPN ``h2``
(:mod:`infergraph.transport.grpc.tls`).

Every peer is bounded by :class:`~infergraph.wire.limits.Http2Limits` (``docs/limits.md``):
header blocks and their CONTINUATION frames, streams, frames that ask work but no call
(PING and SETTINGS floods), rapid resets, answers it does not take, and request bytes
beyond each stream's window. A connection whose peer does not read stops being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from infergraph.errors import InferGraphError
from infergraph.wire.grpc.call import CallDetails
from infergraph.wire.grpc.headers import request_metadata
from infergraph.wire.grpc.server_connection import Connection
from infergraph.wire.limits import Http2Limits

__all__ = ["NativeGrpcServer"]


def _bind(address: str, reuse_port: bool) -> socket.socket | None:
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
        infos = socket.getaddrinfo(
            None if host in ("0.0.0.0", "::") else host,
            port,
            socket.AF_INET6 if host == "::" else socket.AF_UNSPEC,
            socket.SOCK_STREAM,
            0,
            socket.AI_PASSIVE,
        )
    except (ValueError, OSError):
        return None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(addr)
            sock.listen(1024)
            sock.setblocking(False)
            return sock
        except OSError:
            sock.close()
    return None


class NativeGrpcServer:
    """The server: the interface of :class:`~infergraph.transport.grpc.server.GrpcServer`.

    ``limits`` bound what each peer may make it hold or spend (the defaults of
    :class:`~infergraph.wire.limits.Http2Limits` without); the option
    ``grpc.max_concurrent_streams``, where given, wins over ``limits.max_concurrent_streams``.
    """

    threaded = False

    def __init__(
        self,
        status_of: Callable[[InferGraphError], grpc.StatusCode],
        options: Sequence[tuple[str, Any]] = (),
        limits: Http2Limits | None = None,
    ) -> None:
        settings = dict(options)
        self.status_of = status_of
        """The status a call fails with for an error of ours before its handler runs (a
        message that does not inflate): the owner's table, ``infergraph.status``."""
        self.limits = limits or Http2Limits()
        self.max_receive = int(settings.get("grpc.max_receive_message_length", 4 << 20))
        self.max_send = int(settings.get("grpc.max_send_message_length", 1 << 31))
        self.reuse_port = bool(settings.get("grpc.so_reuseport", 0))
        self.max_streams = int(
            settings.get("grpc.max_concurrent_streams", self.limits.max_concurrent_streams)
        )
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.generic: list[grpc.GenericRpcHandler] = []
        self.sockets: list[socket.socket] = []
        self.tls: dict[socket.socket, ssl.SSLContext] = {}
        """The sockets bound by :meth:`add_secure_port`, with their context."""
        self.listeners: list[asyncio.AbstractServer] = []
        self.connections: set[Connection] = set()
        self.calls: set[asyncio.Task[None]] = set()
        self.stopped: asyncio.Event | None = None

    # ---------------------------------------------------------------- grpcio's interface

    def add_insecure_port(self, address: str) -> int:
        """Bind ``host:port`` now (port 0 picks one); the port bound, or 0 if it cannot."""
        sock = _bind(address, self.reuse_port)
        if sock is None:
            return 0
        self.sockets.append(sock)
        return int(sock.getsockname()[1])

    def add_secure_port(self, address: str, context: ssl.SSLContext) -> int:
        """:meth:`add_insecure_port`, the port's connections in TLS by ``context`` (which
        must offer ALPN ``h2``: gRPC clients insist on it)."""
        sock = _bind(address, self.reuse_port)
        if sock is None:
            return 0
        self.sockets.append(sock)
        self.tls[sock] = context
        return int(sock.getsockname()[1])

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(
        self, name: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        for method, handler in handlers.items():
            self.handlers[f"/{name}/{method}"] = handler

    @property
    def grpc_server(self) -> NativeGrpcServer:
        return self

    def handler(
        self, path: str, headers: list[tuple[bytes, bytes]]
    ) -> grpc.RpcMethodHandler | None:
        found = self.handlers.get(path)
        if found is None and self.generic:
            details = CallDetails(path, request_metadata(headers))
            for generic in self.generic:
                found = generic.service(details)  # type: ignore[arg-type]
                if found is not None:
                    break
        return found

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        for sock in self.sockets:
            listener = await loop.create_server(
                lambda: Connection(self), sock=sock, ssl=self.tls.get(sock)
            )
            self.listeners.append(listener)

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let calls in flight finish for ``grace`` seconds, then cancel."""
        for listener in self.listeners:
            listener.close()
        for conn in list(self.connections):
            conn.goaway()
        if grace:
            deadline = asyncio.get_running_loop().time() + grace
            if self.calls:
                await asyncio.wait(list(self.calls), timeout=grace)
            await self._connections_closed(deadline)
        for task in list(self.calls):
            task.cancel()
        for conn in list(self.connections):
            conn.abort()
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                await listener.wait_closed()
        self.listeners.clear()
        if self.stopped is not None:
            self.stopped.set()

    async def _connections_closed(self, deadline: float) -> None:
        """Wait until ``deadline`` for the connections to end themselves (each does once its
        streams are done): their last answers may still be on their way out, which aborting
        them would throw away."""
        lost = [conn.lost for conn in self.connections if conn.lost is not None]
        timeout = deadline - asyncio.get_running_loop().time()
        if lost and timeout > 0:
            await asyncio.wait(lost, timeout=timeout)

    async def wait_for_termination(self) -> None:
        if self.stopped is not None:
            await self.stopped.wait()
