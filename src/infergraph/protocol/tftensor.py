"""TensorFlow ``TensorProto`` <-> numpy, without TensorFlow.

Seldon's ``tftensor`` data kind carries a TensorProto, as protobuf over gRPC and as
its proto-JSON form over REST. Both are converted here with numpy alone.
"""

from __future__ import annotations

import base64
import math
import warnings
from typing import Any

import numpy as np

from infergraph.errors import BadRequest
from infergraph.protocol.v2_json_data import brief, json_kind

__all__ = ["array_to_tf_json", "array_to_tf_proto", "tf_json_to_array", "tf_proto_to_array"]

# DT_* number -> (numpy dtype, name of the typed repeated field in the proto)
_DTYPES: dict[int, tuple[str, str]] = {
    1: ("float32", "float_val"),
    2: ("float64", "double_val"),
    3: ("int32", "int_val"),
    4: ("uint8", "int_val"),
    5: ("int16", "int_val"),
    6: ("int8", "int_val"),
    7: ("object", "string_val"),
    8: ("complex64", "scomplex_val"),
    9: ("int64", "int64_val"),
    10: ("bool", "bool_val"),
    17: ("uint16", "int_val"),
    18: ("complex128", "dcomplex_val"),
    19: ("float16", "half_val"),
    22: ("uint32", "uint32_val"),
    23: ("uint64", "uint64_val"),
}
_NAMES = {
    1: "DT_FLOAT",
    2: "DT_DOUBLE",
    3: "DT_INT32",
    4: "DT_UINT8",
    5: "DT_INT16",
    6: "DT_INT8",
    7: "DT_STRING",
    8: "DT_COMPLEX64",
    9: "DT_INT64",
    10: "DT_BOOL",
    17: "DT_UINT16",
    18: "DT_COMPLEX128",
    19: "DT_HALF",
    22: "DT_UINT32",
    23: "DT_UINT64",
}
_BY_NAME = {name: number for number, name in _NAMES.items()}
_BY_NUMPY = {np.dtype(dt).str: number for number, (dt, _) in _DTYPES.items() if dt != "object"}
_MAX_FILL = 1 << 24
"""Most elements one value may be broadcast to; a bigger fill is refused, not allocated."""
_MAX_EMPTY = 1 << 20
"""Most an empty tensor's non-zero dimensions may multiply to: ``[2**40, 0]`` holds no values
but, answered as an ndarray (strings, booleans), is 2**40 empty lists."""


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def _dtype_number(array: np.ndarray) -> int:
    if array.dtype.kind in "USO":
        return 7
    number = _BY_NUMPY.get(array.dtype.newbyteorder("<").str) or _BY_NUMPY.get(array.dtype.str)
    if number is None:
        raise BadRequest(f"arrays of dtype {array.dtype} cannot be sent as a tftensor")
    return number


def _from_values(number: int, shape: list[int], values: Any, content: bytes, where: str) -> Any:
    dtype_name, _ = _DTYPES[number]
    dtype = np.dtype(dtype_name)
    negative = next((i for i, n in enumerate(shape) if n < 0), None)
    if negative is not None:
        raise BadRequest(
            f"{where}.tensorShape.dim[{negative}].size is {shape[negative]}; a tensor's "
            "dimensions are non-negative integers"
        )
    size = math.prod(shape)
    if size == 0 and math.prod(n for n in shape if n) > _MAX_EMPTY:
        raise BadRequest(
            f"{where}: shape {shape} holds no values, but its other dimensions multiply past "
            f"{_MAX_EMPTY:,}; an empty tensor this large is refused"
        )
    if number == 7:
        flat = np.array(
            [v if isinstance(v, bytes) else base64.b64decode(v) for v in values], dtype=object
        )
    elif content:  # copied: user code may write to its input, as with tf.make_ndarray
        flat = np.frombuffer(content, dtype=dtype.newbyteorder("<")).copy()
    elif number == 19:
        flat = _exact(values, np.dtype(np.uint16)).view(np.float16)
    elif number in (8, 18):
        pairs = np.asarray(values, dtype=np.float64)
        with np.errstate(over="raise"):
            try:
                flat = (pairs[0::2] + 1j * pairs[1::2]).astype(dtype)
            except FloatingPointError:
                raise OverflowError(f"a value is out of range for {dtype}") from None
    else:
        flat = _exact(values, dtype)
    if flat.size == size:
        return flat.reshape(shape)
    if flat.size == 1:  # TensorFlow lets one value fill the whole shape
        if size > _MAX_FILL:
            raise BadRequest(f"{where}: filling the shape {shape} from one value is too large")
        return np.full(shape, flat[0], dtype=dtype)
    raise BadRequest(f"{where}: {flat.size} values do not fill the shape {shape}")


