"""The REST face of a component: a small pure-ASGI application.

Routing is one dictionary lookup; bodies are read once, under a size limit, and
decoded by the pure codecs in ``infergraph.protocol``. Every error leaves through
``_error_response`` with Seldon's error JSON; nothing escapes as a bare 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import (
    BadRequest,
    DeadlineExceeded,
    InferGraphError,
    MethodNotAllowed,
    MicroserviceError,
    NotFound,
    PayloadTooLarge,
)
from infergraph.observability.metrics import render
from infergraph.protocol import seldon_json
from infergraph.protocol.message import Message
from infergraph.status import http_status
from infergraph.transport.openapi import component_openapi
from infergraph.transport.rest_request import parse_seldon_body

__all__ = ["RestApp"]

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[Scope, bytes], Awaitable[tuple[int, bytes, bytes]]]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
CORS = (b"access-control-allow-origin", b"*")
PREFLIGHT = [
    CORS,
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
]


class RestApp:
    """Seldon's microservice REST API plus ``/live``, ``/ready`` and ``/metrics``."""

    def __init__(
        self,
        dataplane: ComponentDataPlane,
        *,
        max_body_size: int | None = None,
        metrics_text: Callable[[], Awaitable[str]] | None = None,
        metrics_path: str = "/metrics",
    ) -> None:
        self.dataplane = dataplane
        self.max_body_size = max_body_size or dataplane.settings.max_message_size
        self.metrics_text = metrics_text or self._local_metrics
        timeout_ms = dataplane.settings.rest_timeout_ms
        self.timeout = timeout_ms / 1000.0 if timeout_ms else None
        self._load_lock: asyncio.Lock | None = None
        predict = self._predict
        feedback = self._feedback
        both = ("GET", "POST")
        self.routes: dict[str, tuple[Handler, tuple[str, ...], str]] = {
            "/predict": (predict, both, "predictions"),
            "/api/v1.0/predictions": (predict, ("POST",), "predictions"),
            "/api/v0.1/predictions": (predict, ("POST",), "predictions"),
            "/send-feedback": (feedback, both, "feedback"),
            "/api/v1.0/feedback": (feedback, ("POST",), "feedback"),
            "/api/v0.1/feedback": (feedback, ("POST",), "feedback"),
            "/transform-input": (self._transform_input, both, "transform-input"),
            "/transform-output": (self._transform_output, both, "transform-output"),
            "/route": (self._route, both, "route"),
            "/aggregate": (self._aggregate, both, "aggregate"),
            "/health/ping": (self._ping, ("GET",), "ping"),
            "/health/status": (self._health_status, ("GET",), "status"),
            "/api/v1.0/health/status": (self._health_status, ("GET",), "status"),
            "/metadata": (self._metadata, ("GET",), "metadata"),
            "/api/v1.0/metadata": (self._metadata, ("GET",), "metadata"),
            "/seldon.json": (self._openapi, ("GET",), "openapi"),
            "/live": (self._live, ("GET",), "live"),
            "/ready": (self._ready, ("GET",), "ready"),
            "/metrics": (self._metrics, ("GET",), "metrics"),
            metrics_path: (self._metrics, ("GET",), "metrics"),
        }

    # ------------------------------------------------------------ ASGI

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
                    await self.ensure_loaded()
                except Exception as exc:
                    log.error("component failed to load: %s", exc, exc_info=exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                self.dataplane.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def ensure_loaded(self) -> None:
        """Run the user's ``load()`` once, on first use or at server start."""
        if self.dataplane.ready:
            return
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            if not self.dataplane.ready:
                await self.dataplane.load()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method = scope["method"]
        route = self.routes.get(scope["path"]) or self.routes.get(scope["path"].rstrip("/"))
        service = route[2] if route else "unknown"
        headers: list[tuple[bytes, bytes]] = [CORS]
        try:
            if method == "OPTIONS":
                status, body, ctype = 200, b"", TEXT
                headers = list(PREFLIGHT)
            elif route is None:
                raise NotFound(f"Not Found: no endpoint at {scope['path']}")
            elif method not in route[1]:
                allowed = " or ".join(route[1])
                raise MethodNotAllowed(
                    f"Method {method} is not allowed on {scope['path']}; use {allowed}"
                )
            else:
                body_in = await self._read_body(scope, receive)
                if not self.dataplane.ready:
                    await self.ensure_loaded()
                if self.timeout is None:
                    status, body, ctype = await route[0](scope, body_in)
                else:
                    status, body, ctype = await self._within_timeout(route[0](scope, body_in))
        except InferGraphError as exc:
            status, body, ctype = _error_response(exc)
        except Exception as exc:  # a bug of ours: still Seldon's JSON, never a traceback
            log.error("unhandled error on %s", scope["path"], exc_info=exc)
            status, body = (
                500,
                seldon_json.dumps(
                    seldon_json.error_body(
                        f"{type(exc).__name__}: {exc}", "MICROSERVICE_INTERNAL_ERROR"
                    )
                ),
            )
            ctype = JSON
        headers.append((b"content-type", ctype))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if route is not None and service not in ("metrics", "live", "ready", "ping"):
            self.dataplane.metrics.request(
                service, method.lower(), str(status), time.perf_counter() - started
            )

    async def _within_timeout(
        self, call: Awaitable[tuple[int, bytes, bytes]]
    ) -> tuple[int, bytes, bytes]:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the request took longer than seldon.io/rest-timeout="
                f"{self.dataplane.settings.rest_timeout_ms} ms"
            ) from None

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_size
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise BadRequest("Content-Length is not a number") from None
                if declared > limit:
                    raise PayloadTooLarge(
                        f"Request body of {declared} bytes exceeds the limit of {limit} bytes "
                        "(set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
                    )
                break
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

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _decode(scope: Scope, body: bytes) -> Any:
        ctype = ""
        for name, value in scope["headers"]:
            if name == b"content-type":
                ctype = value.decode("latin-1").lower()
                break
        return parse_seldon_body(ctype, scope.get("query_string", b""), body)

    def _message(self, scope: Scope, body: bytes) -> Message:
        obj = self._decode(scope, body)
        msg = seldon_json.decode_message(obj)
        msg.raw = obj
        return msg

    @staticmethod
    def _reply(msg: Message) -> tuple[int, bytes, bytes]:
        out = seldon_json.encode_message(msg)
        status = 200
        block = out.get("status") if isinstance(out, dict) else None
        if isinstance(block, dict):
            code = block.get("code")
            if isinstance(code, int) and 100 <= code < 600:
                status = code
        return status, seldon_json.dumps(out), JSON

    # ------------------------------------------------------------ endpoints

    async def _predict(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        if self.dataplane.passthrough:
            result = await self.dataplane.predict_passthrough(body)
            if isinstance(result, str):
                return 200, result.encode(), TEXT
            if isinstance(result, bytes | bytearray):
                return 200, bytes(result), b"application/octet-stream"
            return 200, seldon_json.dumps(result), JSON
        return self._reply(await self.dataplane.predict(self._message(scope, body)))

    async def _transform_input(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return self._reply(await self.dataplane.transform_input(self._message(scope, body)))

    async def _transform_output(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return self._reply(await self.dataplane.transform_output(self._message(scope, body)))

    async def _route(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return self._reply(await self.dataplane.route(self._message(scope, body)))

    async def _aggregate(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        obj = self._decode(scope, body)
        messages = seldon_json.decode_aggregate(obj)
        return self._reply(await self.dataplane.aggregate(messages, "json", raw=obj))

    async def _feedback(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        feedback = seldon_json.decode_feedback(self._decode(scope, body))
        return self._reply(await self.dataplane.send_feedback(feedback))

    async def _health_status(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return self._reply(await self.dataplane.health_status())

    async def _metadata(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return 200, seldon_json.dumps(self.dataplane.metadata()), JSON

    async def _openapi(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return 200, seldon_json.dumps(component_openapi(self.dataplane.name)), JSON

    async def _ping(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return 200, b"pong", TEXT

    async def _live(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return 200, b'{"live":true}', JSON

    async def _ready(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        ready = self.dataplane.ready
        return (200 if ready else 503), (b'{"ready":true}' if ready else b'{"ready":false}'), JSON

    async def _metrics(self, scope: Scope, body: bytes) -> tuple[int, bytes, bytes]:
        return 200, (await self.metrics_text()).encode(), PROMETHEUS

    async def _local_metrics(self) -> str:
        return render(self.dataplane.registry)


def _error_response(exc: InferGraphError) -> tuple[int, bytes, bytes]:
    body = seldon_json.error_body(exc.message, exc.reason)
    if isinstance(exc, MicroserviceError) and isinstance(exc.payload, dict):
        body = {**exc.payload, **body}
    return http_status(exc), seldon_json.dumps(body), JSON
