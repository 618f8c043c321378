"""The REST face of a component: Seldon's microservice API on the shared ASGI base."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import DeadlineExceeded
from infergraph.observability.metrics import render
from infergraph.protocol import seldon_json, seldon_pb
from infergraph.protocol.message import Message
from infergraph.runtime.v2_service import component_service
from infergraph.transport.rest.asgi import (
    JSON,
    PROMETHEUS,
    TEXT,
    Handler,
    Reply,
    Scope,
    SeldonApp,
    decode_body,
    seldon_reply,
)
from infergraph.transport.rest.openapi import component_openapi
from infergraph.transport.rest.v2 import V2Routes

__all__ = ["RestApp", "feedback_json"]

log = logging.getLogger(__name__)


def feedback_json(msg: Message) -> dict[str, Any]:
    """A feedback answer as Seldon writes it: the proto-JSON of a SeldonMessage.

    Seldon's REST feedback goes through protobuf, so numbers become floats and empty
    fields (``data.names``) are left out; a ``send_feedback_raw`` answer is kept as it is.
    """
    out: dict[str, Any] = json_format.MessageToDict(seldon_pb.encode_message(msg))
    return out


class RestApp(SeldonApp):
    """Seldon's microservice REST API plus ``/live``, ``/ready``, ``/metrics`` and ``/v2``."""

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
        self.v2 = V2Routes(component_service(dataplane))
        # unknown fields are a 400, except for an endpoint whose *_raw method takes the body
        self._strict = {
            endpoint: not dataplane.takes_raw(endpoint)
            for endpoint in ("predict", "transform_input", "transform_output", "route")
        }
        predict = self._predict
        feedback = self._feedback
        both = ("GET", "POST")
        self._traced = {predict, feedback, self._transform_input, self._transform_output}
        self._traced |= {self._route, self._aggregate}
        """Handlers of data calls: server spans when tracing is on (probes get none)."""
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

    async def startup(self) -> None:
        """Load at ASGI start-up, unless a server already loads beside its listening ports."""
        await self.dataplane.admit(probe=True)

    async def shutdown(self) -> None:
        self.dataplane.close()

    async def before(self, scope: Scope, probe: bool) -> None:
        await self.dataplane.admit(probe)

    async def call(self, handler: Handler, scope: Scope, body: bytes) -> Reply:
        reply = handler(scope, body)
        tracing = self.dataplane.tracing
        if tracing is not None and (handler in self._traced or scope["path"].endswith("/infer")):
            path = scope["path"]
            attributes = {"http.request.method": scope["method"], "url.path": path}
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            reply = tracing.serve(f"{scope['method']} {path}", headers, attributes, reply)
        if self.timeout is None:
            return await reply
        return await self._within_timeout(reply)

    def record(self, service: str, method: str, status: int, seconds: float) -> None:
        self.dataplane.metrics.request(service, method, str(status), seconds)

    async def ensure_loaded(self) -> None:
        """Run the user's ``load()`` once, on first use or at server start."""
        await self.dataplane.ensure_loaded()

    async def _within_timeout(self, call: Awaitable[Reply]) -> Reply:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the request took longer than seldon.io/rest-timeout="
                f"{self.dataplane.settings.rest_timeout_ms} ms"
            ) from None

    # ------------------------------------------------------------ helpers

    _decode = staticmethod(decode_body)

    def _message(self, scope: Scope, body: bytes, endpoint: str) -> Message:
        obj = self._decode(scope, body)
        msg = seldon_json.decode_message(obj, strict=self._strict[endpoint])
        msg.raw = obj
        return msg

    _reply = staticmethod(seldon_reply)

    # ------------------------------------------------------------ endpoints

    async def _predict(self, scope: Scope, body: bytes) -> Reply:
        if self.dataplane.passthrough:
            # as Seldon: the body as bytes in, what predict_raw returns out, as JSON
            result = await self.dataplane.predict_passthrough(bytes(body))
            if isinstance(result, str):
                return 200, result.encode(), JSON
            if isinstance(result, bytes | bytearray):
                return 200, bytes(result), JSON
            return 200, seldon_json.dumps(result), JSON
        return self._reply(
            await self.dataplane.predict(self._message(scope, body, "predict")), scope
        )

    async def _transform_input(self, scope: Scope, body: bytes) -> Reply:
        request = self._message(scope, body, "transform_input")
        return self._reply(await self.dataplane.transform_input(request), scope)

    async def _transform_output(self, scope: Scope, body: bytes) -> Reply:
        request = self._message(scope, body, "transform_output")
        return self._reply(await self.dataplane.transform_output(request), scope)

    async def _route(self, scope: Scope, body: bytes) -> Reply:
        response = await self.dataplane.route(self._message(scope, body, "route"))
        if isinstance(response.raw, list):  # route_raw's bare JSON list, sent as it is
            return 200, seldon_json.dumps(response.raw), JSON
        return self._reply(response, scope)

    async def _aggregate(self, scope: Scope, body: bytes) -> Reply:
        obj = self._decode(scope, body)
        messages = seldon_json.decode_aggregate(obj)
        return self._reply(await self.dataplane.aggregate(messages, "json", raw=obj), scope)

    async def _feedback(self, scope: Scope, body: bytes) -> Reply:
        # strict even for send_feedback_raw, as Seldon parses feedback with protobuf first
        feedback = seldon_json.decode_feedback(self._decode(scope, body), strict=True)
        response = await self.dataplane.send_feedback(feedback)
        return 200, seldon_json.dumps(feedback_json(response)), JSON

    async def _health_status(self, scope: Scope, body: bytes) -> Reply:
        return self._reply(await self.dataplane.health_status())

    async def _metadata(self, scope: Scope, body: bytes) -> Reply:
        return 200, seldon_json.dumps(self.dataplane.metadata()), JSON

    async def _openapi(self, scope: Scope, body: bytes) -> Reply:
        return 200, seldon_json.dumps(component_openapi(self.dataplane.name)), JSON

    async def _ping(self, scope: Scope, body: bytes) -> Reply:
        return 200, b"pong", TEXT

    async def _live(self, scope: Scope, body: bytes) -> Reply:
        return 200, b'{"live":true}', JSON

    async def _ready(self, scope: Scope, body: bytes) -> Reply:
        ready = self.dataplane.ready
        return (200 if ready else 503), (b'{"ready":true}' if ready else b'{"ready":false}'), JSON

    async def _metrics(self, scope: Scope, body: bytes) -> Reply:
        return 200, (await self.metrics_text()).encode(), PROMETHEUS

    async def _local_metrics(self) -> str:
        return render(self.dataplane.registry)
