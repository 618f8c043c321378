"""The orchestrator: the container that walks a predictor's graph and calls its nodes.

Seldon injects its Go executor (``seldon-container-engine``) into the pod of the graph's root
node, or runs it in its own Deployment with ``seldon.io/engine-separate-pod``. infergraph
runs ``infergraph serve`` there instead, on Seldon's ports (REST 8000, gRPC 5001) and
probes (``/ready``, ``/live``). The graph comes from a ConfigMap holding the predictor as a
one-predictor deployment, with everything that only scales it (traffic, replicas,
autoscalers) left out, so scaling never restarts the orchestrator; its checksum is a pod
annotation, so a graph change does. Every node with a container is named with ``serve
--remote NODE=HOST:PORT``, so the orchestrator only calls it; built-in routers and
combiners run in the orchestrator, as in Seldon's executor.
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec, Transport, walk_graph
from infergraph.kube.containers import PODINFO_MOUNT
from infergraph.kube.manifest import checksum, to_yaml
from infergraph.kube.names import kube_name, node_service_name, object_labels

__all__ = [
    "CHECKSUM_ANNOTATION",
    "CONFIG_DIR",
    "ENGINE_CONTAINER",
    "GRPC_PORT",
    "HTTP_PORT",
    "config_annotations",
    "config_map",
    "engine_annotations",
    "node_protocol",
    "orchestrator_container",
    "remote_nodes",
    "router_config",
    "scaled_out",
]

ENGINE_CONTAINER = "seldon-container-engine"
HTTP_PORT, GRPC_PORT = 8000, 5001
CONFIG_DIR = "/etc/infergraph"
CONFIG_FILE = "deployment.yaml"
CONFIG_VOLUME = "infergraph-graph"
CHECKSUM_ANNOTATION = "infergraph.io/graph-checksum"
NODE_PROTOCOL_ANNOTATION = "infergraph.io/node-protocol"
_SEPARATE = "seldon.io/engine-separate-pod"
_RESOURCES = {"cpu": "500m", "memory": "512Mi"}
_PROBE = {
    "initialDelaySeconds": 20,
    "periodSeconds": 5,
    "failureThreshold": 3,
    "successThreshold": 1,
    "timeoutSeconds": 60,
}


def config_annotations(
    deployment: Deployment, predictor: PredictorSpec | None = None
) -> dict[str, str]:
    """Seldon's configuration annotations: the resource's, then ``spec``'s, then the
    predictor's (the most specific wins)."""
    merged = {**deployment.metadata.annotations, **deployment.spec.annotations}
    if predictor is not None:
        merged |= predictor.annotations
    return merged


def engine_annotations(deployment: Deployment, predictor: PredictorSpec) -> list[dict[str, str]]:
    """``seldon.io/engine-<x>`` annotations as the orchestrator env ``<X>``, as Seldon passes
    them."""
    out = []
    for key, value in sorted(config_annotations(deployment, predictor).items()):
        if key.startswith("seldon.io/engine-") and key != _SEPARATE:
            name = key.removeprefix("seldon.io/engine-").replace("-", "_").upper()
            out.append({"name": name, "value": value})
    return out


def scaled_out(deployment: Deployment, keep: list[PredictorSpec]) -> Deployment:
    """``deployment`` with only the predictors ``keep``, minus what only scales them."""
    out = deployment.model_copy(deep=True)
    out.status = None
    out.spec.replicas = None
    out.spec.predictors = [p.model_copy(deep=True) for p in keep]
    for predictor in out.spec.predictors:
        if len(keep) == 1 and len(deployment.spec.predictors) > 1:
            predictor.traffic, predictor.shadow = 0, False  # alone, it takes all its traffic
        predictor.replicas = None
        predictor.svc_orch_spec.replicas = None
        for component in predictor.component_specs:
            component.replicas = None
            component.hpa_spec = component.keda_spec = component.pdb_spec = None
    return out


def router_config(deployment: Deployment) -> Deployment:
    """The deployment the traffic router serves: every predictor, traffic and shadow kept."""
    return scaled_out(deployment, deployment.spec.predictors)


