"""Services: one per predictor (its entry point, 8000/5001) and one per node container.

The orchestrator reaches a node in its own pod over ``localhost`` and any other node through
that node's Service, ``<sdep>-<predictor>-<container>``, which selects on
``seldon-app-svc-<container>``. The predictor Service selects the pod holding the
orchestrator (``seldon-app=<service>``), or the root model itself with
``seldon.io/no-engine``.
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec, walk_graph
from infergraph.kube.names import (
    node_service_name,
    object_labels,
    predictor_service_name,
    role_labels,
    service_label,
)

__all__ = ["node_services", "predictor_service", "service"]

_HEADLESS = "seldon.io/headless-svc"


def service(
    deployment: Deployment,
    predictor: PredictorSpec | None,
    name: str,
    selector: dict[str, str],
    ports: tuple[tuple[str, int, int], ...],
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    headless: bool = False,
) -> dict[str, Any]:
    """A ClusterIP Service; ``ports`` are ``(name, port, targetPort)``."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": deployment.metadata.namespace,
        "labels": {**(labels or {}), **object_labels(deployment, predictor)},
    }
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector,
        "ports": [
            {"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}
            for port_name, port, target in ports
        ],
    }
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def predictor_service(
    deployment: Deployment,
    predictor: PredictorSpec,
    ports: tuple[tuple[str, int, int], ...],
    annotations: dict[str, str],
) -> dict[str, Any]:
    """The predictor's entry Service; ``ports`` are the orchestrator's (or, with no
    orchestrator, the root model's)."""
    name = predictor_service_name(deployment.metadata.name, predictor)
    headless = annotations.get(_HEADLESS, "false").lower() != "false"
    return service(
        deployment,
        predictor,
        name,
        {"seldon-app": name},
        ports,
        annotations=dict(predictor.annotations),
        labels={"seldon-app": name},
        headless=headless,
    )


def node_services(deployment: Deployment, predictor: PredictorSpec) -> list[dict[str, Any]]:
    """One Service per container that implements a graph node, in graph order."""
    out = []
    sdep = deployment.metadata.name
    containers = {container.name for _, container in predictor.containers()}
    for _, node in walk_graph(predictor.graph, ""):
        if node.name not in containers or node.endpoint is None:
            continue
        name = node_service_name(sdep, predictor, node.name)
        http, grpc = node.endpoint.http_port, node.endpoint.grpc_port
        assert http is not None and grpc is not None  # filled in by defaulting
        out.append(
            service(
                deployment,
                predictor,
                name,
                {service_label(node.name): name},
                (("http", http, http), ("grpc", grpc, grpc)),
                labels=role_labels(node, predictor),
            )
        )
    return out
