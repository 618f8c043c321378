"""The internal message every protocol decodes into and encodes from."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infergraph.errors import BadRequest
from infergraph.protocol.v2_content import decode_inputs

__all__ = ["DataKind", "Feedback", "Message", "Meta", "Status", "is_numeric"]


class DataKind(enum.Enum):
    """Which member of a SeldonMessage carries the payload."""

    NDARRAY = "ndarray"
    TENSOR = "tensor"
    TFTENSOR = "tftensor"
    STR = "strData"
    BIN = "binData"
    JSON = "jsonData"
    CUSTOM = "customData"
    V2 = "v2"
    """Open Inference Protocol tensors: ``data`` is an ``InferenceRequest`` whose inputs
    are the payload (a node's outputs become the next node's inputs)."""
    NONE = "none"

    @property
    def is_data(self) -> bool:
        """True for the kinds that travel in ``data`` (names + array)."""
        return self in _DATA_KINDS


_DATA_KINDS = frozenset({DataKind.NDARRAY, DataKind.TENSOR, DataKind.TFTENSOR})


@dataclass(slots=True)
class Meta:
    """Seldon's ``meta``: puid, tags, routing, requestPath and custom metrics."""

    puid: str = ""
    tags: dict[str, Any] = field(default_factory=dict)
    routing: dict[str, int] = field(default_factory=dict)
    request_path: dict[str, str] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def copy(self) -> Meta:
        return Meta(
            self.puid,
            dict(self.tags),
            dict(self.routing),
            dict(self.request_path),
            list(self.metrics),
        )

    def is_empty(self) -> bool:
        return not (self.puid or self.tags or self.routing or self.request_path or self.metrics)


@dataclass(slots=True)
class Status:
    """Seldon's ``status`` block. ``flag`` is 0 (SUCCESS) or 1 (FAILURE)."""

    code: int = 0
    info: str = ""
    reason: str = ""
    flag: int = 0


@dataclass(slots=True)
class Message:
    """One SeldonMessage, independent of its wire format.

    ``data`` holds a numpy array or a list for the data kinds, ``str`` for strData,
    ``bytes`` for binData, any JSON value for jsonData and a protobuf ``Any`` for
    customData. ``raw`` keeps the wire object the message was decoded from (a JSON
    dict or a protobuf message) when a component's ``*_raw`` method returned it, so
    it is sent back verbatim as Seldon does.
    """

    kind: DataKind = DataKind.NONE
    data: Any = None
    names: list[str] = field(default_factory=list)
    meta: Meta = field(default_factory=Meta)
    status: Status | None = None
    raw: Any = None

    def array(self) -> Any:
        """The payload as the user method receives it (ndarray for data kinds)."""
        if self.kind.is_data and isinstance(self.data, list):  # a node's answer, passed on
            try:
                return np.array(self.data)
            except ValueError as exc:
                raise BadRequest(
                    f"data.{self.kind.value} is not an array (rows of different lengths, or "
                    f"nested too deeply): {exc}"
                ) from None
        if self.kind is DataKind.V2:
            return decode_inputs(self.data)
        if self.kind is DataKind.NONE and self.data is None:
            return np.array([])
        return self.data


@dataclass(slots=True)
class Feedback:
    """Seldon's Feedback: the request, the response it got, a reward and the truth."""

    request: Message | None = None
    response: Message | None = None
    reward: float = 0.0
    truth: Message | None = None
    raw: Any = None


def is_numeric(value: Any) -> bool:
    """Seldon's test for "numeric" results, which decides the output data kind."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iufc"
    if isinstance(value, list):
        try:
            return np.asarray(value).dtype.kind in "iufc"
        except ValueError:
            return False
    return False
