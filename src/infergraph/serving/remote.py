"""``infergraph serve --remote NODE=HOST:PORT``: nodes served by other containers.

In a Kubernetes pod the orchestrator is one container and each node another; the
orchestrator calls them over the pod's localhost, as Seldon's executor does. ``--remote``
names, per node, the address it is already listening at, so ``serve`` neither imports the
node's class nor downloads its model: it only calls it. The transport and the node
protocol are those of ``--processes``: gRPC unless ``spec.transport`` is ``rest``, binary
V2 tensors unless ``--node-protocol seldon``. Nodes not named are served in this process
as before (the built-in routers and combiners, typically).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from infergraph.graph.nodes import local_factory
from infergraph.graph.plan import ClientFactory, NodeClient
from infergraph.graph.spec import (
    Deployment,
    PredictiveUnit,
    PredictorSpec,
    is_prepackaged,
    walk_graph,
)
from infergraph.observability.metrics import Registry
from infergraph.routers import RedisStore
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.serving.graph_server import build_dataplane, model_sources
from infergraph.serving.hops import NodeSecurity, message_limit, node_client
from infergraph.settings import GraphSettings

__all__ = ["addresses_of", "remote_dataplane", "remote_factory", "unknown_nodes"]


def addresses_of(
    remote: Mapping[str, Sequence[str]], predictor: str, node: str
) -> Sequence[str] | None:
    """The addresses of ``node`` of ``predictor``: ``predictor/node`` wins over ``node``."""
    return remote.get(f"{predictor}/{node}") or remote.get(node)


def unknown_nodes(deployment: Deployment, remote: Mapping[str, Sequence[str]]) -> list[str]:
    """The ``--remote`` keys that name no node of ``deployment`` (a likely typo)."""
    known: set[str] = set()
    for predictor in deployment.spec.predictors:
        for _, node in walk_graph(predictor.graph, ""):
            known |= {node.name, f"{predictor.name}/{node.name}"}
    return sorted(key for key in remote if key not in known)


def remote_factory(
    remote: Mapping[str, Sequence[str]],
    local: ClientFactory,
    limit: int,
    protocol: str = "v2",
    security: NodeSecurity | None = None,
) -> ClientFactory:
    """Clients of the nodes ``remote`` names; ``local`` builds the others."""

    def build(
        deployment: Deployment, predictor: PredictorSpec, node: PredictiveUnit
    ) -> tuple[NodeClient, str]:
        addresses = addresses_of(remote, predictor.name, node.name)
        if not addresses:
            return local(deployment, predictor, node)
        client = node_client(deployment, node.name, addresses, limit, protocol, security)
        container = predictor.container(node.name)
        server = node.implementation if is_prepackaged(node.implementation) else None
        return client, (container.image if container else None) or server or node.name

    return build


def remote_dataplane(deployment: Deployment, settings: GraphSettings) -> GraphDataPlane:
    """The graph's data plane with the nodes ``settings.remote`` names called remotely."""
    registry = Registry()
    store = RedisStore(settings.redis_url) if settings.redis_url else None
    local = local_factory(sources=model_sources(settings), registry=registry, store=store)
    limit = message_limit(deployment, settings.max_message_size)
    security = NodeSecurity.of(settings)
    factory = remote_factory(settings.remote, local, limit, settings.node_protocol, security)
    return build_dataplane(deployment, settings, registry=registry, factory=factory)
