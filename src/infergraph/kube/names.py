"""Names and labels of rendered objects, exactly as Seldon's operator chooses them.

Dashboards, PodMonitors, NetworkPolicies and scripts written for Seldon select on these
names and labels, so they are Seldon's: ``<sdep>-<predictor>-<index>-<containers>`` for a
Deployment, ``seldon-<md5>`` for a name over 63 characters, ``seldon-app-svc-<container>``
for a node's Service selector. Selectors use only labels that never change over a
deployment's life (never ``version`` or an image), since a Deployment's selector is
immutable.
"""

from __future__ import annotations

import hashlib
import re

from infergraph.graph.spec.defaults import service_name
from infergraph.graph.spec.models import (
    Deployment,
    PredictiveUnit,
    PredictiveUnitType,
    PredictorSpec,
    SeldonPodSpec,
)
from infergraph.graph.spec.validate import ANNOTATION_SVC_NAME

__all__ = [
    "DNS_LABEL",
    "MANAGED_BY",
    "MAX_NAME",
    "deployment_name",
    "is_dns_label",
    "kube_name",
    "node_service_name",
    "object_labels",
    "orchestrator_deployment_name",
    "predictor_service_name",
    "role_labels",
    "selector",
    "service_label",
]

MAX_NAME = 63
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
MANAGED_BY = "infergraph"
"""The ``app.kubernetes.io/managed-by`` value (Seldon writes ``seldon-core``)."""


def is_dns_label(name: str) -> bool:
    """Whether ``name`` is an RFC 1123 label: lowercase letters, digits and ``-``, ≤ 63."""
    return len(name) <= MAX_NAME and DNS_LABEL.match(name) is not None


def kube_name(name: str) -> str:
    """``name``, or Seldon's ``seldon-<md5>`` when it is longer than 63 characters."""
    if len(name) > MAX_NAME:
        return "seldon-" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    return name


def deployment_name(sdep: str, predictor: PredictorSpec, index: int, pod: SeldonPodSpec) -> str:
    """The Deployment of ``componentSpecs[index]``: named after its ``metadata.name``, else
    after its containers."""
    suffix = pod.metadata.name or "-".join(c.name for c in pod.spec.containers)
    return kube_name(f"{sdep}-{predictor.name}-{index}-{suffix}".rstrip("-"))


def predictor_service_name(sdep: str, predictor: PredictorSpec) -> str:
    """The predictor's entry Service: annotation ``seldon.io/svc-name``, else
    ``<sdep>-<predictor>``."""
    return predictor.annotations.get(ANNOTATION_SVC_NAME) or kube_name(f"{sdep}-{predictor.name}")


def orchestrator_deployment_name(sdep: str, predictor: PredictorSpec) -> str:
    """The orchestrator's own Deployment (annotation ``seldon.io/engine-separate-pod``)."""
    return kube_name(f"{sdep}-{predictor.name}-svc-orch")


def node_service_name(sdep: str, predictor: PredictorSpec, container: str) -> str:
    """The Service of one node's container, ``<sdep>-<predictor>-<container>``."""
    return service_name(sdep, predictor.name, container)


def service_label(container: str) -> str:
    """The pod label a node's Service selects on."""
    return f"seldon-app-svc-{container}"


def object_labels(deployment: Deployment, predictor: PredictorSpec | None = None) -> dict[str, str]:
    """Labels every rendered object carries: who manages it and which deployment it is."""
    labels = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "seldon-deployment-id": deployment.metadata.name,
        "infergraph.io/deployment": deployment.metadata.name,
    }
    if predictor is not None:
        labels["infergraph.io/predictor"] = predictor.name
    return labels


def selector(deployment: Deployment, name: str) -> dict[str, str]:
    """A Deployment's selector: the deployment id and ``app=<Deployment name>``, both fixed
    for the Deployment's life (never ``version`` or an image)."""
    return {"seldon-deployment-id": deployment.metadata.name, "app": name}


_ROLES = {
    PredictiveUnitType.MODEL: "seldon.io/model",
    PredictiveUnitType.ROUTER: "seldon.io/router",
    PredictiveUnitType.COMBINER: "seldon.io/combiner",
    PredictiveUnitType.TRANSFORMER: "seldon.io/transformer",
    PredictiveUnitType.OUTPUT_TRANSFORMER: "seldon.io/output-transformer",
}


def role_labels(node: PredictiveUnit, predictor: PredictorSpec) -> dict[str, str]:
    """Seldon's role labels (``seldon.io/model: "true"``...) of one node."""
    labels = {}
    role = _ROLES.get(node.type) if node.type is not None else None
    if role is not None:
        labels[role] = "true"
    if predictor.shadow:
        labels["seldon.io/shadow"] = "true"
    return labels
