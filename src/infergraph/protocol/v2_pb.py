"""Open Inference Protocol gRPC messages (``inference``) <-> the V2 request and response types.

A tensor travels either in typed ``contents`` fields or as raw little-endian bytes
(``raw_input_contents`` / ``raw_output_contents``, BYTES elements length-prefixed).
``tritonclient.grpc`` always sends raw and reads numeric outputs only from raw, so a
response goes raw whenever its request did; FP16 has no typed field and always goes raw.
Every malformed message raises :class:`BadRequest` naming the tensor at fault, because
the client is the only one who can fix it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from infergraph.errors import BadRequest
from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.v2_binary import tensor_from_bytes
from infergraph.protocol.v2_types import (
    DATATYPES,
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    Tensor,
)

__all__ = [
    "decode_parameter",
    "decode_parameters",
    "decode_raw",
    "decode_request",
    "decode_response",
    "encode_parameter",
    "encode_parameters",
    "encode_raw",
    "encode_request",
    "encode_response",
    "pb",
]

_TYPED_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""Datatype -> its ``InferTensorContents`` field; a datatype missing here travels only raw."""

_FIELD_DTYPE: dict[str, np.dtype[Any]] = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}
"""The numpy dtype of each numeric field's wire values, before narrowing to the datatype."""

_PARAMETER_KINDS = ("bool_param", "int64_param", "string_param", "double_param", "uint64_param")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1
_LENGTH = struct.Struct("<I")


# -- parameters ---------------------------------------------------------------------------


def decode_parameter(param: pb.InferParameter, where: str) -> Any:
    """An ``InferParameter`` as the Python value it holds: bool, int, str or float."""
    kind = param.WhichOneof("parameter_choice")
    if kind is None:
        raise BadRequest(f"{where} holds no value: set one of {', '.join(_PARAMETER_KINDS)}")
    return getattr(param, kind)


def decode_parameters(params: Mapping[str, pb.InferParameter], where: str) -> dict[str, Any]:
    """A protobuf ``map<string, InferParameter>`` as a plain dict."""
    if not params:
        return {}
    return {key: decode_parameter(value, f"{where} '{key}'") for key, value in params.items()}


def encode_parameter(value: Any, out: pb.InferParameter, where: str) -> None:
    """Set ``out`` from a Python value; ints past int64 go to ``uint64_param``."""
    if isinstance(value, bool | np.bool_):
        out.bool_param = bool(value)
    elif isinstance(value, int | np.integer):
        number = int(value)
        if _INT64[0] <= number <= _INT64[1]:
            out.int64_param = number
        elif 0 <= number <= _UINT64_MAX:
            out.uint64_param = number
        else:
            raise BadRequest(f"{where}: {number} fits neither int64 nor uint64")
    elif isinstance(value, float | np.floating):
        out.double_param = float(value)
    elif isinstance(value, str):
        out.string_param = value
    else:
        raise BadRequest(
            f"{where}: a {type(value).__name__} cannot be sent; "
            "parameters are bool, int, float or str"
        )


def encode_parameters(
    params: Mapping[str, Any], out: MutableMapping[str, pb.InferParameter], where: str
) -> None:
    """Fill a protobuf parameters map from a plain dict."""
    for key, value in params.items():
        encode_parameter(value, out[key], f"{where} '{key}'")


# -- raw tensor bytes ---------------------------------------------------------------------


SMALL_TENSOR = 64
"""Typed contents of at most this many values are read element by element."""


def _count(shape: Sequence[int], where: str) -> int:
    for dim in shape:
        if dim < 0:
            raise BadRequest(f"{where}: shape {list(shape)} has a negative dimension")
    return math.prod(shape)


def _reshape(flat: np.ndarray, shape: list[int], where: str) -> np.ndarray:
    try:
        return flat.reshape(shape)
    except ValueError as exc:  # a zero-element shape with a dimension numpy cannot index
        raise BadRequest(f"{where}: shape {shape} cannot be represented: {exc}") from exc


def decode_raw(datatype: str, shape: list[int], raw: bytes, where: str) -> np.ndarray:
    """Raw tensor bytes -> an array of ``shape``: the REST binary extension's layout
    (row-major, little-endian, BYTES length-prefixed), so one codec reads both."""
    if datatype not in DATATYPES:
        raise BadRequest(_unknown_datatype(datatype, where))
    _count(shape, where)
    return tensor_from_bytes(raw, datatype, shape, where)


def _bytes_element(value: Any, index: int, where: str) -> bytes:
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise BadRequest(f"{where}: BYTES element {index} is a {type(value).__name__}, not bytes")


def _bytes_elements(array: np.ndarray, where: str) -> list[bytes]:
    return [_bytes_element(v, i, where) for i, v in enumerate(array.ravel().tolist())]