def _exact(values: Any, dtype: np.dtype) -> np.ndarray:
    """``values`` as ``dtype``; an integer out of its range is an ``OverflowError``, as numpy 2
    raises, where numpy 1.x only warns and wraps it around. So is a float past the range of
    ``float32`` (protobuf's JSON parser refuses it too), which numpy would make infinite."""
    if dtype.kind not in "iu":
        with np.errstate(over="raise"):
            try:
                return np.asarray(values, dtype=dtype)
            except FloatingPointError:
                raise OverflowError(f"a value is out of range for {dtype}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            return np.asarray(values, dtype=dtype)
        except DeprecationWarning as exc:
            raise OverflowError(str(exc).split(".")[0]) from None


def tf_json_to_array(obj: Any, where: str = "data.tftensor") -> Any:
    """Decode the proto-JSON form of a TensorProto (what ``MessageToDict`` writes)."""
    if not isinstance(obj, dict):
        raise BadRequest(f"{where} must be a TensorProto JSON object")
    dtype = obj.get("dtype", "DT_INVALID")
    number = _BY_NAME.get(dtype) if isinstance(dtype, str) else dtype
    if not isinstance(number, int) or isinstance(number, bool) or number not in _DTYPES:
        raise BadRequest(f"{where}.dtype: unsupported TensorFlow dtype {dtype!r}")
    try:
        dims = (obj.get("tensorShape") or obj.get("tensor_shape") or {}).get("dim", [])
        shape = [int(d.get("size", 0)) for d in dims]
        content = base64.b64decode(obj.get("tensorContent") or obj.get("tensor_content") or "")
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"{where}: malformed tensorShape or tensorContent: {exc}") from exc
    field = _DTYPES[number][1]
    values = obj.get(_camel(field), obj.get(field, []))
    if not isinstance(values, list):
        raise BadRequest(
            f"{where}.{_camel(field)} must be a list of {_NAMES[number]} values, got "
            f"{json_kind(values)} ({brief(values)})"
        )
    try:
        return _from_values(number, shape, values, content, where)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"{where}: values do not match dtype {_NAMES[number]}: {exc}") from exc


def array_to_tf_json(array: np.ndarray) -> dict[str, Any]:
    """Encode like ``MessageToDict(tf.make_tensor_proto(array))``."""
    number = _dtype_number(array)
    dims = [{"size": str(n)} if n else {} for n in array.shape]  # proto3 JSON omits defaults
    out: dict[str, Any] = {"dtype": _NAMES[number], "tensorShape": {"dim": dims} if dims else {}}
    if number == 7:
        strings = [
            base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode()
            for v in array.ravel()
        ]
        if strings:
            out["stringVal"] = strings
    else:
        le = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        if le.size:
            out["tensorContent"] = base64.b64encode(le.tobytes()).decode()
    return out


def tf_proto_to_array(proto: Any, where: str = "data.tftensor") -> Any:
    """Decode a ``tensorflow.TensorProto`` protobuf message."""
    number = proto.dtype
    if number not in _DTYPES:
        raise BadRequest(f"{where}.dtype: unsupported TensorFlow dtype {number}")
    shape = [d.size for d in proto.tensor_shape.dim]
    values = getattr(proto, _DTYPES[number][1])
    try:
        return _from_values(number, shape, list(values), proto.tensor_content, where)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"{where}: values do not match dtype {_NAMES[number]}: {exc}") from exc


def array_to_tf_proto(array: np.ndarray, proto: Any) -> None:
    """Fill a ``tensorflow.TensorProto`` protobuf message from ``array``."""
    number = _dtype_number(array)
    proto.dtype = number
    proto.tensor_shape.SetInParent()  # a scalar still has a (empty) shape, as TensorFlow writes
    for n in array.shape:
        proto.tensor_shape.dim.add(size=int(n))
    if number == 7:
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel()
        )
    else:
        le = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        proto.tensor_content = le.tobytes()
