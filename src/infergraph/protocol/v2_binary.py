"""The V2 binary tensor data extension: numpy arrays <-> little-endian bytes.

Triton's ``tritonclient.http`` and ``perf_analyzer`` send and expect binary tensors by
default, so a V2 server that only spoke JSON would not be a drop-in for them. This module
holds the byte layout alone (row-major, little-endian, no padding; BOOL one byte 0/1;
BYTES elements each prefixed by a 4-byte little-endian unsigned length) and the raw binary
request, where the whole body is the one input's tensor. The JSON header around it lives in
:mod:`infergraph.protocol.v2_rest`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from infergraph.errors import BadRequest
from infergraph.protocol.v2_types import DATATYPES, Tensor

__all__ = [
    "INFERENCE_HEADER_CONTENT_LENGTH",
    "element_count",
    "raw_input_tensor",
    "read_binary_tensor",
    "shaped",
    "tensor_from_bytes",
    "tensor_to_bytes",
]

INFERENCE_HEADER_CONTENT_LENGTH = "Inference-Header-Content-Length"
"""The HTTP header giving the JSON header's length when binary tensor data follows it."""

_LENGTH = struct.Struct("<I")


def element_count(shape: Sequence[int]) -> int:
    """The number of elements a shape holds (1 for a scalar's empty shape)."""
    return math.prod(shape)


def shaped(array: np.ndarray, shape: list[int], where: str) -> np.ndarray:
    """``array`` reshaped to ``shape``; a shape numpy cannot address is the client's error.

    An empty tensor may declare dimensions like ``[0, 2**62]`` that pass the element-count
    check yet overflow numpy's size arithmetic.
    """
    try:
        return array.reshape(shape)
    except ValueError as exc:
        raise BadRequest(f"{where}.shape: {shape} is too large") from exc


def _utf8(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def tensor_to_bytes(array: np.ndarray, datatype: str) -> bytes:
    """The binary form of ``array`` as ``datatype``: what follows the JSON header.

    BYTES elements may be ``bytes`` or ``str`` (written as UTF-8); anything else is written
    as its ``str``, as ``tritonclient`` does.
    """
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in array.reshape(-1).tolist():
            encoded = _utf8(value)
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    dtype = DATATYPES[datatype].newbyteorder("<")
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def tensor_from_bytes(
    buffer: bytes | memoryview, datatype: str, shape: list[int], where: str
) -> np.ndarray:
    """Decode one tensor's binary data, which must fill ``buffer`` exactly.

    The array is writable and in native byte order, so user code may change it in place: a
    view of ``buffer`` when that is writable (the HTTP server reads large bodies into a
    ``bytearray``, so a big tensor is not copied again), else a copy. ``where`` names the
    tensor in errors.
    """
    count = element_count(shape)
    size = len(buffer)
    if datatype == "BYTES":
        return shaped(_bytes_elements(memoryview(buffer), count, where), shape, where)
    dtype = DATATYPES[datatype]
    needed = count * dtype.itemsize
    if size != needed:
        raise BadRequest(
            f"{where}: shape {shape} of {datatype} needs {needed} bytes of binary data, got {size}"
        )
    if datatype == "BOOL":
        raw = np.frombuffer(buffer, dtype=np.uint8)
        if raw.size and int(raw.max()) > 1:
            index = int(np.argmax(raw > 1))
            raise BadRequest(
                f"{where}: BOOL byte {index} is {int(raw[index])}; binary BOOL is 0 or 1"
            )
        return shaped(raw.astype(np.bool_), shape, where)
    array = np.frombuffer(buffer, dtype=dtype.newbyteorder("<"))
    if not (array.flags.writeable and array.dtype == dtype):
        array = array.astype(dtype)
    return shaped(array, shape, where)


def read_binary_tensor(
    binary: memoryview | None, offset: int, size: int, datatype: str, shape: list[int], where: str
) -> np.ndarray:
    """The tensor whose ``binary_data_size`` is ``size``, at ``offset`` of the binary data.

    ``binary`` is everything after the JSON header (None when no header length was given).
    """
    field = f"{where}.parameters.binary_data_size"
    if binary is None:
        raise BadRequest(
            f"{field} needs binary data after the JSON header, and the "
            f"{INFERENCE_HEADER_CONTENT_LENGTH} header giving the JSON's length"
        )
    if datatype != "BYTES":
        needed = element_count(shape) * DATATYPES[datatype].itemsize
        if size != needed:
            raise BadRequest(
                f"{field}: shape {shape} of {datatype} needs {needed} bytes, got {size}"
            )
    remaining = len(binary) - offset
    if size > remaining:
        raise BadRequest(
            f"{field}: {size} bytes, but only {remaining} bytes of binary data remain "
            "after the JSON header"
        )
    return tensor_from_bytes(binary[offset : offset + size], datatype, shape, where)


def _bytes_elements(buffer: memoryview, count: int, where: str) -> np.ndarray:
    elements: list[bytes] = []
    offset, size = 0, len(buffer)
    while offset < size:
        if size - offset < _LENGTH.size:
            raise BadRequest(
                f"{where}: BYTES element {len(elements)} has a truncated 4-byte length "
                f"prefix ({size - offset} bytes left)"
            )
        (length,) = _LENGTH.unpack_from(buffer, offset)
        offset += _LENGTH.size
        if length > size - offset:
            raise BadRequest(
                f"{where}: BYTES element {len(elements)} claims {length} bytes but only "
                f"{size - offset} remain in its binary data"
            )
        elements.append(bytes(buffer[offset : offset + length]))
        offset += length
        if len(elements) > count:
            break
    if len(elements) != count:
        got = f"more than {count}" if len(elements) > count else str(len(elements))
        raise BadRequest(f"{where}: shape needs {count} BYTES elements, binary data holds {got}")
    array = np.empty(count, dtype=object)
    array[:] = elements
    return array


def raw_input_tensor(body: bytes, raw_input: tuple[str, str, Sequence[int]]) -> Tensor:
    """The single input of a raw binary request (``Inference-Header-Content-Length: 0``).

    Triton's rules: ``raw_input`` is the model's one input (name, datatype, shape); at most
    one dimension may be variable (-1) and is deduced from the body's size; a BYTES input
    must hold exactly one element, which is the whole body without a length prefix.
    """
    name, datatype, model_shape = raw_input
    where = f"raw binary request for input '{name}'"
    if datatype not in DATATYPES:
        raise BadRequest(f"{where}: datatype '{datatype}' is not a V2 datatype")
    shape = [int(dim) for dim in model_shape]
    if datatype == "BYTES":
        shape = [1 if dim == -1 else dim for dim in shape]
        if element_count(shape) != 1:
            raise BadRequest(f"{where}: a BYTES raw input needs shape [1], the model has {shape}")
        array = np.empty(1, dtype=object)
        array[0] = bytes(body)
        return Tensor(name, datatype, shape, shaped(array, shape, where))
    variable = [axis for axis, dim in enumerate(shape) if dim == -1]
    if len(variable) > 1:
        raise BadRequest(
            f"{where}: shape {shape} has more than one variable dimension, so it cannot be "
            "deduced from the body; send a JSON inference header instead"
        )
    if variable:
        fixed = element_count([dim for dim in shape if dim != -1]) * DATATYPES[datatype].itemsize
        if fixed == 0 or len(body) % fixed:
            raise BadRequest(
                f"{where}: a body of {len(body)} bytes is not a whole number of "
                f"{datatype} rows of shape {shape}"
            )
        shape[variable[0]] = len(body) // fixed
    return Tensor(name, datatype, shape, tensor_from_bytes(body, datatype, shape, where))
