"""The gRPC face of a component: Seldon's ``seldon.protos`` services on one port, beside
the Open Inference Protocol's ``inference.GRPCInferenceService``.

One :class:`_SeldonServicer` implements every method once; :data:`SERVICES` says
which of its methods each of the seven services exposes, as Seldon registers one
servicer object for all of them. Requests are decoded by ``seldon_pb``, served by
the transport-neutral :class:`ComponentDataPlane` and encoded back. Errors leave as
gRPC status codes chosen by ``infergraph.status``; nothing escapes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import NotImplementedByComponent
from infergraph.protocol import seldon_pb
from infergraph.protocol.seldon_pb import pb
from infergraph.runtime.v2_service import component_service
from infergraph.transport.auth import require_token
from infergraph.transport.grpc.server import Server, new_server, register, unary_handler
from infergraph.transport.grpc.v2 import SERVICE as V2_SERVICE
from infergraph.transport.grpc.v2 import v2_handlers
from infergraph.wire.limits import Http2Limits
from infergraph.wire.tokens import BearerTokens

__all__ = ["SERVICES", "SERVICE_NAMES", "build_grpc_server", "model_metadata_proto"]

log = logging.getLogger(__name__)

PACKAGE = "seldon.protos"

# service -> the methods it exposes (each served by the servicer method of that name)
SERVICES: dict[str, tuple[str, ...]] = {
    "Generic": ("TransformInput", "TransformOutput", "Route", "Aggregate", "SendFeedback"),
    "Model": ("Predict", "SendFeedback", "Metadata"),
    "Router": ("Route", "SendFeedback"),
    "Transformer": ("TransformInput",),
    "OutputTransformer": ("TransformOutput",),
    "Combiner": ("Aggregate",),
    "Seldon": ("Predict", "SendFeedback", "ModelMetadata", "GraphMetadata"),
}
SERVICE_NAMES: tuple[str, ...] = tuple(f"{PACKAGE}.{name}" for name in SERVICES)

# method -> (request message class, response message class)
_TYPES: dict[str, tuple[Any, Any]] = {
    "Predict": (pb.SeldonMessage, pb.SeldonMessage),
    "TransformInput": (pb.SeldonMessage, pb.SeldonMessage),
    "TransformOutput": (pb.SeldonMessage, pb.SeldonMessage),
    "Route": (pb.SeldonMessage, pb.SeldonMessage),
    "Aggregate": (pb.SeldonMessageList, pb.SeldonMessage),
    "SendFeedback": (pb.Feedback, pb.SeldonMessage),
    "Metadata": (empty_pb2.Empty, pb.SeldonModelMetadata),
    "ModelMetadata": (pb.SeldonModelMetadataRequest, pb.SeldonModelMetadata),
    "GraphMetadata": (empty_pb2.Empty, pb.SeldonGraphMetadata),
}

Call = Callable[[Any], Awaitable[Any]]
_UNTRACED = frozenset({"Metadata", "ModelMetadata", "GraphMetadata"})
"""Calls that are no data: health checks of the orchestrator, no spans."""


def model_metadata_proto(meta: dict[str, Any]) -> Any:
    """A validated metadata dict (as REST ``/metadata`` returns it) as SeldonModelMetadata."""
    out = pb.SeldonModelMetadata(
        name=meta.get("name", ""),
        versions=meta.get("versions", []),
        platform=meta.get("platform", ""),
        custom=meta.get("custom", {}),
    )
    for field in ("inputs", "outputs"):
        for item in meta.get(field, []):
            entry = getattr(out, field).add(
                messagetype=item.get("messagetype", ""),
                name=item.get("name", ""),
                datatype=item.get("datatype", ""),
                shape=item.get("shape", []),
            )
            if "schema" in item:
                json_format.ParseDict(item["schema"], entry.schema)
    return out


class _SeldonServicer:
    """Every Seldon RPC, implemented once over the data plane."""

    def __init__(self, dataplane: ComponentDataPlane, server: Server) -> None:
        self.dataplane = dataplane
        self.server = server

    @staticmethod
    def _message(request: Any) -> Any:
        msg = seldon_pb.decode_message(request)
        msg.raw = request  # *_raw methods and pass-through get the request verbatim
        return msg

    async def Predict(self, request: Any) -> Any:
        response = await self.dataplane.predict(self._message(request), "proto")
        return seldon_pb.encode_message(response)

    async def TransformInput(self, request: Any) -> Any:
        response = await self.dataplane.transform_input(self._message(request), "proto")
        return seldon_pb.encode_message(response)

    async def TransformOutput(self, request: Any) -> Any:
        response = await self.dataplane.transform_output(self._message(request), "proto")
        return seldon_pb.encode_message(response)

    async def Route(self, request: Any) -> Any:
        response = await self.dataplane.route(self._message(request), "proto")
        return seldon_pb.encode_message(response)

    async def Aggregate(self, request: Any) -> Any:
        messages = seldon_pb.decode_message_list(request)
        response = await self.dataplane.aggregate(messages, "proto", raw=request)
        return seldon_pb.encode_message(response)

    async def SendFeedback(self, request: Any) -> Any:
        feedback = seldon_pb.decode_feedback(request)
        response = await self.dataplane.send_feedback(feedback, "proto")
        return seldon_pb.encode_message(response)

    async def Metadata(self, request: Any) -> Any:
        return model_metadata_proto(self.dataplane.metadata())

    async def ModelMetadata(self, request: Any) -> Any:
        return model_metadata_proto(self.dataplane.metadata())

    async def GraphMetadata(self, request: Any) -> Any:
        raise NotImplementedByComponent(
            "GraphMetadata is not implemented by a single component: "
            "ask the graph orchestrator for graph metadata"
        )

    def handler(self, service: str, method: str) -> grpc.RpcMethodHandler:
        """The unary handler of ``/seldon.protos.<service>/<method>``."""
        call: Call = getattr(self, method)
        request_type, response_type = _TYPES[method]
        return unary_handler(
            f"/{PACKAGE}.{service}/{method}",
            lambda request, context: call(request),
            request_type,
            response_type,
            self.dataplane.metrics.request,
            self.server,
            self.dataplane.admit,
            None if method in _UNTRACED else self.dataplane.tracing,
        )


def build_grpc_server(
    dataplane: ComponentDataPlane,
    *,
    max_message_size: int,
    reflection: bool = True,
    options: Sequence[tuple[str, Any]] = (),
    kind: str = "native",
    auth: BearerTokens | None = None,
    limits: Http2Limits | None = None,
) -> Server:
    """A gRPC server (not started, no port bound) serving every Seldon service and V2.

    ``options`` are extra gRPC channel arguments; they override the defaults. ``limits``
    bound each peer (the native server's; the defaults without).
    """
    server = new_server(max_message_size, options, kind, limits)
    servicer = _SeldonServicer(dataplane, server)
    services = {
        f"{PACKAGE}.{service}": {method: servicer.handler(service, method) for method in methods}
        for service, methods in SERVICES.items()
    }
    services.update(
        v2_handlers(
            component_service(dataplane),
            dataplane.metrics.request,
            server,
            dataplane.admit,
            before_probe=lambda: dataplane.admit(probe=True),
            tracing=dataplane.tracing,
        )
    )
    if auth is not None:  # chosen once: without a token file, no check is on the path
        services = require_token(services, auth)
    register(server, services, (*SERVICE_NAMES, V2_SERVICE) if reflection else None)
    return server
