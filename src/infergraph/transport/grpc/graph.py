"""The gRPC face of a whole graph: ``seldon.protos.Seldon`` (Predict, SendFeedback,
ModelMetadata, GraphMetadata) and ``inference.GRPCInferenceService``, with reflection.
The ``seldon-puid`` metadata key plays the part of the REST header: generated when
absent, echoed, and forwarded to every node. The gateway's routing keys ``seldon`` and
``namespace`` are accepted when they name this deployment (:mod:`infergraph.transport.ingress`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import empty_pb2

from infergraph.protocol import seldon_pb
from infergraph.protocol.seldon_pb import pb
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.runtime.v2_service import graph_service
from infergraph.transport.auth import require_token
from infergraph.transport.grpc.component import model_metadata_proto
from infergraph.transport.grpc.server import Server, new_server, register, service_handlers
from infergraph.transport.grpc.v2 import SERVICE as V2_SERVICE
from infergraph.transport.grpc.v2 import metadata_headers, v2_handlers
from infergraph.transport.ingress import SeldonIngress
from infergraph.transport.puid import checked_puid
from infergraph.wire.limits import Http2Limits
from infergraph.wire.tokens import BearerTokens

__all__ = ["build_graph_grpc_server"]

SERVICE = "seldon.protos.Seldon"


class _GraphServicer:
    def __init__(self, dataplane: GraphDataPlane, ingress: SeldonIngress | None) -> None:
        self.dataplane = dataplane
        self.ingress = ingress

    def _context(self, context: grpc.ServicerContext) -> Any:
        headers = {
            k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
        }
        if self.ingress is not None:
            self.ingress.check_metadata(headers)
        ctx = self.dataplane.context(headers)
        context.set_trailing_metadata((("seldon-puid", ctx.puid),))
        return ctx

    async def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        response, _ = await self.dataplane.predict(
            seldon_pb.decode_message(request), self._context(context)
        )
        return seldon_pb.encode_message(response)

    async def SendFeedback(self, request: Any, context: grpc.ServicerContext) -> Any:
        feedback = seldon_pb.decode_feedback(request)
        feedback.raw = None  # forwarded as decoded; each node client encodes for itself
        ctx = self._context(context)
        request_id = ctx.headers.get("seldon-puid", "")  # feedback by id, when no routing
        answer = await self.dataplane.feedback(feedback, ctx, request_id)
        return seldon_pb.encode_message(answer)

    async def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return model_metadata_proto(self.dataplane.node(request.name).client.metadata())

    async def GraphMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        meta = self.dataplane.metadata()
        out = pb.SeldonGraphMetadata(name=meta["name"])
        for name, model in meta["models"].items():
            out.models[name].CopyFrom(model_metadata_proto(model))
        edges = model_metadata_proto(
            {"inputs": meta["graphinputs"], "outputs": meta["graphoutputs"]}
        )
        out.inputs.extend(edges.inputs)
        out.outputs.extend(edges.outputs)
        return out


_TYPES = {
    "Predict": (pb.SeldonMessage, pb.SeldonMessage),
    "SendFeedback": (pb.Feedback, pb.SeldonMessage),
    "ModelMetadata": (pb.SeldonModelMetadataRequest, pb.SeldonModelMetadata),
    "GraphMetadata": (empty_pb2.Empty, pb.SeldonGraphMetadata),
}


def build_graph_grpc_server(
    dataplane: GraphDataPlane,
    *,
    max_message_size: int,
    options: Sequence[tuple[str, Any]] = (),
    kind: str = "native",
    auth: BearerTokens | None = None,
    ingress: SeldonIngress | None = None,
    limits: Http2Limits | None = None,
) -> Server:
    """A gRPC server (not started) serving the graph's Seldon API and V2; with ``ingress``,
    calls whose routing metadata names another deployment are refused. ``limits`` bound
    each peer (the defaults without)."""
    server = new_server(max_message_size, options, kind, limits)
    servicer = _GraphServicer(dataplane, ingress)
    record = dataplane.server_metrics.server
    handlers = service_handlers(SERVICE, servicer, _TYPES, record, server)

    def headers_of(context: grpc.ServicerContext, hint: str) -> dict[str, str]:
        headers = metadata_headers(context, hint)
        if ingress is not None:
            ingress.check_metadata(headers)
        puid = headers.get("seldon-puid") or checked_puid(hint) or str(uuid.uuid4())
        headers["seldon-puid"] = puid
        context.set_trailing_metadata((("seldon-puid", puid),))
        return headers

    services = {SERVICE: handlers}
    services.update(v2_handlers(graph_service(dataplane), record, server, headers_of=headers_of))
    if auth is not None:  # chosen once: without a token file, no check is on the path
        services = require_token(services, auth)
    register(server, services, (SERVICE, V2_SERVICE))
    return server