def config_map(
    deployment: Deployment, served: Deployment, name: str, predictor: PredictorSpec | None
) -> tuple[dict[str, Any], str]:
    """The ConfigMap holding ``served`` as YAML, and the checksum of that YAML."""
    document = served.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    document["apiVersion"], document["kind"] = served.api_version, served.kind
    text = to_yaml([document])
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": kube_name(name),
            "namespace": deployment.metadata.namespace,
            "labels": object_labels(deployment, predictor),
        },
        "data": {CONFIG_FILE: text},
    }
    return config, checksum(text)


def config_volume(config_name: str) -> dict[str, Any]:
    """The pod volume that holds the orchestrator's deployment file."""
    return {"name": CONFIG_VOLUME, "configMap": {"name": config_name}}


def remote_nodes(
    deployment: Deployment, predictors: list[PredictorSpec], router: bool
) -> list[str]:
    """``serve --remote`` values: every node that has a container, at the address defaulting
    gave it (``localhost`` in the orchestrator's pod, else its Service), on the port of
    the hop ``serve`` makes (REST unless ``spec.transport`` is ``grpc``). The router names
    nodes ``predictor/node`` and always reaches them through their Services."""
    out = []
    rest = deployment.spec.transport != Transport.GRPC
    for predictor in predictors:
        containers = {c.name for _, c in predictor.containers()}
        for _, node in walk_graph(predictor.graph, ""):
            if node.name not in containers or node.endpoint is None:
                continue
            port = node.endpoint.http_port if rest else node.endpoint.grpc_port
            host = node.endpoint.service_host
            if router:
                service = node_service_name(deployment.metadata.name, predictor, node.name)
                host = f"{service}.{deployment.metadata.namespace}.svc.cluster.local"
            key = f"{predictor.name}/{node.name}" if router else node.name
            out.append(f"{key}={host}:{port}")
    return out


def node_protocol(deployment: Deployment, predictors: list[PredictorSpec]) -> str:
    """How the orchestrator talks to nodes: annotation ``infergraph.io/node-protocol``,
    else binary V2 when every node runs the infergraph runtime image, else the Seldon
    protocol, which images built on Seldon's Python wrapper also speak."""
    chosen = config_annotations(deployment).get(NODE_PROTOCOL_ANNOTATION)
    if chosen in ("v2", "seldon"):
        return chosen
    nodes = {n.name for p in predictors for _, n in walk_graph(p.graph, "")}
    images = [c.image for p in predictors for _, c in p.containers() if c.name in nodes]
    return "v2" if all(image is None for image in images) else "seldon"


def orchestrator_container(
    deployment: Deployment,
    predictor: PredictorSpec | None,
    image: str,
    remote: list[str],
    protocol: str,
) -> dict[str, Any]:
    """The ``infergraph serve`` container of ``predictor`` (or, with ``predictor`` None, of
    the traffic router in front of all predictors), calling the ``remote`` nodes."""
    env: list[dict[str, Any]] = [
        {"name": "SELDON_DEPLOYMENT_ID", "value": deployment.metadata.name}
    ]
    resources: dict[str, Any] = {"requests": dict(_RESOURCES), "limits": dict(_RESOURCES)}
    if predictor is not None:
        env.append({"name": "PREDICTOR_ID", "value": predictor.name})
        env += engine_annotations(deployment, predictor)
        given = {item["name"] for item in env}
        env += [
            e.model_dump(by_alias=True, exclude_none=True)
            for e in predictor.svc_orch_spec.env
            if e.name not in given
        ]
        if predictor.svc_orch_spec.resources is not None:
            resources = dict(predictor.svc_orch_spec.resources)
    return {
        "name": ENGINE_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "infergraph",
            "serve",
            f"{CONFIG_DIR}/{CONFIG_FILE}",
            "--http-port",
            str(HTTP_PORT),
            "--grpc-port",
            str(GRPC_PORT),
            "--node-protocol",
            protocol,
            *(arg for value in remote for arg in ("--remote", value)),
        ],
        "env": env,
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, **_PROBE},
        "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}, **_PROBE},
        "resources": resources,
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
            dict(PODINFO_MOUNT),
        ],
        "terminationMessagePath": "/dev/termination-log",
    }
