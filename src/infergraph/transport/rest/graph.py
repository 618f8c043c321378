"""The REST face of a whole graph: the Seldon executor's external API, and the Open
Inference Protocol's ``/v2`` paths with the graph as the model named after the deployment.

``/api/v1.0/predictions`` and ``/feedback`` (and v0.1), graph and node metadata, node
status, ``/live``, ``/ready``, Prometheus text at ``/metrics`` and ``/prometheus``, and the
node processes' metrics ports for Prometheus's HTTP service discovery at ``/metrics/targets``,
and the live dashboard at ``/dashboard`` when the data plane records requests.
The ``Seldon-Puid`` header is generated when absent, echoed, and forwarded to every node.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from infergraph.observability.metrics import render
from infergraph.protocol import seldon_json
from infergraph.runtime.dashboard import Dashboard
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.runtime.v2_service import graph_service
from infergraph.transport.puid import checked_puid
from infergraph.transport.rest.asgi import (
    JSON,
    PROMETHEUS,
    PUID,
    Handler,
    Reply,
    Scope,
    SeldonApp,
    decode_body,
    header,
    seldon_reply,
)
from infergraph.transport.rest.dashboard import DashboardRoutes
from infergraph.transport.rest.v2 import V2Routes

__all__ = ["GraphRestApp"]

NODE = "infergraph.node"
NOSNIFF = (b"x-content-type-options", b"nosniff")


class GraphRestApp(SeldonApp):
    def __init__(
        self,
        dataplane: GraphDataPlane,
        *,
        max_body_size: int,
        metrics_text: Callable[[], Awaitable[str]] | None = None,
        metrics_targets: list[dict[str, Any]] | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.metrics_text = metrics_text
        """The Prometheus text (merged across ``serve --workers``); else this registry's."""
        self.max_body_size = max_body_size
        self.metrics_targets = orjson.dumps(metrics_targets or [])
        self.v2 = V2Routes(graph_service(dataplane), self._headers)
        predict, feedback = self._predict, self._feedback
        self.routes: dict[str, tuple[Handler, tuple[str, ...], str]] = {
            "/api/v1.0/predictions": (predict, ("POST",), "predictions"),
            "/api/v0.1/predictions": (predict, ("POST",), "predictions"),
            "/api/v1.0/feedback": (feedback, ("POST",), "feedback"),
            "/api/v0.1/feedback": (feedback, ("POST",), "feedback"),
            "/api/v1.0/metadata": (self._metadata, ("GET",), "metadata"),
            "/api/v1.0/status": (self._ready, ("GET",), "status"),
            "/api/v1.0/health/status": (self._ready, ("GET",), "status"),
            "/ready": (self._ready, ("GET",), "ready"),
            "/live": (self._live, ("GET",), "live"),
            "/metrics": (self._metrics, ("GET",), "metrics"),
            "/prometheus": (self._metrics, ("GET",), "metrics"),
            "/metrics/targets": (self._targets, ("GET",), "metrics"),
        }
        get: tuple[str, ...] = ("GET",)
        self._prefixed: list[tuple[str, tuple[Handler, tuple[str, ...], str]]] = []
        for version in ("v1.0", "v0.1"):
            self._prefixed.append(
                (f"/api/{version}/metadata/", (self._node_metadata, get, "metadata"))
            )
            self._prefixed.append((f"/api/{version}/status/", (self._node_status, get, "status")))
        self.dashboard: DashboardRoutes | None = None
        """``/dashboard`` and its JSON: served when the data plane records requests."""
        if dataplane.recent is not None:
            self.dashboard = DashboardRoutes(Dashboard(dataplane))
            self.routes.update(self.dashboard.routes)
            self._prefixed.extend(self.dashboard.prefixed)

    def find(self, path: str) -> tuple[Handler, tuple[str, ...], str] | None:
        route = super().find(path)
        if route is not None:
            return route
        for prefix, prefixed in self._prefixed:
            if path.startswith(prefix) and len(path) > len(prefix):
                return prefixed
        return None

    async def startup(self) -> None:
        """Load at ASGI start-up, unless ``serve`` already loads beside its listening ports."""
        if not self.dataplane.loading:
            await self.dataplane.load()

    async def shutdown(self) -> None:
        await self.dataplane.close()

    @staticmethod
    def _puid(scope: Scope, hint: str = "") -> str:
        """The request's puid: the Seldon-Puid header, else the body's meta.puid, else new.

        One from the body must be able to travel as a header (:func:`checked_puid`).
        """
        puid = scope.get(PUID)
        if puid is None:
            given = header(scope, b"seldon-puid")
            puid = scope[PUID] = given or checked_puid(hint) or str(uuid.uuid4())
        return str(puid)

    def extra_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        puid = self._puid(scope)
        out = [(b"seldon-puid", puid.encode("latin-1")), NOSNIFF]
        if header(scope, b"ce-specversion") is not None:  # Seldon's CloudEvents echo
            name, namespace = self.dataplane.plan.name, self.dataplane.plan.namespace
            out += [
                (b"ce-id", puid.encode("latin-1")),
                (b"ce-specversion", b"0.3"),
                (b"ce-path", scope["path"].encode("latin-1")),
                (b"ce-type", f"seldon.{name}.{namespace}.response".encode()),
                (b"ce-source", f"seldon.{name}".encode()),
            ]
        return out

    def record(self, service: str, method: str, status: int, seconds: float) -> None:
        self.dataplane.server_metrics.server(service, method, str(status), seconds)

    def _headers(self, scope: Scope, puid_hint: str = "") -> dict[str, str]:
        """The request's headers for the nodes, with its puid as ``seldon-puid``."""
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k != b"content-type"
        }
        headers["seldon-puid"] = self._puid(scope, puid_hint)
        return headers

    def _context(self, scope: Scope, puid_hint: str = "") -> Any:
        return self.dataplane.context(self._headers(scope, puid_hint))

    async def _predict(self, scope: Scope, body: bytes) -> Reply:
        obj = decode_body(scope, body)
        raw = self.dataplane.takes_raw_request
        request = seldon_json.decode_message(obj, strict=not raw)
        if raw:  # the node's *_raw method gets the body as it came, as under Seldon
            request.raw = obj
        ctx = self._context(scope, request.meta.puid)
        response, _ = await self.dataplane.predict(request, ctx)
        return seldon_reply(response)

    async def _feedback(self, scope: Scope, body: bytes) -> Reply:
        feedback = seldon_json.decode_feedback(decode_body(scope, body), strict=True)
        ctx = self._context(scope, feedback.response.meta.puid if feedback.response else "")
        request_id = header(scope, b"seldon-puid") or ""  # feedback by id, when no routing
        return seldon_reply(await self.dataplane.feedback(feedback, ctx, request_id))

    async def _metadata(self, scope: Scope, body: bytes) -> Reply:
        return 200, seldon_json.dumps(self.dataplane.metadata()), JSON

    async def _node_metadata(self, scope: Scope, body: bytes) -> Reply:
        node = self.dataplane.node(scope["path"].rsplit("/", 1)[-1])
        return 200, seldon_json.dumps(node.client.metadata()), JSON

    async def _node_status(self, scope: Scope, body: bytes) -> Reply:
        node = self.dataplane.node(scope["path"].rsplit("/", 1)[-1])
        health = getattr(node.client, "health_status", None)
        if health is None:
            return (200 if node.client.ready else 503), b"", JSON
        return seldon_reply(await health())

    async def _ready(self, scope: Scope, body: bytes) -> Reply:
        ready = self.dataplane.ready
        return (200 if ready else 503), (b'{"ready":true}' if ready else b'{"ready":false}'), JSON

    async def _live(self, scope: Scope, body: bytes) -> Reply:
        return 200, b'{"live":true}', JSON

    async def _metrics(self, scope: Scope, body: bytes) -> Reply:
        if self.metrics_text is not None:
            return 200, (await self.metrics_text()).encode(), PROMETHEUS
        return 200, render(self.dataplane.registry).encode(), PROMETHEUS

    async def _targets(self, scope: Scope, body: bytes) -> Reply:
        """Prometheus HTTP service discovery: the node processes' metrics ports (``serve
        --processes``; none otherwise), each labelled with its ``node`` and ``replica``."""
        return 200, self.metrics_targets, JSON
