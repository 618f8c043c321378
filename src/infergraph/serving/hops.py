"""How the orchestrator calls a node that runs in another process or container.

``serve --processes`` starts such nodes itself and ``serve --remote`` is told where they
listen; both call them the same way: over gRPC unless the deployment's ``spec.transport`` is
``rest``, with binary V2 tensors unless the node protocol is ``seldon``, every message
bounded by the ``seldon.io/grpc-max-message-size`` annotation; in TLS and with a bearer
token when node TLS and node auth are configured (:class:`NodeSecurity`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from infergraph.errors import LoadError
from infergraph.graph.nodes import (
    GrpcNodeClient,
    ReplicatedNodeClient,
    RestNodeClient,
    SeldonJsonCodec,
    SeldonProtoCodec,
    V2GrpcCodec,
    V2RestCodec,
)
from infergraph.graph.spec import Deployment, Transport
from infergraph.settings import GraphSettings
from infergraph.wire.limits import Http2Limits
from infergraph.wire.tls import GRPC_ALPN, REST_ALPN, ReloadingContext
from infergraph.wire.tokens import BearerTokens

__all__ = [
    "EXTERNAL_ENV",
    "NodeSecurity",
    "message_limit",
    "node_client",
    "node_tls_env",
    "uses_grpc",
]

EXTERNAL_ENV = re.compile(r"^INFERGRAPH_(TLS_(CERT|KEY|CA)_FILE|AUTH_TOKEN_FILE)$")
"""The orchestrator's own TLS and tokens, which protect its external APIs: node processes
do not inherit them; they serve TLS and require a token only by node TLS and node auth."""


@dataclass(frozen=True)
class NodeSecurity:
    """How the orchestrator's calls to nodes are secured: one TLS context per transport
    (None: plain), the bearer token they send (None: none) and the HTTP/2 limits a gRPC
    client holds its servers to."""

    grpc_tls: ReloadingContext | None = None
    rest_tls: ReloadingContext | None = None
    auth: BearerTokens | None = None
    http2: Http2Limits = field(default_factory=Http2Limits)

    @classmethod
    def of(cls, settings: GraphSettings) -> NodeSecurity:
        """From ``node_tls`` and ``node_auth_token_file``; raises ValueError or
        :class:`ssl.SSLError` when their files do not load."""
        files, token_file = settings.node_tls, settings.node_auth_token_file
        auth = BearerTokens(token_file) if token_file else None
        if files is None:
            return cls(auth=auth, http2=settings.wire.http2)
        return cls(
            ReloadingContext.for_client(files, GRPC_ALPN),
            ReloadingContext.for_client(files, REST_ALPN),
            auth,
            settings.wire.http2,
        )


def message_limit(deployment: Deployment, default: int) -> int:
    """Every hop's message limit: the ``seldon.io/grpc-max-message-size`` annotation."""
    annotations = {**deployment.metadata.annotations, **deployment.spec.annotations}
    value = annotations.get("seldon.io/grpc-max-message-size", "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def uses_grpc(deployment: Deployment) -> bool:
    """Whether hops go over gRPC (``spec.transport: grpc``) rather than REST, the default as
    in Seldon's executor (a REST hop costs less CPU and adds less latency: docs/processes.md)."""
    return deployment.spec.transport is Transport.GRPC


def node_client(
    deployment: Deployment,
    node: str,
    addresses: Sequence[str],
    limit: int,
    protocol: str,
    security: NodeSecurity | None = None,
) -> ReplicatedNodeClient[Any]:
    """The client of ``node`` at ``addresses`` (its replicas), for the deployment's transport
    and the node ``protocol`` (``v2`` or ``seldon``), secured by ``security``."""
    v2 = protocol == "v2"
    security = security or NodeSecurity()
    client: ReplicatedNodeClient[Any]
    if uses_grpc(deployment):
        client = GrpcNodeClient(
            node,
            list(addresses),
            max_message_size=limit,
            codec=V2GrpcCodec(node) if v2 else SeldonProtoCodec(),
            tls=security.grpc_tls,
            auth=security.auth,
            http2=security.http2,
        )
    else:
        client = RestNodeClient(
            node,
            list(addresses),
            max_message_size=limit,
            codec=V2RestCodec(node, limit) if v2 else SeldonJsonCodec(limit),
            tls=security.rest_tls,
            auth=security.auth,
        )
    return client


def node_tls_env(settings: GraphSettings) -> dict[str, str]:
    """The env that sets the TLS of ``serve --processes``'s node processes: none unless node
    TLS is on; then the orchestrator's certificate (valid for 127.0.0.1, where they listen),
    and with a node client certificate and CA, mTLS (they require a certificate that CA
    signed). A token to require comes from INFERGRAPH_NODE_AUTH_TOKEN_FILE, inherited."""
    node, own = settings.node_tls, settings.tls
    if node is None:
        return {}
    if own is None or not own.cert_file or not own.key_file:
        raise LoadError(
            "node TLS with --processes: the node processes serve the orchestrator's "
            "certificate; give --tls-cert-file and --tls-key-file (a certificate valid for "
            "127.0.0.1)"
        )
    env = {"INFERGRAPH_TLS_CERT_FILE": own.cert_file, "INFERGRAPH_TLS_KEY_FILE": own.key_file}
    if node.cert_file and node.ca_file:
        env["INFERGRAPH_TLS_CA_FILE"] = node.ca_file
    return env
