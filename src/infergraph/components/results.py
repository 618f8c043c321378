"""Turn what a user method returned into a response :class:`Message`, as Seldon does."""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.errors import BadMetric, BadRequest
from infergraph.protocol.message import DataKind, Message, Meta, is_numeric
from infergraph.protocol.v2_content import encode_result
from infergraph.protocol.v2_types import InferenceRequest

__all__ = ["output_kind", "to_message", "unwrap", "validate_metrics"]

_METRIC_TYPES = frozenset({"COUNTER", "GAUGE", "TIMER"})


def unwrap(result: Any) -> tuple[Any, dict[str, Any] | None, list[dict[str, Any]] | None]:
    """Split a ``SeldonResponse`` (ours or seldon_core's) into data, tags and metrics."""
    if type(result).__name__ == "SeldonResponse" and hasattr(result, "data"):
        return result.data, getattr(result, "tags", None), getattr(result, "metrics", None)
    return result, None, None


def output_kind(request: Message | None, data: Any) -> DataKind:
    """Seldon's rule: numeric results mirror the request's data kind, else ndarray."""
    if not is_numeric(data):
        return DataKind.NDARRAY
    if request is not None and request.kind.is_data:
        return request.kind
    return DataKind.TENSOR


def _columns(data: Any) -> int | None:
    """The number of columns of a 2-D+ result, or None for 0-D and 1-D results.

    An array without values has no columns to name: its shape is the client's to choose
    (``[0, 2147483647]`` costs a request a few bytes), and naming each would not end.
    """
    if isinstance(data, np.ndarray):
        return (data.shape[1] if data.size else 0) if data.ndim > 1 else None
    if isinstance(data, list) and data and isinstance(data[0], list | tuple | np.ndarray):
        return len(data[0])
    return None


def to_message(
    data: Any,
    request: Message | None,
    meta: Meta,
    class_names: Any,
    method: str,
    output_name: str = "output-0",
) -> Message:
    """Wrap a user's return value; ``class_names(n)`` names the columns of 2-D+ output.

    Answers to V2 requests stay V2: the value becomes output tensors (the only or
    unnamed one called ``output_name``), which feed the next node as its inputs.
    """
    if request is not None and request.kind is DataKind.V2:
        tensors, parameters = encode_result(data, output_name)
        payload = InferenceRequest(tensors, parameters=parameters)
        return Message(DataKind.V2, payload, [t.name for t in tensors], meta)
    if isinstance(data, dict):
        return Message(DataKind.JSON, data, [], meta)
    if isinstance(data, bytes | bytearray):
        return Message(DataKind.BIN, bytes(data), [], meta)
    if isinstance(data, str):
        return Message(DataKind.STR, data, [], meta)
    if isinstance(data, np.ndarray | list):
        columns = _columns(data)
        names = class_names(columns) if columns is not None else []
        return Message(output_kind(request, data), data, names, meta)
    if type(data).__name__ == "Any" and hasattr(data, "type_url"):
        return Message(DataKind.CUSTOM, data, [], meta)
    raise BadRequest(
        f"Unknown data type returned as payload (must be list or np array) from {method}: "
        f"got {type(data).__name__}",
        reason="MICROSERVICE_BAD_DATA",
        status_code=400,
    )


def validate_metrics(metrics: Any, source: str) -> list[dict[str, Any]]:
    """Check custom metrics the way Seldon does; a bad one fails the request with 500."""
    if metrics is None:
        return []
    if not isinstance(metrics, list):
        raise BadMetric(f"Bad metric created during request: {source} must return a list")
    for metric in metrics:
        if not isinstance(metric, dict) or not {"key", "type", "value"} <= metric.keys():
            raise BadMetric(
                f"Bad metric created during request: {metric!r} from {source} "
                "needs key, type and value"
            )
        if metric["type"] not in _METRIC_TYPES:
            raise BadMetric(
                f"Bad metric created during request: {metric['key']!r} has type "
                f"{metric['type']!r}; valid are COUNTER, GAUGE, TIMER"
            )
        value = metric["value"]
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise BadMetric(
                f"Bad metric created during request: {metric['key']!r} value {value!r} "
                "is not a number"
            )
        tags = metric.get("tags")
        if tags is not None and not isinstance(tags, dict):
            raise BadMetric(f"Bad metric created during request: {metric['key']!r} tags")
    return metrics
