"""What the component and graph gRPC servers share: the unary handler that maps errors
to status codes and records metrics, and the server with its options and reflection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection

from infergraph.errors import InferGraphError
from infergraph.status import grpc_status

__all__ = ["new_server", "register", "unary_handler"]

log = logging.getLogger(__name__)

Record = Callable[[str, str, str, float], None]
"""(service, method, code, seconds) of one served call."""


def unary_handler(
    full_name: str,
    call: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]],
    request_type: Any,
    response_type: Any,
    record: Record,
    before: Callable[[], Awaitable[None]] | None = None,
) -> grpc.RpcMethodHandler:
    """A unary handler: errors leave as status codes from the one table, never a crash."""

    async def serve(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        code, details = grpc.StatusCode.OK, ""
        try:
            if before is not None:
                await before()
            return await call(request, context)
        except InferGraphError as exc:
            code, details = grpc_status(exc), exc.message
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # a bug of ours or the user's: a status, never a crash
            log.error("unhandled error on %s", full_name, exc_info=exc)
            code, details = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        finally:
            record(full_name, "unary", code.name, time.perf_counter() - started)
        await context.abort(code, details)

    return grpc.unary_unary_rpc_method_handler(
        serve,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def new_server(max_message_size: int, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Server:
    """A ``grpc.aio.Server`` with the message limit; ``options`` override the defaults."""
    settings: dict[str, Any] = {
        "grpc.max_send_message_length": max_message_size,
        "grpc.max_receive_message_length": max_message_size,
        "grpc.so_reuseport": 1,  # several worker processes share the port
    }
    settings.update(options)  # the caller's options win
    return grpc.aio.server(options=list(settings.items()))


def register(
    server: grpc.aio.Server,
    services: dict[str, dict[str, grpc.RpcMethodHandler]],
    reflection: Iterable[str] | None,
) -> None:
    """Add each service's handlers; with ``reflection``, list those names (and itself)."""
    for name, handlers in services.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)
    if reflection is not None:
        grpc_reflection.enable_server_reflection(
            (*reflection, grpc_reflection.SERVICE_NAME), server
        )
