"""Autoscalers and disruption budgets of a componentSpec's Deployment.

Each is named after the Deployment it targets, as in Seldon. ``hpaSpec`` always becomes an
``autoscaling/v2`` HorizontalPodAutoscaler: ``metricsv2`` as written, else the legacy
``autoscaling/v2beta1`` ``metrics`` converted (v2beta1 was removed in Kubernetes 1.25).
``kedaSpec`` becomes a KEDA ScaledObject and, as in Seldon, wins over ``hpaSpec``: KEDA
creates its own HPA, and two autoscalers must never own one Deployment.
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec, SeldonPodSpec
from infergraph.kube.names import object_labels, selector

__all__ = ["autoscaler", "convert_v2beta1_metric", "disruption_budget"]


def autoscaler(
    deployment: Deployment, predictor: PredictorSpec, component: SeldonPodSpec, name: str
) -> dict[str, Any] | None:
    """The ScaledObject (``kedaSpec``) or HPA (``hpaSpec``) of one Deployment, if any."""
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    metadata = {
        "name": name,
        "namespace": deployment.metadata.namespace,
        "labels": object_labels(deployment, predictor),
    }
    if component.keda_spec is not None:
        keda = component.keda_spec.model_dump(by_alias=True, exclude_none=True)
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": metadata,
            "spec": {"scaleTargetRef": target, **keda},
        }
    hpa = component.hpa_spec
    if hpa is None:
        return None
    spec: dict[str, Any] = {"scaleTargetRef": target, "maxReplicas": hpa.max_replicas}
    if hpa.min_replicas is not None:
        spec["minReplicas"] = hpa.min_replicas
    if hpa.metricsv2:
        spec["metrics"] = [dict(metric) for metric in hpa.metricsv2]
    elif hpa.metrics:
        spec["metrics"] = [convert_v2beta1_metric(metric) for metric in hpa.metrics]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": spec,
    }


def disruption_budget(
    deployment: Deployment, predictor: PredictorSpec, component: SeldonPodSpec, name: str
) -> dict[str, Any] | None:
    """The PodDisruptionBudget of one Deployment (``pdbSpec``), selecting only its pods
    (Seldon's selects every pod of the deployment, which undercounts disruptions)."""
    pdb = component.pdb_spec
    if pdb is None:
        return None
    spec: dict[str, Any] = {"selector": {"matchLabels": selector(deployment, name)}}
    if pdb.min_available is not None:
        spec["minAvailable"] = pdb.min_available
    if pdb.max_unavailable is not None:
        spec["maxUnavailable"] = pdb.max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": name,
            "namespace": deployment.metadata.namespace,
            "labels": object_labels(deployment, predictor),
        },
        "spec": spec,
    }


def _target(
    source: dict[str, Any], utilization: str | None, average: str, value: str | None
) -> dict[str, Any]:
    """A v2 ``MetricTarget`` from v2beta1's ``target*`` fields."""
    if utilization is not None and source.get(utilization) is not None:
        return {"type": "Utilization", "averageUtilization": source[utilization]}
    if source.get(average) is not None:
        return {"type": "AverageValue", "averageValue": source[average]}
    if value is not None and source.get(value) is not None:
        return {"type": "Value", "value": source[value]}
    return {}


def _metric_id(name: Any, metric_selector: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if metric_selector is not None:
        out["selector"] = metric_selector
    return out


def convert_v2beta1_metric(metric: dict[str, Any]) -> dict[str, Any]:
    """One ``autoscaling/v2beta1`` MetricSpec as ``autoscaling/v2``; a metric already in
    the v2 shape (it has ``target`` or ``metric``) is returned unchanged."""
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        old = metric.get(key, {})
        if "target" in old:
            return dict(metric)
        new: dict[str, Any] = {"name": old.get("name")}
        if kind == "ContainerResource":
            new["container"] = old.get("container")
        new["target"] = _target(old, "targetAverageUtilization", "targetAverageValue", None)
        return {"type": kind, key: new}
    if kind == "Pods":
        old = metric.get("pods", {})
        if "metric" in old:
            return dict(metric)
        return {
            "type": "Pods",
            "pods": {
                "metric": _metric_id(old.get("metricName"), old.get("selector")),
                "target": _target(old, None, "targetAverageValue", None),
            },
        }
    if kind == "Object":
        old = metric.get("object", {})
        if "metric" in old:
            return dict(metric)
        target = _target(old, None, "averageValue", "targetValue")
        return {
            "type": "Object",
            "object": {
                "describedObject": old.get("target"),
                "metric": _metric_id(old.get("metricName"), old.get("selector")),
                "target": target,
            },
        }
    if kind == "External":
        old = metric.get("external", {})
        if "metric" in old:
            return dict(metric)
        return {
            "type": "External",
            "external": {
                "metric": _metric_id(old.get("metricName"), old.get("metricSelector")),
                "target": _target(old, None, "targetAverageValue", "targetValue"),
            },
        }
    return dict(metric)
