"""The node clients: how the executor calls a graph node, wherever it is served.

A node is called through one interface (:class:`~infergraph.graph.plan.NodeClient`) whether
it runs in this process or in others; this package holds every implementation of it.

- :mod:`~infergraph.graph.nodes.local`: nodes served in this process (user classes, the
  built-in routers and combiners, the prepackaged servers).
- :mod:`~infergraph.graph.nodes.replicated`: what the clients of nodes in other processes
  share (replicas, round-robin, health, retries), with their REST client
  (:mod:`~infergraph.graph.nodes.rest_client`) and gRPC client
  (:mod:`~infergraph.graph.nodes.grpc_client`).
- :mod:`~infergraph.graph.nodes.v2`: the clients that carry hops as binary V2.
- :mod:`~infergraph.graph.nodes.wire_errors`: the one place where what the wire raises
  becomes infergraph's errors.
- :mod:`~infergraph.graph.nodes.processes`: which nodes run in processes of their own.

The bytes themselves are ``wire``'s: nothing here opens a socket or parses HTTP.
"""

from __future__ import annotations

from infergraph.graph.nodes.grpc_client import GrpcNodeClient
from infergraph.graph.nodes.local import local_factory
from infergraph.graph.nodes.processes import HOST, NodeProcess, plan_processes
from infergraph.graph.nodes.replicated import ReplicatedNodeClient
from infergraph.graph.nodes.rest_client import RestNodeClient
from infergraph.graph.nodes.v2 import V2GrpcNodeClient, V2RestNodeClient

__all__ = [
    "HOST",
    "GrpcNodeClient",
    "NodeProcess",
    "ReplicatedNodeClient",
    "RestNodeClient",
    "V2GrpcNodeClient",
    "V2RestNodeClient",
    "local_factory",
    "plan_processes",
]
