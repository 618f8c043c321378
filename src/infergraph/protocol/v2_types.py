"""The Open Inference Protocol (V2) request and response, independent of their wire form.

REST JSON, REST with the binary tensor extension, and gRPC (``inference``) all decode into
these and encode from them. Tensors hold numpy arrays in their declared datatype (BYTES as
an object array of ``bytes``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DATATYPES",
    "InferenceRequest",
    "InferenceResponse",
    "RequestedOutput",
    "Tensor",
    "numpy_dtype",
    "v2_datatype",
]

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
"""V2 datatype -> numpy dtype (BYTES: an object array of ``bytes``)."""

_BY_KIND = {dt.str: name for name, dt in DATATYPES.items() if name != "BYTES"}


def numpy_dtype(datatype: str) -> np.dtype[Any] | None:
    return DATATYPES.get(datatype)


def v2_datatype(array: np.ndarray) -> str:
    """The V2 datatype of a numpy array (strings and bytes are BYTES)."""
    if array.dtype.kind in "OSU":
        return "BYTES"
    name = _BY_KIND.get(array.dtype.newbyteorder("=").str) or _BY_KIND.get(array.dtype.str)
    if name is None:
        raise ValueError(f"numpy dtype {array.dtype} has no V2 datatype")
    return name


@dataclass(slots=True)
class Tensor:
    """A named tensor: ``data`` is a numpy array of ``shape`` in ``datatype``."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferenceRequest:
    inputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None
    model_name: str = ""
    model_version: str = ""


@dataclass(slots=True)
class InferenceResponse:
    model_name: str
    outputs: list[Tensor]
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
