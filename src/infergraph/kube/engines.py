"""Orchestrators with Deployments of their own: the separate engine pod and the router.

With ``seldon.io/engine-separate-pod`` a predictor's orchestrator runs in its own
Deployment, ``<sdep>-<predictor>-svc-orch``, scaled by ``svcOrchSpec.replicas``. Without an
ingress that splits traffic (``--ingress none``), a deployment with several predictors or a
shadow gets infergraph's router: Service ``<sdep>`` in front of Deployment
``<sdep>-router``, an orchestrator that serves every predictor (split by ``traffic``, a copy
of each request to the shadow) and calls all the nodes through their Services.
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec
from infergraph.kube.containers import METRICS_PATH
from infergraph.kube.deployments import PODINFO, PodExtras, workload
from infergraph.kube.names import kube_name, object_labels, orchestrator_deployment_name, selector
from infergraph.kube.options import RenderOptions
from infergraph.kube.orchestrator import (
    CHECKSUM_ANNOTATION,
    GRPC_PORT,
    HTTP_PORT,
    config_map,
    config_volume,
    node_protocol,
    orchestrator_container,
    remote_nodes,
    router_config,
)
from infergraph.kube.services import service

__all__ = ["ORCHESTRATOR_PORTS", "orchestrator_deployment", "router"]

ORCHESTRATOR_PORTS = (("http", HTTP_PORT, HTTP_PORT), ("grpc", GRPC_PORT, GRPC_PORT))
_SCRAPE = {"prometheus.io/scrape": "true", "prometheus.io/path": METRICS_PATH}


def _pod(
    containers: list[dict[str, Any]], volumes: list[dict[str, Any]], options: RenderOptions
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "containers": containers,
        "volumes": [*volumes, PODINFO],
        "terminationGracePeriodSeconds": 20,
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    }
    if options.default_user_id is not None:
        pod["securityContext"] = {"runAsUser": options.default_user_id}
    return pod


def orchestrator_deployment(
    deployment: Deployment,
    predictor: PredictorSpec,
    pod: PodExtras,
    config: dict[str, str],
    options: RenderOptions,
) -> dict[str, Any]:
    """The orchestrator in its own Deployment, ``<sdep>-<predictor>-svc-orch``; replicas
    from ``svcOrchSpec``, then the predictor, then the spec."""
    name = orchestrator_deployment_name(deployment.metadata.name, predictor)
    labels = {**predictor.labels, "fluentd": "true", **object_labels(deployment, predictor)}
    labels |= {**selector(deployment, name), **pod.labels}
    candidates = (predictor.svc_orch_spec.replicas, predictor.replicas, deployment.spec.replicas)
    replicas = next((value for value in candidates if value is not None), 1)
    annotations = {**config, **pod.annotations, **_SCRAPE}
    spec = _pod(pod.containers, pod.volumes, options)
    return workload(deployment, predictor, name, labels, annotations, spec, {"replicas": replicas})


def router(deployment: Deployment, options: RenderOptions) -> list[dict[str, Any]]:
    """The router's ConfigMap, Service and Deployment."""
    sdep = deployment.metadata.name
    name, entry_name = kube_name(f"{sdep}-router"), kube_name(sdep)
    config, digest = config_map(deployment, router_config(deployment), f"{sdep}-router-graph", None)
    predictors = deployment.spec.predictors
    container = orchestrator_container(
        deployment,
        None,
        options.runtime_image,
        remote_nodes(deployment, predictors, router=True),
        node_protocol(deployment, predictors),
    )
    labels = {**object_labels(deployment), **selector(deployment, name), "seldon-app": entry_name}
    pod = _pod([container], [config_volume(config["metadata"]["name"])], options)
    annotations = {CHECKSUM_ANNOTATION: digest, **_SCRAPE}
    replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    workload_ = workload(deployment, None, name, labels, annotations, pod, {"replicas": replicas})
    entry = service(
        deployment,
        None,
        entry_name,
        {"seldon-app": entry_name},
        ORCHESTRATOR_PORTS,
        labels={"seldon-app": entry_name},
    )
    return [config, entry, workload_]
