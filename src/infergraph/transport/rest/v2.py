"""The Open Inference Protocol's REST paths, for the component and the graph REST apps.

``/v2``, ``/v2/health/live|ready``, ``/v2/models/{name}[/versions/{version}]`` and its
``/ready`` and ``/infer``, plus Seldon's ``POST /v2/models/infer`` for the server's
default model. Request bodies may use the binary tensor data extension; the answer uses
it when the request asked for binary outputs. Errors on these paths are V2's
``{"error": ...}`` JSON (:func:`~infergraph.transport.rest.asgi.error_response`, from
:func:`infergraph.protocol.v2_rest.error_body`).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from infergraph.protocol import v2_rest
from infergraph.runtime.v2_service import V2Service
from infergraph.transport.rest.asgi import JSON, Handler, Reply, Scope, header

__all__ = ["V2Routes"]

BINARY = b"application/octet-stream"
HEADER_LENGTH = v2_rest.INFERENCE_HEADER_CONTENT_LENGTH.lower().encode()
Route = tuple[Handler, tuple[str, ...], str]
HeadersOf = Callable[[Scope, str], dict[str, str]]
"""The headers a request carries into the data plane (scope, V2 request id as puid hint)."""


def _puid_header(scope: Scope, hint: str) -> dict[str, str]:
    """A component needs only the request's puid from its headers."""
    puid = header(scope, b"seldon-puid")
    return {"seldon-puid": puid} if puid else {}


def _target(path: str) -> tuple[str, str, str]:
    """``/v2/models/NAME[/versions/V][/ACTION]`` -> (name, version, action)."""
    parts = path.rstrip("/").split("/")[3:]  # after "", "v2", "models"
    name = parts[0] if parts else ""
    rest = parts[1:]
    version = ""
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1], rest[2:]
    action = rest[0] if len(rest) == 1 else ("" if not rest else "?")
    return name, version, action


class V2Routes:
    """Resolve a ``/v2`` path to its handler; the handlers answer from a :class:`V2Service`."""

    def __init__(self, service: V2Service, headers_of: HeadersOf | None = None) -> None:
        self.service = service
        self.headers_of = headers_of or _puid_header
        get = ("GET",)
        self._fixed: dict[str, Route] = {
            "/v2": (self._server_metadata, get, "v2-server-metadata"),
            "/v2/health/live": (self._live, get, "live"),
            "/v2/health/ready": (self._ready, get, "ready"),
        }
        self._infer: Route = (self._infer_handler, ("POST",), "v2-infer")
        self._metadata: Route = (self._model_metadata, get, "v2-model-metadata")
        self._model_ready: Route = (self._model_ready_handler, get, "v2-model-ready")

    def find(self, path: str) -> Route | None:
        route = self._fixed.get(path) or self._fixed.get(path.rstrip("/"))
        if route is not None or not path.startswith("/v2/models/"):
            return route
        name, _, action = _target(path)
        if not name:
            return None
        if name == "infer" and action == "":
            return (self._default_infer, ("POST", "GET"), "v2-infer")
        return {"": self._metadata, "ready": self._model_ready, "infer": self._infer}.get(action)

    # ------------------------------------------------------------ handlers

    async def _server_metadata(self, scope: Scope, body: bytes) -> Reply:
        return 200, orjson.dumps(self.service.server_metadata()), JSON

    async def _live(self, scope: Scope, body: bytes) -> Reply:
        return 200, b'{"live":true}', JSON

    async def _ready(self, scope: Scope, body: bytes) -> Reply:
        ready = self.service.ready()
        return (200 if ready else 503), orjson.dumps({"ready": ready}), JSON

    async def _model_metadata(self, scope: Scope, body: bytes) -> Reply:
        name, version, _ = _target(scope["path"])
        return 200, orjson.dumps(self.service.model_metadata(name, version)), JSON

    async def _model_ready_handler(self, scope: Scope, body: bytes) -> Reply:
        name, version, _ = _target(scope["path"])
        ready = self.service.model_ready(name, version)
        return (200 if ready else 503), orjson.dumps({"name": name, "ready": ready}), JSON

    async def _infer_handler(self, scope: Scope, body: bytes) -> Reply:
        name, version, _ = _target(scope["path"])
        return await self._run(scope, body, name, version)

    async def _default_infer(self, scope: Scope, body: bytes) -> Reply:
        if scope["method"] == "GET":  # a model called "infer"
            return 200, orjson.dumps(self.service.model_metadata("infer")), JSON
        return await self._run(scope, body, self.service.default_model(), "")

    async def _run(self, scope: Scope, body: bytes, name: str, version: str) -> Reply:
        length = v2_rest.parse_header_length(header(scope, HEADER_LENGTH))
        raw_input = self.service.model(name, version).raw_input() if length == 0 else None
        request = v2_rest.decode_request(body, length, raw_input)
        headers = self.headers_of(scope, request.id or "")
        response = await self.service.infer(request, name, version, headers)
        out, header_length = v2_rest.encode_response(response, request)
        if header_length is None:
            return 200, out, JSON
        return 200, out, BINARY, [(HEADER_LENGTH, str(header_length).encode())]
