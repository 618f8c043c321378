"""Traffic split and shadow by the cluster's ingress: Istio or the Gateway API.

By default (``--ingress none``) infergraph's own router splits traffic and mirrors to the
shadow, which works on any cluster. With a mesh or a gateway the same weights can be left
to it: an Istio VirtualService plus a DestinationRule per predictor (Seldon's
``ISTIO_ENABLED`` output: the ``/seldon/<ns>/<sdep>/`` prefix rewritten to ``/``, a gRPC
route matched on the ``seldon`` and ``namespace`` headers, the shadow as ``mirror``), or a
Gateway API HTTPRoute (weighted ``backendRefs``, the shadow as a ``RequestMirror`` filter).
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec
from infergraph.kube.names import object_labels, predictor_service_name
from infergraph.kube.options import RenderOptions
from infergraph.kube.orchestrator import GRPC_PORT, HTTP_PORT, config_annotations

__all__ = ["gateway_api_objects", "istio_objects", "weights"]

_GRPC_PATHS = ".*tensorflow.*|.*seldon.protos.*|.*inference.*"
_RETRY_ON = "gateway-error,connect-failure,refused-stream"


def weights(deployment: Deployment) -> list[tuple[PredictorSpec, int]]:
    """The serving (non-shadow) predictors with their traffic share; a lone one gets 100."""
    serving = [p for p in deployment.spec.predictors if not p.shadow]
    if len(serving) == 1:
        return [(serving[0], 100)]
    return [(p, p.traffic) for p in serving]


def shadow(deployment: Deployment) -> PredictorSpec | None:
    """The shadow predictor, if any (validation allows at most one)."""
    return next((p for p in deployment.spec.predictors if p.shadow), None)


def _host(deployment: Deployment, predictor: PredictorSpec) -> str:
    name = predictor_service_name(deployment.metadata.name, predictor)
    return f"{name}.{deployment.metadata.namespace}.svc.cluster.local"


def _prefix(deployment: Deployment) -> str:
    return f"/seldon/{deployment.metadata.namespace}/{deployment.metadata.name}/"


def _metadata(
    deployment: Deployment, name: str, predictor: PredictorSpec | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": deployment.metadata.namespace,
        "labels": object_labels(deployment, predictor),
    }


def istio_objects(deployment: Deployment, options: RenderOptions) -> list[dict[str, Any]]:
    """The VirtualService of the deployment and a DestinationRule per predictor."""
    config = config_annotations(deployment)
    sdep, namespace = deployment.metadata.name, deployment.metadata.namespace
    hosts = [h.strip() for h in config.get("seldon.io/istio-host", "*").split(",") if h.strip()]
    gateway = config.get("seldon.io/istio-gateway", options.istio_gateway)
    mirror = shadow(deployment)

    def route(port: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "route": [
                {
                    "destination": {
                        "host": _host(deployment, p),
                        "subset": p.name,
                        "port": {"number": port},
                    },
                    "weight": weight,
                }
                for p, weight in weights(deployment)
            ]
        }
        if mirror is not None:
            out["mirror"] = {
                "host": _host(deployment, mirror),
                "subset": mirror.name,
                "port": {"number": port},
            }
            if mirror.traffic > 0:
                out["mirrorPercentage"] = {"value": float(mirror.traffic)}
        if "seldon.io/istio-retries" in config:
            retries: dict[str, Any] = {
                "attempts": int(config["seldon.io/istio-retries"]),
                "retryOn": _RETRY_ON,
            }
            if "seldon.io/istio-retries-timeout" in config:
                retries["perTryTimeout"] = f"{config['seldon.io/istio-retries-timeout']}s"
            out["retries"] = retries
        return out

    rest = {
        "match": [{"uri": {"prefix": _prefix(deployment)}}],
        "rewrite": {"uri": "/"},
        **route(HTTP_PORT),
    }
    grpc = {
        "match": [
            {
                "uri": {"regex": _GRPC_PATHS},
                "headers": {"seldon": {"exact": sdep}, "namespace": {"exact": namespace}},
            }
        ],
        **route(GRPC_PORT),
    }
    virtual_service = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": _metadata(deployment, sdep),
        "spec": {"hosts": hosts, "gateways": [gateway], "http": [rest, grpc]},
    }
    rules = [
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": _metadata(deployment, predictor_service_name(sdep, p), p),
            "spec": {
                "host": _host(deployment, p),
                "subsets": [
                    {"name": p.name, "labels": {"version": p.labels.get("version", p.name)}}
                ],
                "trafficPolicy": {"connectionPool": {"http": {"idleTimeout": "60s"}}},
            },
        }
        for p in deployment.spec.predictors
    ]
    return [virtual_service, *rules]


def gateway_api_objects(deployment: Deployment, options: RenderOptions) -> list[dict[str, Any]]:
    """One HTTPRoute: the gateway prefix rewritten to ``/``, weighted predictor Services,
    and the shadow as a ``RequestMirror`` filter (``percent`` is standard since v1.3)."""
    config = config_annotations(deployment)
    gateway = config.get("infergraph.io/gateway", options.gateway)
    namespace, _, name = gateway.rpartition("/")
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name}
    if namespace:
        parent["namespace"] = namespace
    sdep = deployment.metadata.name
    filters: list[dict[str, Any]] = [
        {
            "type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
        }
    ]
    mirror = shadow(deployment)
    if mirror is not None:
        request_mirror: dict[str, Any] = {
            "backendRef": {"name": predictor_service_name(sdep, mirror), "port": HTTP_PORT}
        }
        if mirror.traffic > 0:
            request_mirror["percent"] = mirror.traffic
        filters.append({"type": "RequestMirror", "requestMirror": request_mirror})
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": _prefix(deployment).rstrip("/")}}],
        "filters": filters,
        "backendRefs": [
            {"name": predictor_service_name(sdep, p), "port": HTTP_PORT, "weight": weight}
            for p, weight in weights(deployment)
        ],
    }
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": _metadata(deployment, sdep),
            "spec": {"parentRefs": [parent], "rules": [rule]},
        }
    ]