def encode_raw(tensor: Tensor, where: str) -> bytes:
    """A tensor as raw bytes: row-major, little-endian, each BYTES element length-prefixed."""
    array = _checked_array(tensor, where)
    if tensor.datatype == "BYTES":
        parts: list[bytes] = []
        for element in _bytes_elements(array, where):
            if len(element) > 0xFFFFFFFF:
                raise BadRequest(f"{where}: a BYTES element is larger than 4 GiB")
            parts.append(_LENGTH.pack(len(element)))
            parts.append(element)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


# -- tensors ------------------------------------------------------------------------------


def _unknown_datatype(datatype: str, where: str) -> str:
    known = ", ".join(DATATYPES)
    return f"{where}: unknown datatype {datatype!r}; use one of {known}"


def _checked_array(tensor: Tensor, where: str) -> np.ndarray:
    """``tensor.data`` in its declared datatype, checked against its declared shape."""
    dtype = DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise BadRequest(_unknown_datatype(tensor.datatype, where))
    data = tensor.data
    if tensor.datatype == "BYTES":
        if not isinstance(data, np.ndarray):
            array = np.empty(len(data), dtype=object)  # np.array would strip trailing NULs
            array[:] = list(data)
        else:
            array = data
    else:
        try:
            array = np.asarray(data).astype(dtype, casting="same_kind", copy=False)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"{where}: data cannot be held as {tensor.datatype}: {exc}") from exc
    count = _count(tensor.shape, where)
    if array.size != count:
        raise BadRequest(
            f"{where}: data has {array.size} elements but shape {list(tensor.shape)} needs {count}"
        )
    return array


def _decode_typed(
    datatype: str, shape: list[int], contents: pb.InferTensorContents, where: str
) -> np.ndarray:
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise BadRequest(_unknown_datatype(datatype, where))
    count = _count(shape, where)
    field = _TYPED_FIELD.get(datatype)
    for descriptor, _ in contents.ListFields():
        if descriptor.name != field:
            if field is None:
                raise BadRequest(
                    f"{where}: {datatype} has no typed contents field; send it as raw contents"
                )
            raise BadRequest(f"{where}: {datatype} data goes in {field}, not {descriptor.name}")
    if field is None:
        if count:
            raise BadRequest(
                f"{where}: {datatype} has no typed contents field; send it as raw contents"
            )
        return _reshape(np.empty(0, dtype=dtype), shape, where)
    values = getattr(contents, field)
    if len(values) != count:
        raise BadRequest(
            f"{where}: {len(values)} values in contents.{field} do not fill shape {shape} "
            f"({count} elements)"
        )
    if datatype == "BYTES":
        flat = np.empty(count, dtype=object)
        flat[:] = list(values)
        return _reshape(flat, shape, where)
    # np.array reads a long repeated field through its buffer, but spends over a
    # microsecond finding that out; fromiter is quicker for a few values
    wire_dtype = _FIELD_DTYPE[field]
    if count <= SMALL_TENSOR:
        wire = np.fromiter(values, wire_dtype, count)
    else:
        wire = np.array(values, dtype=wire_dtype)
    if wire.dtype != dtype:  # INT8, INT16, UINT8, UINT16 ride in 32-bit fields
        info = np.iinfo(dtype)
        if wire.size and (wire.min() < info.min or wire.max() > info.max):
            raise BadRequest(
                f"{where}: contents.{field} holds values outside the {datatype} range "
                f"[{info.min}, {info.max}]"
            )
        wire = wire.astype(dtype)
    return _reshape(wire, shape, where)


def _encode_typed(tensor: Tensor, contents: pb.InferTensorContents, where: str) -> None:
    array = _checked_array(tensor, where)
    field = _TYPED_FIELD[tensor.datatype]
    if tensor.datatype == "BYTES":
        contents.bytes_contents.extend(_bytes_elements(array, where))
    else:
        getattr(contents, field).extend(array.ravel().tolist())


def _must_go_raw(tensors: Sequence[Tensor]) -> bool:
    """Whether some tensor has no typed field (FP16).

    Then every tensor of the message goes raw, since raw contents are positional: one
    entry per tensor, so typed and raw tensors cannot be mixed.
    """
    return any(t.datatype not in _TYPED_FIELD for t in tensors)


