"""The metrics one component exports, with Seldon's names and labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infergraph.observability.metrics import (
    EXECUTOR_BUCKETS,
    TIMER_BUCKETS,
    Histogram,
    Labels,
    Registry,
    label_name,
    metric_name,
)

__all__ = ["REQUESTS_METRIC", "ComponentMetrics", "seldon_labels"]

REQUESTS_METRIC = "seldon_api_executor_server_requests_seconds"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"


def seldon_labels(
    *,
    deployment_name: str = "",
    model_name: str = "",
    image: str = "",
    predictor_name: str = "",
    predictor_version: str = "",
    worker_id: str = "",
) -> dict[str, str]:
    """The default labels Seldon puts on every custom metric (unknown -> NOT_IMPLEMENTED)."""
    image_name, _, image_version = image.rpartition(":") if ":" in image else (image, "", "")
    values = {
        "deployment_name": deployment_name,
        "model_name": model_name,
        "model_image": image_name,
        "model_version": image_version,
        "predictor_name": predictor_name,
        "predictor_version": predictor_version,
        "seldon_deployment_name": deployment_name,
        "image_name": image_name,
        "image_version": image_version,
        "worker_id": worker_id,
    }
    return {k: v or NOT_IMPLEMENTED for k, v in values.items()}


class ComponentMetrics:
    """Records custom metrics, feedback rewards and per-request latency."""

    def __init__(
        self,
        registry: Registry,
        labels: Mapping[str, str],
        *,
        feedback_metrics: bool = True,
    ) -> None:
        self.registry = registry
        self.labels = dict(labels)
        self.feedback_metrics = feedback_metrics
        self._base: Labels = tuple(sorted(self.labels.items()))
        base = {
            k: self.labels[k] if self.labels[k] != NOT_IMPLEMENTED else ""
            for k in ("deployment_name", "predictor_name", "predictor_version", "model_name")
        }
        if not base["model_name"]:  # (Prometheus reads an empty label as no label)
            del base["model_name"]
        # ``model_name`` tells a node's series from its orchestrator's, which has none: a
        # dashboard's ``model_name=""`` keeps to the orchestrator's
        self._request_base: Labels = tuple(base.items())
        self._requests: dict[tuple[str, str, str], Histogram] = {}

    def _custom_labels(self, method: str, tags: Mapping[str, Any] | None) -> Labels:
        merged = dict(self._base)
        merged["method"] = method
        if tags:
            merged.update({label_name(str(k)): str(v) for k, v in tags.items()})
        return tuple(sorted(merged.items()))

    def custom(self, metrics: list[dict[str, Any]], method: str) -> None:
        """COUNTER adds, GAUGE sets, TIMER (milliseconds) feeds a histogram in seconds."""
        for metric in metrics:
            name = metric_name(str(metric["key"]))
            labels = self._custom_labels(method, metric.get("tags"))
            value = float(metric["value"])
            kind = metric["type"]
            if kind == "COUNTER":
                self.registry.inc(name, labels, value, "Custom counter metric")
            elif kind == "GAUGE":
                self.registry.set(name, labels, value, "Custom gauge metric")
            else:
                self.registry.observe(
                    name, labels, value / 1000.0, TIMER_BUCKETS, "Custom timer metric (seconds)"
                )

    def feedback(self, reward: float) -> None:
        """Seldon's built-in feedback counters, for every non-zero reward."""
        if not self.feedback_metrics or not reward:
            return
        labels = self._custom_labels("feedback", None)
        self.registry.inc("seldon_api_model_feedback", labels, 1.0, "Feedback requests")
        self.registry.inc("seldon_api_model_feedback_reward", labels, reward, "Sum of rewards")

    def request(self, service: str, method: str, code: str, seconds: float) -> None:
        """One served request: ``service`` is the endpoint, ``method`` the HTTP verb or unary."""
        key = (service, method, code)
        hist = self._requests.get(key)
        if hist is None:
            labels = (*self._request_base, ("service", service), ("method", method), ("code", code))
            hist = self._requests[key] = self.registry.histogram(
                REQUESTS_METRIC, labels, EXECUTOR_BUCKETS, "Requests served, by endpoint"
            )
        hist.observe(seconds)
