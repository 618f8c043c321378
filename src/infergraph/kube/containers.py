"""A node's container as Seldon's operator rewrites it: ports, env, probes, model mount.

The user's container is kept field for field; only what Seldon adds is added, and only when
the user did not set it already (a declared port, env variable or probe wins). The model
code therefore sees the same ``PREDICTIVE_UNIT_*``/``PREDICTOR_*`` environment it gets under
Seldon, and a prepackaged server with no image gets the infergraph runtime image running
``infergraph microservice`` with the server class and ``model_uri=/mnt/models``.
"""

from __future__ import annotations

from typing import Any

import orjson

from infergraph.graph.spec import (
    Container,
    Deployment,
    PredictiveUnit,
    PredictorSpec,
    Problem,
    Transport,
    is_prepackaged,
)
from infergraph.kube.model_init import MODEL_DIR, ModelInit
from infergraph.servers import interface_name, prepackaged_class

__all__ = ["PODINFO_MOUNT", "PODINFO_VOLUME", "node_container"]

PODINFO_VOLUME = "seldon-podinfo"
PODINFO_MOUNT = {"name": PODINFO_VOLUME, "mountPath": "/etc/podinfo"}
METRICS_PATH = "/prometheus"
_PROBE_TIMING = {
    "periodSeconds": 5,
    "failureThreshold": 3,
    "successThreshold": 1,
    "timeoutSeconds": 1,
}


def node_container(
    deployment: Deployment,
    predictor: PredictorSpec,
    node: PredictiveUnit,
    container: Container,
    model: ModelInit | None,
    runtime_image: str,
    path: str,
) -> tuple[dict[str, Any], list[Problem]]:
    """The rendered container of ``node``, and the problems that stop it from running."""
    out: dict[str, Any] = container.model_dump(by_alias=True, exclude_none=True)
    out = {key: value for key, value in out.items() if value != [] or key == "name"}
    problems: list[Problem] = []
    params = [{"name": p.name, "value": p.value, "type": str(p.type)} for p in node.parameters]
    implementation = node.implementation or ""
    runs_infergraph = False  # the runtime image: it answers /ready only once load() is done
    if is_prepackaged(implementation) and not container.image:
        server = prepackaged_class(implementation)
        if server is None:
            problems.append(
                Problem(
                    f"{path}.implementation",
                    f"infergraph has no runtime for {implementation}; give node "
                    f"'{node.name}' a container named '{node.name}' with the server's image",
                )
            )
        else:
            out["image"] = runtime_image
            runs_infergraph = True
            out["command"] = ["infergraph", "microservice", interface_name(server)]
            out["env"] = [
                {"name": "MODEL_NAME", "value": interface_name(server)},
                *out.get("env", []),
            ]
            params.append({"name": "model_uri", "value": MODEL_DIR, "type": "STRING"})
    assert node.endpoint is not None  # filled in by defaulting
    http, grpc = node.endpoint.http_port, node.endpoint.grpc_port
    ports = out.setdefault("ports", [])
    names = {port.get("name") for port in ports}
    for name, number in (("http", http), ("grpc", grpc)):
        if name not in names:
            ports.append({"name": name, "containerPort": number, "protocol": "TCP"})
    metrics = next((p["containerPort"] for p in ports if p.get("name") == "metrics"), None)
    grpc_hop = deployment.spec.transport == Transport.GRPC or node.endpoint.service_port == grpc
    env = {
        "PREDICTIVE_UNIT_SERVICE_PORT": str(grpc if grpc_hop else http),
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http),
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc),
        "MLSERVER_HTTP_PORT": str(http),
        "MLSERVER_GRPC_PORT": str(grpc),
    }
    if params:
        env["PREDICTIVE_UNIT_PARAMETERS"] = orjson.dumps(params).decode()
    if node.model_uri:
        env["MLSERVER_MODEL_URI"] = MODEL_DIR
    env |= {
        "PREDICTIVE_UNIT_ID": container.name,
        "MLSERVER_MODEL_NAME": container.name,
        "PREDICTIVE_UNIT_IMAGE": out.get("image", ""),
        "PREDICTOR_ID": predictor.name,
        "PREDICTOR_LABELS": orjson.dumps(predictor.labels, option=orjson.OPT_SORT_KEYS).decode(),
        "SELDON_DEPLOYMENT_ID": deployment.metadata.name,
        "SELDON_EXECUTOR_ENABLED": "true",
    }
    if metrics is not None:
        env |= {
            "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(metrics),
            "PREDICTIVE_UNIT_METRICS_ENDPOINT": METRICS_PATH,
            "MLSERVER_METRICS_PORT": str(metrics),
            "MLSERVER_METRICS_ENDPOINT": METRICS_PATH,
        }
    given = {item["name"] for item in out.get("env", [])}
    out["env"] = [
        *out.get("env", []),
        *({"name": k, "value": v} for k, v in env.items() if k not in given),
    ]
    probe_port = "grpc" if grpc_hop else "http"
    if "livenessProbe" not in out:
        out["livenessProbe"] = {
            "tcpSocket": {"port": probe_port},
            "initialDelaySeconds": 60,
            **_PROBE_TIMING,
        }
    if "readinessProbe" not in out and runs_infergraph:
        # infergraph listens while load() runs, so an open port does not mean ready; /ready
        # does. Other images keep Seldon's TCP probe: they may serve no /ready at all.
        out["readinessProbe"] = {
            "httpGet": {"path": "/ready", "port": "http"},
            "initialDelaySeconds": 5,
            **_PROBE_TIMING,
        }
    elif "readinessProbe" not in out:
        out["readinessProbe"] = {
            "tcpSocket": {"port": probe_port},
            "initialDelaySeconds": 20,
            **_PROBE_TIMING,
        }
    out.setdefault(
        "lifecycle", {"preStop": {"exec": {"command": ["/bin/sh", "-c", "/bin/sleep 10"]}}}
    )
    mounts = [
        m for m in out.get("volumeMounts", []) if m.get("mountPath") != PODINFO_MOUNT["mountPath"]
    ]
    mounts.append(dict(PODINFO_MOUNT))
    if model is not None:
        mounts.append(dict(model.model_mount))
    out["volumeMounts"] = mounts
    out.setdefault("imagePullPolicy", "IfNotPresent")
    out.setdefault("terminationMessagePath", "/dev/termination-log")
    return out, problems


def plain_container(container: Container) -> dict[str, Any]:
    """A container that implements no node (a sidecar): kept exactly as written."""
    out: dict[str, Any] = container.model_dump(by_alias=True, exclude_none=True)
    out = {key: value for key, value in out.items() if value != [] or key == "name"}
    return out
