"""Seldon's ingress paths in front of the graph's REST app, and its gRPC routing headers.

On a cluster, clients reach a deployment through Istio or Ambassador at
``/seldon/<namespace>/<deployment>/...`` (Ambassador with one namespace also at
``/seldon/<deployment>/...``), and the gateway rewrites that prefix to ``/`` before the
orchestrator sees the request. Over gRPC the gateway routes by the metadata keys ``seldon``
(the deployment) and ``namespace``. A client configured for the cluster (``SeldonClient``
with ``gateway="istio"``, a URL copied from a notebook) then works against ``infergraph
serve`` unchanged: :class:`IngressPaths` strips the prefix as the gateway would, and
:meth:`SeldonIngress.check_metadata` accepts the routing keys. A prefix or a key naming
another deployment or namespace is a 404 (gRPC ``NOT_FOUND``) that says what this server
serves, rather than a silent answer from the wrong graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infergraph.errors import InferGraphError, NotFound
from infergraph.graph.plan import DeploymentPlan
from infergraph.transport.auth import RequireToken
from infergraph.transport.rest.asgi import CORS, Receive, Scope, SeldonApp, Send, error_response

__all__ = ["ANNOTATION_AMBASSADOR_NAME", "PREFIX", "IngressPaths", "SeldonIngress"]

PREFIX = "/seldon/"
ANNOTATION_AMBASSADOR_NAME = "seldon.io/ambassador-service-name"
"""Seldon's annotation that puts another name than the deployment's in the gateway prefix."""

Response = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(frozen=True)
class SeldonIngress:
    """Where the gateway publishes one deployment: its namespace and the names it answers to."""

    namespace: str
    names: tuple[str, ...]
    """The deployment's name, then the Ambassador service name when annotated."""

    @classmethod
    def of(cls, plan: DeploymentPlan) -> SeldonIngress:
        """The deployment of ``plan``; its namespace is ``default`` when the YAML has none."""
        names = [plan.name]
        alias = plan.annotations.get(ANNOTATION_AMBASSADOR_NAME)
        if alias and alias != plan.name:
            names.append(alias)
        return cls(plan.namespace or "default", tuple(names))

    @property
    def prefix(self) -> str:
        """The gateway's prefix for this deployment: ``/seldon/<namespace>/<deployment>/``."""
        return f"{PREFIX}{self.namespace}/{self.names[0]}/"

    def split_prefix(self, path: str) -> tuple[str, str]:
        """(the prefix, the path the gateway hands on) of a ``/seldon/...`` path; raise
        :class:`NotFound` when the prefix names another deployment or namespace."""
        parts = path[len(PREFIX) :].split("/", 2)
        if len(parts) >= 2 and parts[0] == self.namespace and parts[1] in self.names:
            taken = 2
        elif parts[0] in self.names:  # Ambassador with one namespace: /seldon/<deployment>/
            taken = 1
        else:
            shown = "/".join(parts[:2])
            raise NotFound(
                f"Not Found: no deployment at {PREFIX}{shown}/; this server serves "
                f"deployment {self.names[0]!r} in namespace {self.namespace!r}, at "
                f"{self.prefix} (or {PREFIX}{self.names[0]}/, or without a prefix)"
            )
        prefix = PREFIX + "/".join(parts[:taken])
        return prefix, path[len(prefix) :] or "/"

    def check_metadata(self, headers: Mapping[str, str]) -> None:
        """Accept the gateway's gRPC routing keys ``seldon`` and ``namespace`` when they name
        this deployment (either may be absent); raise :class:`NotFound` otherwise."""
        name, namespace = headers.get("seldon"), headers.get("namespace")
        if name is not None and name not in self.names:
            raise NotFound(
                f"gRPC metadata seldon: {name!r} names another deployment; this server serves "
                f"deployment {self.names[0]!r} in namespace {self.namespace!r}"
            )
        if namespace is not None and namespace != self.namespace:
            raise NotFound(
                f"gRPC metadata namespace: {namespace!r} is another namespace; this server "
                f"serves deployment {self.names[0]!r} in namespace {self.namespace!r}"
            )


class IngressPaths:
    """A pure-ASGI layer (and ``respond`` for infergraph's own HTTP server) that serves
    ``app`` under ``/seldon/<namespace>/<deployment>/`` as well as at ``/``."""

    def __init__(self, app: SeldonApp | RequireToken, ingress: SeldonIngress) -> None:
        self.app = app
        self.ingress = ingress

    @property
    def max_body_size(self) -> int:
        return self.app.max_body_size

    def _rewrite(self, scope: Scope) -> Scope:
        prefix, path = self.ingress.split_prefix(scope["path"])
        raw = scope.get("raw_path")
        rewritten = {**scope, "path": path, "root_path": scope.get("root_path", "") + prefix}
        if isinstance(raw, bytes) and raw.startswith(prefix.encode("latin-1")):
            rewritten["raw_path"] = raw[len(prefix) :] or b"/"
        return rewritten

    def _refuse(self, scope: Scope, exc: InferGraphError) -> Response:
        parts = scope["path"][len(PREFIX) :].split("/", 2)
        tail = "/" + parts[2] if len(parts) > 2 else "/"  # V2 paths get V2's error JSON
        status, body, ctype = error_response(exc, tail)
        headers = [CORS, (b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        return status, headers, body

    async def respond(self, scope: Scope, body: bytes | InferGraphError) -> Response:
        """As :meth:`SeldonApp.respond`, after the gateway's rewrite of ``/seldon/...``."""
        if not scope["path"].startswith(PREFIX):
            return await self.app.respond(scope, body)
        try:
            rewritten = self._rewrite(scope)
        except NotFound as exc:
            return self._refuse(scope, exc)
        return await self.app.respond(rewritten, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            rewritten = self._rewrite(scope)
        except NotFound as exc:
            status, headers, body = self._refuse(scope, exc)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(rewritten, receive, send)
