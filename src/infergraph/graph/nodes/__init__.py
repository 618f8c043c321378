"""The node clients: how the executor calls a graph node, wherever it is served.

A node is called through one interface (:class:`~infergraph.graph.plan.NodeClient`) whether
it runs in this process or in others; this package holds every implementation of it.

- :mod:`~infergraph.graph.nodes.local`: nodes served in this process (user classes, the
  built-in routers and combiners, the prepackaged servers).
- :mod:`~infergraph.graph.nodes.replicated`: what the clients of nodes in other processes
  share (replicas, round-robin, health, retries), with one client per transport: REST
  (:mod:`~infergraph.graph.nodes.rest_client`) and gRPC
  (:mod:`~infergraph.graph.nodes.grpc_client`).
- :mod:`~infergraph.graph.nodes.codecs`: the hop's protocol, handed to a client when it is
  built: Seldon's (:mod:`~infergraph.graph.nodes.seldon_codecs`) or binary V2
  (:mod:`~infergraph.graph.nodes.v2_codecs`).
- :mod:`~infergraph.graph.nodes.wire_errors`: the one place where what the wire raises
  becomes infergraph's errors.
- :mod:`~infergraph.graph.nodes.processes`: which nodes run in processes of their own.

The bytes themselves are ``wire``'s: nothing here opens a socket or parses HTTP.
"""

from __future__ import annotations

from infergraph.graph.nodes.codecs import GrpcCodec, RestCodec
from infergraph.graph.nodes.grpc_client import GrpcNodeClient
from infergraph.graph.nodes.local import local_factory
from infergraph.graph.nodes.processes import HOST, NodeProcess, plan_processes
from infergraph.graph.nodes.replicated import ReplicatedNodeClient
from infergraph.graph.nodes.rest_client import RestNodeClient
from infergraph.graph.nodes.seldon_codecs import SeldonJsonCodec, SeldonProtoCodec
from infergraph.graph.nodes.v2_codecs import V2GrpcCodec, V2RestCodec

__all__ = [
    "HOST",
    "GrpcCodec",
    "GrpcNodeClient",
    "NodeProcess",
    "ReplicatedNodeClient",
    "RestCodec",
    "RestNodeClient",
    "SeldonJsonCodec",
    "SeldonProtoCodec",
    "V2GrpcCodec",
    "V2RestCodec",
    "local_factory",
    "plan_processes",
]