def _decode_tensors(
    tensors: Sequence[Any], raw_contents: Sequence[bytes], raw_field: str, noun: str
) -> list[Tensor]:
    """Shared by requests (inputs) and responses (outputs): the two have the same layout."""
    if raw_contents and len(raw_contents) != len(tensors):
        raise BadRequest(
            f"{raw_field} has {len(raw_contents)} entries for {len(tensors)} {noun}s; "
            f"send one per {noun}, in the order of the {noun}s"
        )
    seen: set[str] = set()
    decoded: list[Tensor] = []
    for index, tensor in enumerate(tensors):
        where = f"{noun} '{tensor.name}'" if tensor.name else f"{noun} {index}"
        if tensor.name in seen:
            raise BadRequest(f"{where}: the name appears twice")
        seen.add(tensor.name)
        shape = list(tensor.shape)
        if raw_contents:
            if tensor.HasField("contents"):
                raise BadRequest(
                    f"contents field must not be specified when using {raw_field} "
                    f"for '{tensor.name}'"
                )
            data = decode_raw(tensor.datatype, shape, raw_contents[index], where)
        else:
            data = _decode_typed(tensor.datatype, shape, tensor.contents, where)
        parameters = decode_parameters(tensor.parameters, f"{where} parameter")
        decoded.append(Tensor(tensor.name, tensor.datatype, shape, data, parameters))
    return decoded


def _encode_tensors(
    tensors: Sequence[Tensor], out: Any, raw_out: Any, raw: bool, noun: str
) -> None:
    raw = raw or _must_go_raw(tensors)
    for tensor in tensors:
        where = f"{noun} '{tensor.name}'"
        entry = out.add(name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape))
        encode_parameters(tensor.parameters, entry.parameters, f"{where} parameter")
        if raw:
            raw_out.append(encode_raw(tensor, where))
        else:
            _encode_typed(tensor, entry.contents, where)


# -- requests and responses ---------------------------------------------------------------


def decode_request(proto: pb.ModelInferRequest) -> InferenceRequest:
    """A ``ModelInferRequest`` as an :class:`InferenceRequest`; no requested outputs -> None."""
    inputs = _decode_tensors(proto.inputs, proto.raw_input_contents, "raw_input_contents", "input")
    outputs = [
        RequestedOutput(o.name, decode_parameters(o.parameters, f"output '{o.name}' parameter"))
        for o in proto.outputs
    ]
    return InferenceRequest(
        inputs=inputs,
        id=proto.id or None,
        parameters=decode_parameters(proto.parameters, "request parameter"),
        outputs=outputs or None,
        model_name=proto.model_name,
        model_version=proto.model_version,
    )


def _requested(outputs: list[Tensor], names: list[str]) -> list[Tensor]:
    if not names:
        return outputs
    by_name = {o.name: o for o in outputs}
    missing = [n for n in names if n not in by_name]
    if missing:
        produced = ", ".join(repr(o.name) for o in outputs) or "none"
        raise BadRequest(
            f"output {missing[0]!r} was requested but the model has no output of that name "
            f"(it produced {produced})"
        )
    return [by_name[n] for n in names]


def encode_response(
    response: InferenceResponse, request: pb.ModelInferRequest
) -> pb.ModelInferResponse:
    """A ``ModelInferResponse`` answering ``request``.

    Only the outputs the request named are returned, in its order; the request's id is
    echoed when the response sets none; outputs go raw when the request's inputs did.
    """
    out = pb.ModelInferResponse(
        model_name=response.model_name or request.model_name,
        model_version=response.model_version or "",
        id=response.id if response.id is not None else request.id,
    )
    encode_parameters(response.parameters, out.parameters, "response parameter")
    outputs = _requested(response.outputs, [o.name for o in request.outputs])
    _encode_tensors(
        outputs, out.outputs, out.raw_output_contents, bool(request.raw_input_contents), "output"
    )
    return out


def encode_request(request: InferenceRequest, raw: bool) -> pb.ModelInferRequest:
    """A ``ModelInferRequest`` for a V2 server: inputs raw (as tritonclient sends) or typed."""
    out = pb.ModelInferRequest(
        model_name=request.model_name,
        model_version=request.model_version,
        id=request.id or "",
    )
    encode_parameters(request.parameters, out.parameters, "request parameter")
    _encode_tensors(request.inputs, out.inputs, out.raw_input_contents, raw, "input")
    for requested in request.outputs or ():
        entry = out.outputs.add(name=requested.name)
        encode_parameters(
            requested.parameters, entry.parameters, f"output '{requested.name}' parameter"
        )
    return out


def decode_response(proto: pb.ModelInferResponse) -> InferenceResponse:
    """A ``ModelInferResponse`` from a V2 server as an :class:`InferenceResponse`."""
    outputs = _decode_tensors(
        proto.outputs, proto.raw_output_contents, "raw_output_contents", "output"
    )
    return InferenceResponse(
        model_name=proto.model_name,
        outputs=outputs,
        model_version=proto.model_version or None,
        id=proto.id or None,
        parameters=decode_parameters(proto.parameters, "response parameter"),
    )
