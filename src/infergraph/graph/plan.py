"""Compile a validated, defaulted deployment into an immutable plan the executor walks.

The plan decides, once, what each node does (predict, transform input, route, aggregate,
transform output, take feedback) from its ``type``, ``methods`` and ``implementation``,
as Seldon's executor does per request, and binds each node to a client that calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infergraph.graph.spec.models import (
    BUILTIN_IMPLEMENTATIONS,
    Deployment,
    Method,
    PredictiveUnit,
    PredictiveUnitType,
    PredictorSpec,
    Transport,
    is_prepackaged,
)
from infergraph.protocol.message import Feedback, Message

__all__ = [
    "ClientFactory",
    "DeploymentPlan",
    "NodeClient",
    "PlanNode",
    "PredictorPlan",
    "compile_deployment",
    "node_behaviour",
]


class NodeClient(Protocol):
    """How the executor calls one node: in this process, or another one over the network."""

    async def predict(self, request: Message, wire: str = "json") -> Message: ...
    async def transform_input(self, request: Message, wire: str = "json") -> Message: ...
    async def transform_output(self, request: Message, wire: str = "json") -> Message: ...
    async def route(self, request: Message, wire: str = "json") -> Message: ...
    async def aggregate(
        self, requests: list[Message], wire: str = "json", raw: Any = None
    ) -> Message: ...
    async def send_feedback(self, feedback: Feedback, wire: str = "json") -> Message: ...
    async def load(self) -> None: ...
    @property
    def ready(self) -> bool: ...
    def metadata(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PlanNode:
    """One node: what it does, its children, and the client that calls it."""

    name: str
    client: NodeClient
    image: str
    predict: bool = False
    transform_input: bool = False
    transform_output: bool = False
    route: bool = False
    aggregate: bool = False
    feedback: bool = False
    children: tuple[PlanNode, ...] = ()
    timeout: float | None = None
    logger_mode: str | None = None
    logger_url: str | None = None
    transport: str = "local"
    """How the node is reached, for the ``method`` label of node-call metrics."""

    def walk(self) -> list[PlanNode]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass(frozen=True, slots=True)
class PredictorPlan:
    name: str
    root: PlanNode
    traffic: int
    shadow: bool
    version: str
    nodes: Mapping[str, PlanNode] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeploymentPlan:
    name: str
    namespace: str
    protocol: str
    transport: str
    annotations: Mapping[str, str]
    predictors: tuple[PredictorPlan, ...]

    def clients(self) -> list[NodeClient]:
        return [node.client for p in self.predictors for node in p.nodes.values()]


ClientFactory = Callable[[Deployment, PredictorSpec, PredictiveUnit], tuple[NodeClient, str]]
"""Builds the client of one node and names its image (for ``meta.requestPath``)."""


def node_behaviour(node: PredictiveUnit) -> dict[str, bool]:
    """What Seldon's executor calls on a node, from its type, methods and implementation."""
    kind = node.type
    implied = BUILTIN_IMPLEMENTATIONS.get(node.implementation or "")
    if kind is None and implied is not None:
        kind = implied
    methods = set(node.methods or ())
    is_model = kind is PredictiveUnitType.MODEL or is_prepackaged(node.implementation)
    is_router = kind is PredictiveUnitType.ROUTER or Method.ROUTE in methods
    return {
        "predict": is_model,
        "transform_input": not is_model
        and (kind is PredictiveUnitType.TRANSFORMER or Method.TRANSFORM_INPUT in methods),
        "transform_output": kind is PredictiveUnitType.OUTPUT_TRANSFORMER
        or Method.TRANSFORM_OUTPUT in methods,
        "route": is_router,
        "aggregate": kind is PredictiveUnitType.COMBINER or Method.AGGREGATE in methods,
        "feedback": is_model or is_router or Method.SEND_FEEDBACK in methods,
    }


def _timeout(deployment: Deployment, predictor: PredictorSpec) -> float | None:
    """Per-node timeout from seldon.io/rest-timeout or seldon.io/grpc-timeout (ms)."""
    annotations = {**deployment.metadata.annotations, **deployment.spec.annotations}
    annotations.update(predictor.annotations)
    grpc = deployment.spec.transport is Transport.GRPC
    value = annotations.get("seldon.io/grpc-timeout" if grpc else "seldon.io/rest-timeout")
    if value and value.strip().isdigit() and int(value) > 0:
        return int(value) / 1000.0
    return None


def _compile_node(
    deployment: Deployment,
    predictor: PredictorSpec,
    node: PredictiveUnit,
    factory: ClientFactory,
    timeout: float | None,
) -> PlanNode:
    client, image = factory(deployment, predictor, node)
    children = tuple(
        _compile_node(deployment, predictor, child, factory, timeout) for child in node.children
    )
    logger = node.logger
    return PlanNode(
        transport=str(getattr(client, "transport", "local")),
        name=node.name,
        client=client,
        image=image,
        children=children,
        timeout=timeout,
        logger_mode=str(logger.mode) if logger and logger.mode else None,
        logger_url=logger.url if logger else None,
        **node_behaviour(node),
    )


def compile_deployment(deployment: Deployment, factory: ClientFactory) -> DeploymentPlan:
    """The plan of a deployment already checked by ``validate`` and ``default``-ed."""
    predictors = []
    for predictor in deployment.spec.predictors:
        root = _compile_node(
            deployment, predictor, predictor.graph, factory, _timeout(deployment, predictor)
        )
        predictors.append(
            PredictorPlan(
                name=predictor.name,
                root=root,
                traffic=predictor.traffic,
                shadow=predictor.shadow,
                version=predictor.labels.get("version", predictor.name),
                nodes={node.name: node for node in root.walk()},
            )
        )
    spec = deployment.spec
    return DeploymentPlan(
        name=deployment.metadata.name,
        namespace=deployment.metadata.namespace,
        protocol=str(spec.protocol),
        transport=str(spec.transport or Transport.REST),
        annotations={**deployment.metadata.annotations, **spec.annotations},
        predictors=tuple(predictors),
    )
