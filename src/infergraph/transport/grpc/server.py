"""What the component and graph gRPC servers share: the server, and the unary handler that
maps errors to status codes and records metrics.

Three servers, one interface (``--grpc-server``):

- ``native`` (default), :class:`~infergraph.wire.grpc.server.NativeGrpcServer`:
  infergraph's own HTTP/2 server, every call on the event loop; about 16 µs of CPU a call
  before any work (``bench/v2.py``'s ``bare-grpc-native``).
- ``threads``, :class:`GrpcServer`: grpcio's thread-pool server; each handler hands its call
  to the application's event loop (``run_coroutine_threadsafe``) and waits, so the data
  plane stays single-threaded on its loop; about 100 µs a call.
- ``asyncio``, :class:`AioGrpcServer`: ``grpc.aio``, every call on the loop; about 145 µs a
  call (``bare-grpc-aio``), what MLServer and KServe serve gRPC with.

grpcio's two remain for comparison and as a fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.reflection_pb2_grpc import (
    add_ServerReflectionServicer_to_server as add_reflection,
)

from infergraph.errors import InferGraphError
from infergraph.observability import log_context
from infergraph.observability.tracing import Tracing
from infergraph.protocol.proto._pool import POOL, include
from infergraph.settings import GRPC_SERVERS
from infergraph.status import grpc_status
from infergraph.wire.grpc.server import NativeGrpcServer
from infergraph.wire.grpc.status import CallAbort
from infergraph.wire.limits import Http2Limits

__all__ = [
    "GRPC_SERVERS",
    "AioGrpcServer",
    "GrpcServer",
    "new_server",
    "register",
    "service_handlers",
    "unary_handler",
]


log = logging.getLogger(__name__)

Record = Callable[[str, str, str, float], None]
"""(service, method, code, seconds) of one served call."""

HANDLER_THREADS = 64
"""grpcio threads waiting on calls in flight: the concurrency one server takes at once (more
calls queue in grpcio). They wait on the event loop, so they cost memory, not CPU."""


class _Delegating:
    """What both servers hand straight to grpcio's server."""

    _server: Any

    def add_insecure_port(self, address: str) -> int:
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, credentials: grpc.ServerCredentials) -> int:
        return int(self._server.add_secure_port(address, credentials))

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, name: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        if hasattr(self._server, "add_registered_method_handlers"):  # grpcio 1.63 and later
            self._server.add_registered_method_handlers(name, handlers)

    @property
    def grpc_server(self) -> Any:
        """The grpcio server (reflection registers itself on it)."""
        return self._server


class GrpcServer(_Delegating):
    """grpcio's thread-pool server, with the ``grpc.aio.Server`` methods infergraph uses."""

    threaded = True

    def __init__(self, options: Sequence[tuple[str, Any]], threads: int = HANDLER_THREADS):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="grpc")
        self._server = grpc.server(self._pool, options=list(options))
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the handlers run calls on: the one :meth:`start` was awaited in."""

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._server.start()

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let calls in flight finish for ``grace`` seconds, then cancel."""
        stopped = self._server.stop(grace)
        await asyncio.get_running_loop().run_in_executor(None, stopped.wait)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def wait_for_termination(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._server.wait_for_termination)


class AioGrpcServer(_Delegating):
    """``grpc.aio.Server`` behind the same interface as :class:`GrpcServer`."""

    threaded = False

    def __init__(self, options: Sequence[tuple[str, Any]]) -> None:
        self._server = grpc.aio.server(options=list(options))

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()


Server = GrpcServer | AioGrpcServer | NativeGrpcServer


