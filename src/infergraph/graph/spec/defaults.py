"""Seldon's defaulting (``defaults.go::DefaultSeldonDeployment``), as one pure function.

Seldon's mutating webhook fills in what users leave out: node types, the ``version`` label,
the ports of every container and the address at which the orchestrator reaches each node.
Rendered manifests, the local runtime and the orchestrator all read those filled-in values,
so they must come out exactly as Seldon computed them: same port numbers, same host names.
Only the Kubernetes-only touches (the podinfo volume mount, ``imagePullPolicy``, the image
of a prepackaged server) are left to ``kube.render``, which knows the cluster's settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TypeVar, cast

from infergraph.graph.spec.kube_types import Container, ContainerPort
from infergraph.graph.spec.models import (
    BUILTIN_IMPLEMENTATIONS,
    Endpoint,
    EndpointType,
    GraphDeployment,
    Implementation,
    PredictiveUnit,
    PredictiveUnitType,
    PredictorSpec,
    SeldonDeployment,
    SeldonPodSpec,
    Transport,
    is_prepackaged,
    walk_graph,
)

__all__ = ["ANNOTATION_SEPARATE_ENGINE", "PortBases", "default", "service_name"]

ANNOTATION_SEPARATE_ENGINE = "seldon.io/engine-separate-pod"

D = TypeVar("D", bound=GraphDeployment | SeldonDeployment)


@dataclass(frozen=True, slots=True)
class PortBases:
    """Where port numbering starts; Seldon's operator env ``PREDICTIVE_UNIT_*`` moves it."""

    http: int = 9000
    """First HTTP port (``PREDICTIVE_UNIT_HTTP_SERVICE_PORT``)."""
    grpc: int = 9500
    """First gRPC port (``PREDICTIVE_UNIT_GRPC_SERVICE_PORT``)."""
    metrics: int = 6000
    """First metrics port (``PREDICTIVE_UNIT_METRICS_SERVICE_PORT``)."""
    metrics_port_name: str = "metrics"
    """Name of the added metrics container port (``PREDICTIVE_UNIT_METRICS_PORT_NAME``)."""


@dataclass(slots=True)
class _Numbering:
    """Port numbers per container name, shared by every predictor of a deployment."""

    bases: PortBases
    http: dict[str, int] = field(default_factory=dict)
    grpc: dict[str, int] = field(default_factory=dict)
    next_metrics: int = 0

    def ports(self, name: str) -> tuple[int, int]:
        http = self.http.setdefault(name, self.bases.http + len(self.http))
        grpc = self.grpc.setdefault(name, self.bases.grpc + len(self.grpc))
        return http, grpc


def default(deployment: D, bases: PortBases | None = None) -> D:
    """A copy of ``deployment`` with Seldon's defaults filled in; the input is not changed."""
    out = cast(D, deployment.model_copy(deep=True))  # model_copy returns Self
    numbering = _Numbering(bases or PortBases())
    numbering.next_metrics = numbering.bases.metrics
    # Fields are assigned, never mutated in place, so that they count as set and survive
    # ``model_dump(exclude_unset=True)``.
    out.metadata.namespace = out.metadata.namespace or "default"
    for predictor in out.spec.predictors:
        predictor.labels = {"version": predictor.name, **predictor.labels}
        for _, node in walk_graph(predictor.graph, ""):
            _default_node(node)
        for index, container in list(predictor.containers()):
            http, grpc = numbering.ports(container.name)
            owner = _find(predictor.graph, container.name)
            if owner is not None:
                _set_endpoint(out, predictor, owner, container, index, (http, grpc), numbering)
        for _, node in walk_graph(predictor.graph, ""):
            if is_prepackaged(node.implementation) and predictor.container(node.name) is None:
                _add_server_container(out, predictor, node, numbering)
    return out


def service_name(deployment: str, predictor: str, container: str) -> str:
    """The per-node Service name, hashed like Seldon's when longer than 63 characters."""
    name = f"{deployment}-{predictor}-{container}"
    if len(name) > 63:
        return "seldon-" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    return name


def _default_node(node: PredictiveUnit) -> None:
    if node.type is None and node.methods is None and node.implementation is None:
        node.type = PredictiveUnitType.MODEL
    if node.implementation is None:
        node.implementation = Implementation.UNKNOWN_IMPLEMENTATION
    elif is_prepackaged(node.implementation):
        node.type = PredictiveUnitType.MODEL
    elif node.type is None and node.methods is None:
        # infergraph addition: a builtin router or combiner says what it is, so the plan
        # need not special-case implementations Seldon left untyped.
        implied = BUILTIN_IMPLEMENTATIONS.get(node.implementation)
        if implied is not None:
            node.type = implied


def _find(graph: PredictiveUnit, name: str) -> PredictiveUnit | None:
    return next((node for _, node in walk_graph(graph, "") if node.name == name), None)


def _port_named(container: Container, name: str) -> ContainerPort | None:
    return next((port for port in container.ports if port.name == name), None)


def _set_endpoint(
    deployment: GraphDeployment | SeldonDeployment,
    predictor: PredictorSpec,
    node: PredictiveUnit,
    container: Container,
    component_index: int,
    ports: tuple[int, int],
    numbering: _Numbering,
) -> None:
    http, grpc = ports
    declared_http = _port_named(container, "http")
    declared_grpc = _port_named(container, "grpc")
    if declared_http is not None:
        http = declared_http.container_port
    if declared_grpc is not None:
        grpc = declared_grpc.container_port
    metrics_name = numbering.bases.metrics_port_name
    if _port_named(container, metrics_name) is None:
        port = {"name": metrics_name, "containerPort": numbering.next_metrics, "protocol": "TCP"}
        container.ports = [*container.ports, ContainerPort.model_validate(port)]
        numbering.next_metrics += 1
    endpoint = node.endpoint if node.endpoint is not None else Endpoint()
    separate = ANNOTATION_SEPARATE_ENGINE in deployment.spec.annotations
    if component_index == 0 and not separate:
        endpoint.service_host = "localhost"
    else:
        name = service_name(deployment.metadata.name, predictor.name, container.name)
        endpoint.service_host = f"{name}.{deployment.metadata.namespace}.svc.cluster.local"
    grpc_hop = endpoint.type == EndpointType.GRPC or deployment.spec.transport == Transport.GRPC
    endpoint.service_port = grpc if grpc_hop else http
    endpoint.http_port = http
    endpoint.grpc_port = grpc
    node.endpoint = endpoint


def _add_server_container(
    deployment: GraphDeployment | SeldonDeployment,
    predictor: PredictorSpec,
    node: PredictiveUnit,
    numbering: _Numbering,
) -> None:
    """A prepackaged node without a container gets one in the first componentSpec (its
    image is resolved by ``kube.render`` from the server table)."""
    container = Container(name=node.name)
    ports = numbering.ports(node.name)
    _set_endpoint(deployment, predictor, node, container, 0, ports, numbering)
    if predictor.component_specs:
        pod = predictor.component_specs[0].spec
        pod.containers = [*pod.containers, container]
    else:
        component = SeldonPodSpec.model_validate({"spec": {"containers": []}})
        component.spec.containers = [container]
        predictor.component_specs = [component]
