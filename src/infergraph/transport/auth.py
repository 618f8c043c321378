"""Bearer-token authentication of the REST and gRPC APIs, when a token file is configured.

REST: :class:`RequireToken` is a layer in front of an app (pure ASGI, and ``respond`` for
infergraph's own HTTP server). A request without ``Authorization: Bearer <token>``, or with
a token the file does not hold, is a 401 with ``WWW-Authenticate: Bearer`` and the error
JSON of its path (Seldon's, or V2's under ``/v2``). gRPC: :func:`require_token` wraps each
method handler, so a call without the ``authorization`` metadata key, or a wrong one, ends
UNAUTHENTICATED. Both are put in place only when auth is on: with auth off nothing of this
module is on the path of a request.

What stays open, for kubelet probes and Prometheus: liveness and readiness (``/live``,
``/ready``, ``/health/ping``, ``/health/status``, ``/api/v1.0/status``, ``/v2/health/*``,
gRPC ``ServerLive`` and ``ServerReady``), the metrics paths, the dashboard's page (its data
needs the token) and CORS preflights, which browsers send without credentials.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import grpc

from infergraph.errors import InferGraphError, Unauthenticated
from infergraph.transport.rest.asgi import (
    CORS,
    Receive,
    Scope,
    SeldonApp,
    Send,
    error_response,
    header,
)
from infergraph.wire.tokens import BearerTokens

__all__ = ["OPEN_GRPC_METHODS", "OPEN_ROUTES", "RequireToken", "require_token"]

OPEN_ROUTES = frozenset({"live", "ready", "ping", "status", "metrics"})
"""The route names (the apps' third field) answered without a token."""
OPEN_PATHS = frozenset({"/dashboard", "/dashboard/"})
"""Paths answered without a token: the dashboard's page, whose data needs one."""
OPEN_GRPC_METHODS = frozenset(
    {"/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady"}
)
MISSING = "this server requires a bearer token: send the header 'Authorization: Bearer <token>'"
WRONG = "the bearer token is not one this server accepts"
Response = tuple[int, list[tuple[bytes, bytes]], bytes]


class RequireToken:
    """Serves ``app`` to requests carrying a token of ``tokens``, and its probes to anyone."""

    def __init__(self, app: SeldonApp, tokens: BearerTokens) -> None:
        self.app = app
        self.tokens = tokens

    @property
    def max_body_size(self) -> int:
        return self.app.max_body_size

    def _refusal(self, scope: Scope) -> Response | None:
        """None when the request may go on; else the 401 it gets."""
        given = header(scope, b"authorization")
        if given is not None and self.tokens.accepts(given):
            return None
        path = scope["path"]
        if scope["method"] == "OPTIONS" or path in OPEN_PATHS:
            return None
        route = self.app.find(path)
        if route is not None and route[2] in OPEN_ROUTES:
            return None
        status, body, ctype = error_response(Unauthenticated(WRONG if given else MISSING), path)
        challenge = b'Bearer error="invalid_token"' if given else b"Bearer"
        headers = [
            CORS,
            (b"www-authenticate", challenge),
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
        ]
        return status, headers, body

    async def respond(self, scope: Scope, body: bytes | InferGraphError) -> Response:
        refused = self._refusal(scope)
        if refused is not None:
            return refused
        return await self.app.respond(scope, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self._refusal(scope)
            if refused is not None:
                status, headers, body = refused
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _authorization(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            return value
    return None


def _guarded(handler: grpc.RpcMethodHandler, tokens: BearerTokens) -> grpc.RpcMethodHandler:
    behaviour = handler.unary_unary
    if behaviour is None:  # infergraph serves unary calls only; a stream is left as it is
        return handler

    def details(context: Any) -> str | None:
        given = _authorization(context)
        if given is not None and tokens.accepts(given):
            return None
        return WRONG if given else MISSING

    if inspect.iscoroutinefunction(behaviour):

        async def check_async(request: Any, context: Any) -> Any:  # native and grpc.aio
            refused = details(context)
            if refused is not None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, refused)
            return await behaviour(request, context)

        call: Any = check_async
    else:

        def check(request: Any, context: Any) -> Any:  # grpcio's thread-pool server
            refused = details(context)
            if refused is not None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, refused)
            return behaviour(request, context)

        call = check
    return grpc.unary_unary_rpc_method_handler(
        call,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def require_token(
    services: dict[str, dict[str, grpc.RpcMethodHandler]],
    tokens: BearerTokens,
    open_methods: Iterable[str] = OPEN_GRPC_METHODS,
) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    """``services`` with every method but ``open_methods`` (``/package.Service/Method``)
    refusing calls without a token of ``tokens``."""
    opened = frozenset(open_methods)
    return {
        service: {
            method: handler if f"/{service}/{method}" in opened else _guarded(handler, tokens)
            for method, handler in handlers.items()
        }
        for service, handlers in services.items()
    }