def unary_handler(
    full_name: str,
    call: Callable[[Any, Any], Awaitable[Any]],
    request_type: Any,
    response_type: Any,
    record: Record,
    server: Server,
    before: Callable[[], Awaitable[None]] | None = None,
    tracing: Tracing | None = None,
) -> grpc.RpcMethodHandler:
    """A unary handler: errors leave as status codes from the one table, never a crash.
    With ``tracing``, each call is a server span continuing the caller's trace."""
    attributes = {"rpc.system": "grpc", "rpc.method": full_name}

    async def run(request: Any, context: Any) -> tuple[Any, grpc.StatusCode, str]:
        started = time.perf_counter()
        code, details = grpc.StatusCode.OK, ""
        _, token = log_context.begin(context.invocation_metadata)  # read if a line is logged
        try:
            if before is not None:
                await before()
            answer = call(request, context)
            if tracing is not None:
                answer = tracing.serve(full_name, _metadata(context), attributes, answer)
            return await answer, code, details
        except CallAbort:  # the native server's own status: it sends it as it is
            raise
        except InferGraphError as exc:
            code, details = grpc_status(exc), exc.message
        except asyncio.CancelledError:
            code, details = grpc.StatusCode.CANCELLED, "the call was cancelled"
        except Exception as exc:  # a bug of ours or the user's: a status, never a crash
            log.error("unhandled error on %s", full_name, exc_info=exc)
            code, details = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        finally:
            log_context.end(token)
            record(full_name, "unary", code.name, time.perf_counter() - started)
        return None, code, details

    async def serve_async(request: Any, context: grpc.aio.ServicerContext) -> Any:
        answer, code, details = await run(request, context)
        if code is not grpc.StatusCode.OK:
            await context.abort(code, details)
        return answer

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        assert isinstance(server, GrpcServer)
        loop = server.loop
        if loop is None or loop.is_closed():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the server is not running")
            raise AssertionError("abort raises")  # for the type checker
        answer, code, details = asyncio.run_coroutine_threadsafe(
            run(request, context), loop
        ).result()
        if code is not grpc.StatusCode.OK:
            context.abort(code, details)
        return answer

    return grpc.unary_unary_rpc_method_handler(
        serve if server.threaded else serve_async,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def _metadata(context: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def service_handlers(
    service: str,
    servicer: Any,
    types: dict[str, tuple[Any, Any]],
    record: Record,
    server: Server,
    before: Callable[[], Awaitable[None]] | None = None,
    tracing: Tracing | None = None,
) -> dict[str, grpc.RpcMethodHandler]:
    """One unary handler per method of ``types`` (method -> (request, response) classes),
    each served by the ``servicer`` method of that name."""
    return {
        method: unary_handler(
            f"/{service}/{method}",
            getattr(servicer, method),
            request,
            response,
            record,
            server,
            before,
            tracing,
        )
        for method, (request, response) in types.items()
    }


def new_server(
    max_message_size: int,
    options: Sequence[tuple[str, Any]] = (),
    kind: str = "native",
    limits: Http2Limits | None = None,
) -> Server:
    """A gRPC server of ``kind`` with the message limit; ``options`` override the defaults.
    ``limits`` bound each peer of the native server (grpcio's keep their own)."""
    if kind not in GRPC_SERVERS:
        raise ValueError(f"gRPC server must be one of {', '.join(GRPC_SERVERS)}, not {kind!r}")
    settings: dict[str, Any] = {
        "grpc.max_send_message_length": max_message_size,
        "grpc.max_receive_message_length": max_message_size,
        "grpc.so_reuseport": 1,  # several worker processes share the port
    }
    settings.update(options)  # the caller's options win
    if kind == "native":
        return NativeGrpcServer(grpc_status, list(settings.items()), limits)
    if kind == "asyncio":
        return AioGrpcServer(list(settings.items()))
    return GrpcServer(list(settings.items()))


def register(
    server: Server,
    services: dict[str, dict[str, grpc.RpcMethodHandler]],
    reflection: Iterable[str] | None,
) -> None:
    """Add each service's handlers; with ``reflection``, list those names (and itself)."""
    for name, handlers in services.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)
    if reflection is None:
        return
    # our descriptors are in infergraph's private pool, not protobuf's default one
    names = (*reflection, grpc_reflection.SERVICE_NAME)
    include(reflection_pb2.DESCRIPTOR)
    if isinstance(server, NativeGrpcServer):  # its handlers run on the loop, as grpc.aio's
        add_reflection(grpc_reflection.aio.ReflectionServicer(names, pool=POOL), server)
    else:
        grpc_reflection.enable_server_reflection(names, server.grpc_server, pool=POOL)
