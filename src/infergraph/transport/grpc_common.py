"""What the component and graph gRPC servers share: the server, and the unary handler that
maps errors to status codes and records metrics.

Why not ``grpc.aio``: measured on one core (``bench/v2.py``), grpcio's asyncio server costs
about 150 µs of CPU a call before any work, its thread-pool server about 100 µs. So
:class:`GrpcServer` runs grpcio's thread-pool server, and each handler hands the call to
the application's event loop (``run_coroutine_threadsafe``) and waits: every data plane
stays single-threaded on its loop (batching, metrics and locks unchanged), and the loop is
free while a call is in grpcio's threads. The handlers' threads only wait.
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

from infergraph.errors import InferGraphError
from infergraph.status import grpc_status

__all__ = ["GrpcServer", "new_server", "register", "unary_handler"]

log = logging.getLogger(__name__)

Record = Callable[[str, str, str, float], None]
"""(service, method, code, seconds) of one served call."""

HANDLER_THREADS = 64
"""grpcio threads waiting on calls in flight: the concurrency one server takes at once (more
calls queue in grpcio). They wait on the event loop, so they cost memory, not CPU."""


class GrpcServer:
    """grpcio's thread-pool server, with the ``grpc.aio.Server`` methods infergraph uses."""

    def __init__(self, options: Sequence[tuple[str, Any]], threads: int = HANDLER_THREADS):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="grpc")
        self._server = grpc.server(self._pool, options=list(options))
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the handlers run calls on: the one :meth:`start` was awaited in."""

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, name: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(name, handlers)

    @property
    def grpc_server(self) -> grpc.Server:
        """The grpcio server (reflection registers itself on it)."""
        return self._server

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


def unary_handler(
    full_name: str,
    call: Callable[[Any, Any], Awaitable[Any]],
    request_type: Any,
    response_type: Any,
    record: Record,
    server: GrpcServer,
    before: Callable[[], Awaitable[None]] | None = None,
) -> grpc.RpcMethodHandler:
    """A unary handler: errors leave as status codes from the one table, never a crash."""

    async def run(request: Any, context: Any) -> tuple[Any, grpc.StatusCode, str]:
        started = time.perf_counter()
        code, details = grpc.StatusCode.OK, ""
        try:
            if before is not None:
                await before()
            return await call(request, context), code, details
        except InferGraphError as exc:
            code, details = grpc_status(exc), exc.message
        except asyncio.CancelledError:
            code, details = grpc.StatusCode.CANCELLED, "the call was cancelled"
        except Exception as exc:  # a bug of ours or the user's: a status, never a crash
            log.error("unhandled error on %s", full_name, exc_info=exc)
            code, details = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        finally:
            record(full_name, "unary", code.name, time.perf_counter() - started)
        return None, code, details

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
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
        serve,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def new_server(max_message_size: int, options: Sequence[tuple[str, Any]] = ()) -> GrpcServer:
    """A :class:`GrpcServer` with the message limit; ``options`` override the defaults."""
    settings: dict[str, Any] = {
        "grpc.max_send_message_length": max_message_size,
        "grpc.max_receive_message_length": max_message_size,
        "grpc.so_reuseport": 1,  # several worker processes share the port
    }
    settings.update(options)  # the caller's options win
    return GrpcServer(list(settings.items()))


def register(
    server: GrpcServer,
    services: dict[str, dict[str, grpc.RpcMethodHandler]],
    reflection: Iterable[str] | None,
) -> None:
    """Add each service's handlers; with ``reflection``, list those names (and itself)."""
    for name, handlers in services.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)
    if reflection is not None:
        grpc_reflection.enable_server_reflection(
            (*reflection, grpc_reflection.SERVICE_NAME), server.grpc_server
        )
