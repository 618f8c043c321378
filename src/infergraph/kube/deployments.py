"""One Kubernetes Deployment per componentSpec, built the way Seldon's operator builds it.

The user's pod spec is kept as written; Seldon's additions are layered on: the node
containers' ports, env and probes, the model-download init containers, the downward-API
``seldon-podinfo`` volume, Seldon's labels and Prometheus annotations, and the orchestrator
in the pod of the graph's root node. ``spec.replicas`` is left out exactly when an HPA or a
KEDA ScaledObject owns it, so GitOps tools and the autoscaler never fight over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infergraph.graph.spec import (
    Deployment,
    PredictiveUnit,
    PredictorSpec,
    Problem,
    SeldonPodSpec,
    walk_graph,
)
from infergraph.kube.containers import METRICS_PATH, PODINFO_VOLUME, node_container, plain_container
from infergraph.kube.model_init import model_init
from infergraph.kube.names import (
    deployment_name,
    node_service_name,
    object_labels,
    predictor_service_name,
    role_labels,
    selector,
    service_label,
)
from infergraph.kube.options import RenderOptions

__all__ = [
    "PODINFO",
    "PodExtras",
    "component_deployment",
    "has_autoscaler",
    "predictor_pod_labels",
    "replicas",
    "workload",
]

PODINFO: dict[str, Any] = {
    "name": PODINFO_VOLUME,
    "downwardAPI": {
        "items": [{"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]
    },
}


@dataclass(slots=True)
class PodExtras:
    """What the predictor adds to one pod besides its node containers (the orchestrator)."""

    containers: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def has_autoscaler(component: SeldonPodSpec) -> bool:
    """Whether an HPA or a KEDA ScaledObject sets this componentSpec's replicas."""
    return component.hpa_spec is not None or component.keda_spec is not None


def replicas(deployment: Deployment, predictor: PredictorSpec, component: SeldonPodSpec) -> int:
    """Seldon's precedence: componentSpec, then predictor, then spec; 1 when none is set."""
    for value in (component.replicas, predictor.replicas, deployment.spec.replicas):
        if value is not None:
            return value
    return 1


def component_deployment(
    deployment: Deployment,
    predictor: PredictorSpec,
    predictor_path: str,
    index: int,
    options: RenderOptions,
    extras: PodExtras,
    config_annotations: dict[str, str],
) -> tuple[dict[str, Any], list[Problem]]:
    """The Deployment of ``predictor.componentSpecs[index]`` and the problems found."""
    component = predictor.component_specs[index]
    name = deployment_name(deployment.metadata.name, predictor, index, component)
    nodes = {
        node.name: (path, node)
        for path, node in walk_graph(predictor.graph, f"{predictor_path}.graph")
    }
    sdep = deployment.metadata.name
    labels = {**predictor.labels, **component.metadata.labels}
    labels |= {
        "fluentd": "true",
        **object_labels(deployment, predictor),
        **selector(deployment, name),
    }
    containers: list[dict[str, Any]] = []
    init_containers: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for container in component.spec.containers:
        found: tuple[str, PredictiveUnit] | None = nodes.get(container.name)
        if found is None:
            containers.append(plain_container(container))
            continue
        path, node = found
        model = model_init(node, container.name, options.runtime_image)
        rendered, found_problems = node_container(
            deployment, predictor, node, container, model, options.runtime_image, path
        )
        problems += found_problems
        containers.append(rendered)
        if model is not None:
            init_containers.append(model.init_container)
            volumes += model.volumes
        labels[service_label(container.name)] = node_service_name(sdep, predictor, container.name)
        labels |= role_labels(node, predictor)
    labels |= extras.labels
    pod: dict[str, Any] = component.spec.model_dump(by_alias=True, exclude_none=True)
    pod["containers"] = containers + extras.containers
    if init_containers:
        pod["initContainers"] = [*pod.get("initContainers", []), *init_containers]
    user_volumes = [v for v in pod.get("volumes", []) if v.get("name") != PODINFO_VOLUME]
    pod["volumes"] = [*user_volumes, *volumes, *extras.volumes, PODINFO]
    names = {c.name for c in component.spec.containers}
    accounts = [
        n.service_account_name
        for _, n in nodes.values()
        if n.service_account_name and n.name in names
    ]
    if accounts:  # a node's serviceAccountName is its pod's, for model credentials
        pod.setdefault("serviceAccountName", accounts[0])
    if options.default_user_id is not None:
        pod.setdefault("securityContext", {"runAsUser": options.default_user_id})
    pod.setdefault("terminationGracePeriodSeconds", 20)
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    annotations = {**config_annotations, **component.metadata.annotations, **extras.annotations}
    annotations |= {"prometheus.io/scrape": "true", "prometheus.io/path": METRICS_PATH}
    spec: dict[str, Any] = {}
    if not has_autoscaler(component):
        spec["replicas"] = replicas(deployment, predictor, component)
    return workload(deployment, predictor, name, labels, annotations, pod, spec), problems


def workload(
    deployment: Deployment,
    predictor: PredictorSpec | None,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    pod: dict[str, Any],
    spec: dict[str, Any],
) -> dict[str, Any]:
    """A Deployment object around ``pod``, with Seldon's rollout settings."""
    body: dict[str, Any] = {
        **spec,
        "selector": {"matchLabels": selector(deployment, name)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": "25%"},
        },
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod},
    }
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": deployment.metadata.namespace,
        "labels": {k: v for k, v in labels.items() if not k.startswith("seldon-app-svc-")},
        "annotations": annotations,
    }
    if not annotations:
        del body["template"]["metadata"]["annotations"], metadata["annotations"]
    if predictor is not None and predictor.progress_deadline_seconds is not None:
        body["progressDeadlineSeconds"] = predictor.progress_deadline_seconds
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": body}


def predictor_pod_labels(deployment: Deployment, predictor: PredictorSpec) -> dict[str, str]:
    """Labels of the pod that serves the predictor's entry Service."""
    return {"seldon-app": predictor_service_name(deployment.metadata.name, predictor)}
