"""Content types: what a user method receives from V2 tensors, and how its result becomes them.

The wire carries typed tensors; user methods want numpy arrays, DataFrames or strings.
Like MLServer's codecs, a ``content_type`` parameter (on the request or on one input)
says how to present the data:

- ``np`` (the default): the tensor as a numpy array of its shape and datatype (BYTES as an
  object array of ``bytes``);
- ``str``: a list of UTF-8 strings, one per element;
- ``base64``: a list of ``bytes``, each element base64-decoded;
- ``datetime``: a list of :class:`datetime.datetime` parsed from ISO 8601 strings;
- ``pd`` (request level): a pandas DataFrame with one column per input.

A request with one input hands the method that input; several inputs arrive as a
``{name: value}`` dict (or a DataFrame with ``pd``). On the way back, an array becomes one
output tensor, a dict one tensor per key, a DataFrame one tensor per column, and strings
become BYTES tensors marked ``content_type: str`` so that clients decode them the same way.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any

import numpy as np

from infergraph.errors import BadRequest, InferGraphError
from infergraph.protocol.v2_types import InferenceRequest, InferenceResponse, Tensor, v2_datatype

__all__ = ["CONTENT_TYPES", "decode_inputs", "decode_tensor", "encode_result", "tensor_from"]

CONTENT_TYPES = ("np", "str", "base64", "datetime", "pd")
DEFAULT_OUTPUT = "output-0"


# ---------------------------------------------------------------- decode (wire -> user)


def _content_type(parameters: dict[str, Any], where: str) -> str | None:
    value = parameters.get("content_type")
    if value is None:
        return None
    if value not in CONTENT_TYPES:
        raise BadRequest(
            f"{where}parameters.content_type {value!r} is not one of {', '.join(CONTENT_TYPES)}"
        )
    return str(value)


def _strings(tensor: Tensor, where: str) -> list[str]:
    if tensor.datatype != "BYTES":
        raise BadRequest(
            f"{where} has content_type str but datatype {tensor.datatype}; strings travel as BYTES"
        )
    try:
        return [_as_bytes(item).decode("utf-8") for item in tensor.data.ravel()]
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"{where} has content_type str but holds bytes that are not UTF-8 ({exc.reason} at "
            f"byte {exc.start}); send them as base64 or without a content_type"
        ) from None


def _as_bytes(item: Any) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode("utf-8")


def decode_tensor(tensor: Tensor, default: str | None = None, where: str = "") -> Any:
    """One input as its content type presents it (``default`` when the input names none)."""
    at = where or f"input '{tensor.name}'"
    ctype = _content_type(tensor.parameters, f"{at} ") or default
    if ctype is None or ctype == "np" or ctype == "pd":
        return tensor.data
    strings = _strings(tensor, at)
    if ctype == "str":
        return strings
    if ctype == "base64":
        try:
            return [base64.b64decode(item, validate=True) for item in strings]
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"{at} has content_type base64 but is not base64: {exc}") from None
    try:
        return [datetime.datetime.fromisoformat(item) for item in strings]
    except ValueError as exc:
        raise BadRequest(f"{at} has content_type datetime but {exc}") from None


def _dataframe(request: InferenceRequest) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise BadRequest("content_type pd needs pandas on the server: pip install pandas") from None
    columns: dict[str, Any] = {}
    for tensor in request.inputs:
        value = decode_tensor(tensor)
        if isinstance(value, np.ndarray):
            value = value.reshape(len(value), -1)[:, 0] if value.ndim > 1 else value
            if value.dtype == object:
                value = list(value)
        columns[tensor.name] = value
    try:
        return pd.DataFrame(columns)
    except ValueError as exc:
        raise BadRequest(f"content_type pd: the inputs do not form a table: {exc}") from None


def decode_inputs(request: InferenceRequest) -> Any:
    """The request as a user method receives it (see the module docstring)."""
    ctype = _content_type(request.parameters, "")
    if ctype == "pd":
        return _dataframe(request)
    inputs = request.inputs
    if len(inputs) == 1:
        return decode_tensor(inputs[0], ctype)
    return {tensor.name: decode_tensor(tensor, ctype) for tensor in inputs}


# ---------------------------------------------------------------- encode (user -> wire)


class BadResult(InferGraphError):
    """A user method returned something that is not a tensor (the server's fault: 500)."""


def _string_tensor(name: str, items: list[Any], shape: list[int]) -> Tensor:
    data = np.empty(len(items), dtype=object)
    data[:] = [item.encode("utf-8") for item in items]
    return Tensor(name, "BYTES", shape, data.reshape(shape), {"content_type": "str"})


def tensor_from(name: str, value: Any) -> Tensor:
    """One output tensor named ``name`` from an array, list, scalar, string or bytes."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, str):
        return _string_tensor(name, [value], [1])
    if isinstance(value, bytes | bytearray):
        data = np.empty(1, dtype=object)
        data[0] = bytes(value)
        return Tensor(name, "BYTES", [1], data)
    if isinstance(value, datetime.datetime):
        return _string_tensor(name, [value.isoformat()], [1])
    array = value if isinstance(value, np.ndarray) else _to_array(name, value)
    if array.dtype.kind in "OUS":
        flat = array.ravel()
        shape = list(array.shape)
        if flat.size and all(isinstance(item, str | np.str_) for item in flat):
            return _string_tensor(name, [str(item) for item in flat], shape)
        if flat.size == 0 or all(isinstance(item, bytes | np.bytes_) for item in flat):
            data = np.empty(flat.size, dtype=object)
            data[:] = [bytes(item) for item in flat]
            return Tensor(name, "BYTES", shape, data.reshape(shape))
        if all(isinstance(item, datetime.datetime) for item in flat):
            return _string_tensor(name, [item.isoformat() for item in flat], shape)
        raise BadResult(
            f"output '{name}' mixes {sorted({type(i).__name__ for i in flat})}; "
            "a tensor holds numbers, strings or bytes"
        )
    try:
        datatype = v2_datatype(array)
    except ValueError as exc:
        raise BadResult(f"output '{name}': {exc}") from None
    return Tensor(name, datatype, list(array.shape), array)


def _to_array(name: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged lists
        raise BadResult(f"output '{name}' is not a rectangular array: {exc}") from None
    if array.dtype == object and array.ndim == 0:
        raise BadResult(f"output '{name}' is a {type(value).__name__}, not a tensor")
    return array


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def encode_result(
    value: Any, output_name: str = DEFAULT_OUTPUT
) -> tuple[list[Tensor], dict[str, Any]]:
    """A user method's result as output tensors and response parameters."""
    if isinstance(value, InferenceResponse):
        return value.outputs, dict(value.parameters)
    if isinstance(value, Tensor):
        return [value], {}
    if isinstance(value, list) and value and all(isinstance(v, Tensor) for v in value):
        return list(value), {}
    if _is_dataframe(value):
        tensors = []
        for column in value.columns:
            tensor = tensor_from(str(column), value[column].to_numpy())
            tensors.append(tensor)
        return tensors, {"content_type": "pd"}
    if isinstance(value, dict):
        return [tensor_from(str(key), item) for key, item in value.items()], {}
    return [tensor_from(output_name, value)], {}
