"""What the component and graph REST apps share: dispatch, body limits, Seldon's error JSON.

A pure-ASGI base class: routing is one dictionary lookup, the body is read once under a
size limit, and every error leaves as Seldon's error JSON (V2's, built by
:func:`infergraph.protocol.v2_rest.error_body`, on the ``/v2`` paths) with the status from
the one table in ``infergraph.status``; nothing escapes as a bare 500 with a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from infergraph.errors import (
    BadRequest,
    InferGraphError,
    MethodNotAllowed,
    MicroserviceError,
    NotFound,
    PayloadTooLarge,
    UserDefinedError,
)
from infergraph.observability import log_context
from infergraph.protocol import seldon_json, v2_rest
from infergraph.protocol.message import Message
from infergraph.status import http_status
from infergraph.transport.rest.seldon_body import parse_seldon_body
from infergraph.wire.content_encoding import decode_content

if TYPE_CHECKING:
    from infergraph.transport.rest.v2 import V2Routes

__all__ = [
    "JSON",
    "PROMETHEUS",
    "PUID",
    "REQUEST_LOG",
    "TEXT",
    "Reply",
    "SeldonApp",
    "decode_body",
    "error_response",
    "header",
    "seldon_reply",
]

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Reply = tuple[int, bytes, bytes] | tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]
"""(status, body, content type[, extra headers]) of one answer."""
Handler = Callable[[Scope, bytes], Awaitable[Reply]]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
CORS = (b"access-control-allow-origin", b"*")
PREFLIGHT = [
    CORS,
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
]
PUID = "infergraph.puid"
"""Scope key where an app leaves the puid of the request it answers (a graph's, or the
``meta.puid`` of a component's answer), for the access log."""
REQUEST_LOG = "infergraph.request_log"
"""Scope key of the request's :class:`~infergraph.observability.log_context.RequestLog`
(its trace ids, for the access log)."""
UNTIMED = frozenset({"metrics", "live", "ready", "ping", "dashboard"})
PROBES = frozenset({"metrics", "live", "ready", "ping", "v2-model-ready", "dashboard"})
"""Routes answered while the models load (to report it); every other route waits for them."""
V2_PREFIX = "/v2"


def header(scope: Scope, name: bytes) -> str | None:
    """A request header (``name`` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def decode_body(scope: Scope, body: bytes) -> Any:
    """The JSON value of a Seldon request: multipart, ``json=`` form/query, or JSON body."""
    ctype = (header(scope, b"content-type") or "").lower()
    return parse_seldon_body(ctype, scope.get("query_string", b""), body)


def seldon_reply(msg: Message, scope: Scope | None = None) -> Reply:
    """A SeldonMessage answer; a ``status.code`` in it becomes the HTTP status, as in Seldon.

    With the request's ``scope``, the answer's ``meta.puid`` is noted there (:data:`PUID`).
    """
    out = seldon_json.encode_message(msg)
    if scope is not None and isinstance(out, dict):
        meta = out.get("meta")
        if isinstance(meta, dict) and meta.get("puid"):
            scope[PUID] = str(meta["puid"])
    status = 200
    block = out.get("status") if isinstance(out, dict) else None
    if isinstance(block, dict):
        code = block.get("code")
        if isinstance(code, int) and 100 <= code < 600:
            status = code
    return status, seldon_json.dumps(out), JSON


def error_response(exc: InferGraphError, path: str = "") -> tuple[int, bytes, bytes]:
    """Seldon's error JSON, or V2's ``{"error": ...}`` on the Open Inference Protocol paths.

    An error body the user's code chose (:class:`UserDefinedError`) is sent as it is.
    """
    if path.startswith(V2_PREFIX):
        return http_status(exc), v2_rest.error_body(exc.message), JSON
    if isinstance(exc, UserDefinedError):
        chosen = exc.body if isinstance(exc.body, bytes) else seldon_json.dumps(exc.body)
        return http_status(exc), chosen, exc.content_type.encode("latin-1")
    body = seldon_json.error_body(exc.message, exc.reason)
    if isinstance(exc, MicroserviceError) and isinstance(exc.payload, dict):
        body = {**exc.payload, **body}
    return http_status(exc), seldon_json.dumps(body), JSON


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (declared or received)."""
    declared = header(scope, b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if size > limit:
            raise PayloadTooLarge(
                f"Request body of {size} bytes exceeds the limit of {limit} bytes "
                "(set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
            )
    message = await receive()
    body = message.get("body", b"")
    size = len(body)
    if not message.get("more_body", False) and size <= limit:
        return body
    chunks = [body]
    while size <= limit and message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
    if size > limit:  # also a body without Content-Length that arrived in one piece
        raise PayloadTooLarge(
            f"Request body exceeds the limit of {limit} bytes "
            "(set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
        )
    return b"".join(chunks)


class SeldonApp:
    """Dispatch on exact paths; subclasses fill ``routes`` and the hooks."""

    routes: dict[str, tuple[Handler, tuple[str, ...], str]]
    max_body_size: int
    v2: V2Routes | None = None
    """The Open Inference Protocol's ``/v2`` paths, when the app serves them."""

    async def startup(self) -> None:
        """Runs at ASGI lifespan start-up (load the models)."""

    async def shutdown(self) -> None:
        """Runs at ASGI lifespan shutdown."""

    async def before(self, scope: Scope, probe: bool) -> None:
        """Runs before every handler (e.g. load on first use); ``probe`` for :data:`PROBES`."""

    def extra_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        return []

    def record(self, service: str, method: str, status: int, seconds: float) -> None:
        """One served request, for metrics."""

    def find(self, path: str) -> tuple[Handler, tuple[str, ...], str] | None:
        route = self.routes.get(path) or self.routes.get(path.rstrip("/"))
        if route is None and self.v2 is not None and path.startswith(V2_PREFIX):
            return self.v2.find(path)
        return route

    async def call(self, handler: Handler, scope: Scope, body: bytes) -> Reply:
        return await handler(scope, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.error("start-up failed: %s", exc, exc_info=exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.find(scope["path"])
        body: bytes | InferGraphError
        try:
            body = (
                await read_body(scope, receive, self.max_body_size)
                if route is not None and scope["method"] in route[1]
                else b""
            )
        except InferGraphError as exc:
            body = exc
        status, headers, out = await self.respond(scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    async def respond(
        self, scope: Scope, body: bytes | InferGraphError
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Answer one request whose body was read (or failed to be, as ``body``).

        Transport-free: the ASGI entry point and infergraph's own HTTP server both call it.
        """
        started = time.perf_counter()
        method = scope["method"]
        route = self.find(scope["path"])
        headers: list[tuple[bytes, bytes]] = [CORS]
        # what lines logged while answering say of the request (its puid, trace ids)
        scope[REQUEST_LOG], token = log_context.begin(scope["headers"])
        try:
            if method == "OPTIONS":
                status, out, ctype = 200, b"", TEXT
                headers = list(PREFLIGHT)
            elif route is None:
                raise NotFound(f"Not Found: no endpoint at {scope['path']}")
            elif method not in route[1]:
                allowed = " or ".join(route[1])
                raise MethodNotAllowed(
                    f"Method {method} is not allowed on {scope['path']}; use {allowed}"
                )
            elif isinstance(body, InferGraphError):
                raise body
            else:
                if body:
                    encoding = header(scope, b"content-encoding")
                    body = decode_content(encoding, body, self.max_body_size)
                await self.before(scope, route[2] in PROBES)
                reply = await self.call(route[0], scope, body)
                status, out, ctype = reply[0], reply[1], reply[2]
                if len(reply) > 3:
                    headers.extend(reply[3])  # type: ignore[misc]
        except InferGraphError as exc:
            status, out, ctype = error_response(exc, scope["path"])
        except Exception as exc:  # a bug of ours: still Seldon's JSON, never a traceback
            log.error("unhandled error on %s", scope["path"], exc_info=exc)
            message = f"{type(exc).__name__}: {exc}"
            if scope["path"].startswith(V2_PREFIX):
                out = v2_rest.error_body(message)
            else:
                out = seldon_json.dumps(
                    seldon_json.error_body(message, "MICROSERVICE_INTERNAL_ERROR")
                )
            status, ctype = 500, JSON
        finally:
            log_context.end(token)
        headers.extend(self.extra_headers(scope))  # after the handler, which may inform them
        headers.append((b"content-type", ctype))
        headers.append((b"content-length", str(len(out)).encode()))
        if route is not None and route[2] not in UNTIMED:
            self.record(route[2], method.lower(), status, time.perf_counter() - started)
        return status, headers, out
