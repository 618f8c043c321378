"""A predictor's explainer: its own Deployment and Service, ``<sdep>-<predictor>-explainer``.

infergraph has no explainer runtime of its own, so the explainer runs the image its
``containerSpec`` gives (Seldon's ``alibiexplainer``, typically) with the arguments Seldon's
operator passes it: the graph to explain, the predictor Service to query, the explainer
type and its ``config`` as ``--key=value``. Its ``modelUri`` is fetched like a node's.
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec, Problem, Protocol, Transport
from infergraph.kube.deployments import PODINFO, workload
from infergraph.kube.model_init import MODEL_DIR, model_init
from infergraph.kube.names import kube_name, object_labels, predictor_service_name, selector
from infergraph.kube.orchestrator import GRPC_PORT, HTTP_PORT
from infergraph.kube.services import service

__all__ = ["explainer_objects"]

_PORT = 9000
_PRE_STOP = {"preStop": {"exec": {"command": ["/bin/sh", "-c", "/bin/sleep 10"]}}}


def _probe(delay: int, failures: int) -> dict[str, Any]:
    return {
        "tcpSocket": {"port": "http"},
        "initialDelaySeconds": delay,
        "periodSeconds": 5,
        "failureThreshold": failures,
        "successThreshold": 1,
        "timeoutSeconds": 1,
    }


def explainer_objects(
    deployment: Deployment, predictor: PredictorSpec, path: str, runtime_image: str
) -> tuple[list[Problem], list[dict[str, Any]]]:
    """The explainer's Deployment and Service, or the problems that stop it."""
    explainer = predictor.explainer
    if explainer is None:
        return [], []
    where = f"{path}.explainer"
    if deployment.spec.protocol not in (Protocol.SELDON, Protocol.TENSORFLOW):
        message = "explainers are rendered for the seldon and tensorflow protocols only"
        return [Problem(f"{where}", f"{message}, not {deployment.spec.protocol.value}")], []
    spec = explainer.container_spec
    if spec is None or not spec.image:
        message = (
            "infergraph has no explainer runtime; give explainer.containerSpec an image "
            "(e.g. seldonio/alibiexplainer)"
        )
        return [Problem(f"{where}.containerSpec", message)], []
    sdep = deployment.metadata.name
    name = kube_name(f"{sdep}-{predictor.name}-explainer")
    endpoint = explainer.endpoint
    port = endpoint.service_port if endpoint and endpoint.service_port else _PORT
    grpc = deployment.spec.transport == Transport.GRPC
    host = f"{predictor_service_name(sdep, predictor)}.{deployment.metadata.namespace}"
    args = [
        f"--model_name={predictor.graph.name}",
        f"--predictor_host={host}:{GRPC_PORT if grpc else HTTP_PORT}",
        f"--protocol={deployment.spec.protocol.value}.{'grpc' if grpc else 'http'}",
        f"--http_port={port}",
    ]
    if explainer.model_uri:
        args.append(f"--storage_uri={MODEL_DIR}")
    if explainer.type:
        args.append(explainer.type)
    if explainer.type == "AnchorImages":
        args.append("--tf_data_type=float32")
    args += [f"--{key}={value}" for key, value in sorted(explainer.config.items())]
    written = spec.model_dump(by_alias=True, exclude_none=True)
    container: dict[str, Any] = {k: v for k, v in written.items() if v != []}
    container["name"] = spec.name or "explainer"
    container.setdefault("args", args)
    ports = [p for p in container.get("ports", []) if p.get("name") != "http"]
    container["ports"] = [*ports, {"name": "http", "containerPort": port, "protocol": "TCP"}]
    container.setdefault("livenessProbe", _probe(60, 5))
    container.setdefault("readinessProbe", _probe(20, 7))
    container.setdefault("lifecycle", _PRE_STOP)
    container.setdefault("imagePullPolicy", "IfNotPresent")
    pod: dict[str, Any] = {"containers": [container], "volumes": [PODINFO]}
    fetch = model_init(explainer, container["name"], runtime_image)
    if fetch is not None:
        pod["initContainers"] = [fetch.init_container]
        pod["volumes"] = [*fetch.volumes, PODINFO]
        container["volumeMounts"] = [*container.get("volumeMounts", []), fetch.model_mount]
    if explainer.service_account_name:
        pod["serviceAccountName"] = explainer.service_account_name
    labels = {**predictor.labels, **object_labels(deployment, predictor)}
    labels |= {**selector(deployment, name), "seldon.io/explainer": "true"}
    replicas = explainer.replicas if explainer.replicas is not None else 1
    objects = [
        workload(deployment, predictor, name, labels, {}, pod, {"replicas": replicas}),
        service(
            deployment,
            predictor,
            name,
            selector(deployment, name),
            (("http", port, port),),
            labels={"seldon.io/explainer": "true"},
        ),
    ]
    return [], objects
