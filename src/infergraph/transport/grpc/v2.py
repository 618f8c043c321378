"""``inference.GRPCInferenceService``: the Open Inference Protocol over gRPC.

Served beside the Seldon services on the same port, for a component and for a graph.
Inputs may come typed (``contents``) or raw (``raw_input_contents``, what tritonclient
sends); outputs go raw when the inputs did. Errors leave as gRPC status codes from the
one table (an unknown model is INVALID_ARGUMENT, as for REST's 400).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from infergraph.observability.tracing import Tracing
from infergraph.protocol import v2_pb
from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.runtime.v2_service import V2Service
from infergraph.transport.grpc.server import Record, Server, service_handlers

__all__ = ["SERVICE", "v2_handlers"]

SERVICE = "inference.GRPCInferenceService"

HeadersOf = Callable[[grpc.ServicerContext, str], dict[str, str]]
"""The headers a call carries into the data plane (context, V2 request id as puid hint)."""


def metadata_headers(context: grpc.ServicerContext, hint: str) -> dict[str, str]:
    """A call's invocation metadata as lower-case headers (text values only)."""
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _tensor_metadata(items: list[dict[str, Any]]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [
        pb.ModelMetadataResponse.TensorMetadata(
            name=item["name"], datatype=item["datatype"], shape=item["shape"]
        )
        for item in items
    ]


class _V2Servicer:
    def __init__(self, service: V2Service, headers_of: HeadersOf) -> None:
        self.service = service
        self.headers_of = headers_of

    async def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=self.service.live())

    async def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.service.ready())

    async def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ModelReadyResponse(ready=self.service.model_ready(request.name, request.version))

    async def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerMetadataResponse(**self.service.server_metadata())

    async def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        meta = self.service.model_metadata(request.name, request.version)
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=_tensor_metadata(meta["inputs"]),
            outputs=_tensor_metadata(meta["outputs"]),
        )

    async def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.model_name or self.service.default_model()
        decoded = v2_pb.decode_request(request)
        headers = self.headers_of(context, decoded.id or "")
        response = await self.service.infer(decoded, name, request.model_version, headers)
        return v2_pb.encode_response(response, request)


_TYPES = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}


PROBES = frozenset({"ServerLive", "ServerReady", "ModelReady"})
"""Answered while the models load, to report it (``before_probe`` runs first, not ``before``)."""


def v2_handlers(
    service: V2Service,
    record: Record,
    server: Server,
    before: Callable[[], Any] | None = None,
    headers_of: HeadersOf = metadata_headers,
    before_probe: Callable[[], Any] | None = None,
    tracing: Tracing | None = None,
) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    """The service's handlers, ready for :func:`~infergraph.transport.grpc.server.register`;
    with ``tracing``, inference calls (not probes or metadata) are server spans."""
    servicer = _V2Servicer(service, headers_of)
    calls = {m: types for m, types in _TYPES.items() if m not in PROBES and m != "ModelInfer"}
    probes = {m: types for m, types in _TYPES.items() if m in PROBES}
    infer = {"ModelInfer": _TYPES["ModelInfer"]}
    handlers = service_handlers(SERVICE, servicer, calls, record, server, before)
    handlers.update(service_handlers(SERVICE, servicer, infer, record, server, before, tracing))
    handlers.update(service_handlers(SERVICE, servicer, probes, record, server, before_probe))
    return {SERVICE: handlers}
