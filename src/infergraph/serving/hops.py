"""How the orchestrator calls a node that runs in another process or container.

``serve --processes`` starts such nodes itself and ``serve --remote`` is told where they
listen; both call them the same way: over gRPC unless the deployment's ``spec.transport`` is
``rest``, with binary V2 tensors unless the node protocol is ``seldon``, every message
bounded by the ``seldon.io/grpc-max-message-size`` annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infergraph.graph.remote_nodes import GrpcNodeClient
from infergraph.graph.replicas import ReplicatedNodeClient
from infergraph.graph.rest_nodes import RestNodeClient
from infergraph.graph.spec import Deployment, Transport
from infergraph.graph.v2_nodes import V2GrpcNodeClient, V2RestNodeClient
from infergraph.wire.limits import Http2Limits

__all__ = ["message_limit", "node_client", "uses_grpc"]


def message_limit(deployment: Deployment, default: int) -> int:
    """Every hop's message limit: the ``seldon.io/grpc-max-message-size`` annotation."""
    annotations = {**deployment.metadata.annotations, **deployment.spec.annotations}
    value = annotations.get("seldon.io/grpc-max-message-size", "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def uses_grpc(deployment: Deployment) -> bool:
    """Whether hops go over gRPC (``spec.transport: grpc``) rather than REST, the default as
    in Seldon's executor (and a REST hop costs about half a gRPC one's CPU: docs/processes.md)."""
    return deployment.spec.transport is Transport.GRPC


def node_client(
    deployment: Deployment,
    node: str,
    addresses: Sequence[str],
    limit: int,
    protocol: str,
    http2: Http2Limits | None = None,
) -> ReplicatedNodeClient[Any]:
    """The client of ``node`` at ``addresses`` (its replicas), for the deployment's transport
    and the node ``protocol`` (``v2`` or ``seldon``); a gRPC one holds its servers to
    ``http2``."""
    v2 = protocol == "v2"
    if uses_grpc(deployment):
        grpc_kind = V2GrpcNodeClient if v2 else GrpcNodeClient
        return grpc_kind(node, list(addresses), max_message_size=limit, http2=http2)
    rest_kind = V2RestNodeClient if v2 else RestNodeClient
    return rest_kind(node, list(addresses), max_message_size=limit)
