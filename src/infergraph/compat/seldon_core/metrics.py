"""``seldon_core.metrics``: the metric type names and helpers that model code uses.

Custom metrics are plain dicts in both projects, so the helpers are infergraph's
(:mod:`infergraph.sdk`). Seldon's ``SeldonMetrics`` collector is not provided: in
infergraph the served component records the metrics a method returns, into the
registry its process owns.
"""

from __future__ import annotations

from typing import Any

from infergraph.sdk import create_counter, create_gauge, create_timer

__all__ = [
    "AGGREGATE_METRIC_METHOD_TAG",
    "COUNTER",
    "FEEDBACK_KEY",
    "FEEDBACK_METRIC_METHOD_TAG",
    "FEEDBACK_REWARD_KEY",
    "GAUGE",
    "HEALTH_METRIC_METHOD_TAG",
    "INPUT_TRANSFORM_METRIC_METHOD_TAG",
    "OUTPUT_TRANSFORM_METRIC_METHOD_TAG",
    "PREDICT_METRIC_METHOD_TAG",
    "ROUTER_METRIC_METHOD_TAG",
    "TIMER",
    "create_counter",
    "create_gauge",
    "create_timer",
    "validate_metrics",
]

COUNTER = "COUNTER"
GAUGE = "GAUGE"
TIMER = "TIMER"

FEEDBACK_KEY = "seldon_api_model_feedback"
FEEDBACK_REWARD_KEY = "seldon_api_model_feedback_reward"

# the ``method`` label infergraph puts on each custom metric, as Seldon names it
FEEDBACK_METRIC_METHOD_TAG = "feedback"
PREDICT_METRIC_METHOD_TAG = "predict"
INPUT_TRANSFORM_METRIC_METHOD_TAG = "inputtransform"
OUTPUT_TRANSFORM_METRIC_METHOD_TAG = "outputtransform"
ROUTER_METRIC_METHOD_TAG = "router"
AGGREGATE_METRIC_METHOD_TAG = "aggregate"
HEALTH_METRIC_METHOD_TAG = "health"


def validate_metrics(metrics: Any) -> bool:
    """Whether ``metrics`` is a list of metric dicts with a key, a known type and a value
    that adds to a number: Seldon's own test, which model code may call before returning.

    infergraph checks the metrics a component returns by itself (stricter: a bool is no
    number there) and fails the request with 500 ``MICROSERVICE_BAD_METRIC``.
    """
    if not isinstance(metrics, list):
        return False
    for metric in metrics:
        if not isinstance(metric, dict) or not {"key", "value", "type"} <= metric.keys():
            return False
        if metric["type"] not in (COUNTER, GAUGE, TIMER):
            return False
        try:
            metric["value"] + 1
        except TypeError:
            return False
    return True
