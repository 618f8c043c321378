"""``google.protobuf.ListValue`` (Seldon's protobuf ``ndarray``) to and from Python, fast.

protobuf's own routes cost microseconds an element: ``ListValue.extend`` builds a ``Value``
message per number in Python, and ``json_format.MessageToDict`` walks descriptors for each.
A numeric array has a fixed wire form, though: every number is a ``Value`` of 9 bytes
(tag ``0x11`` and a little-endian double) inside a 2-byte element header, and every row the
same header around the same number of them. So a numeric numpy array is written as those
bytes with numpy and parsed by protobuf's C code, and a ``ListValue`` whose bytes have that
form is read back with one ``np.frombuffer``: 30 to 50 times faster for a 100x30 array.
Anything else (strings, mixed rows, structs) takes the element-by-element way, which reads
``Value`` fields directly rather than through ``MessageToDict`` (and, unlike it, keeps NaN
and infinities, which the binary wire carries).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.errors import InferGraphError

__all__ = ["array_from_list_value", "fill_list_value", "list_value_to_python", "value_to_python"]

FAST_FROM = 64
"""Arrays of this many numbers or more take the wire-form route (numpy's fixed costs
outweigh it below)."""

_LEAF = np.dtype([("tag", "u1"), ("size", "u1"), ("kind", "u1"), ("number", "<f8")])
"""One number as a ListValue element: field 1 (``values``), length 9, ``number_value``."""
_LEAF_HEAD = (0x0A, 0x09, 0x11)


def value_to_python(value: Any) -> Any:
    """A ``google.protobuf.Value`` as the Python value it holds."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "list_value":
        return [value_to_python(v) for v in value.list_value.values]
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: value_to_python(v) for k, v in value.struct_value.fields.items()}
    return None


def list_value_to_python(values: Any) -> list[Any]:
    return [value_to_python(v) for v in values.values]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _wrap_head(width: int) -> bytes:
    """The bytes before a ``width``-byte ListValue that make it an element of the list one
    level up: a ``values`` entry holding a ``Value`` whose ``list_value`` it is."""
    value = b"\x32" + _varint(width)
    return b"\x0a" + _varint(len(value) + width) + value


def _array_bytes(array: np.ndarray) -> bytes:
    leaves = np.empty(array.size, _LEAF)
    leaves["tag"], leaves["size"], leaves["kind"] = _LEAF_HEAD
    leaves["number"] = array.ravel()
    level = leaves.view(np.uint8).reshape(*array.shape[:-1], array.shape[-1] * _LEAF.itemsize)
    for _ in range(array.ndim - 1):  # wrap the innermost lists, one level at a time
        head = np.frombuffer(_wrap_head(level.shape[-1]), np.uint8)
        wrapped = np.empty((*level.shape[:-1], head.size + level.shape[-1]), np.uint8)
        wrapped[..., : head.size] = head
        wrapped[..., head.size :] = level
        level = wrapped.reshape(*wrapped.shape[:-2], -1)
    return level.tobytes()


def fill_list_value(out: Any, data: Any) -> None:
    """Put ``data`` (an array, a list or a scalar) into the empty ListValue ``out``."""
    if (
        isinstance(data, np.ndarray)
        and data.ndim >= 1
        and data.size >= FAST_FROM
        and data.dtype.kind in "iuf"
    ):
        out.MergeFromString(_array_bytes(data))
        return
    values = data.tolist() if isinstance(data, np.ndarray) else data
    values = values if isinstance(values, list) else [values]
    try:
        out.extend(values)
    except ValueError:  # protobuf's "Unexpected type", naming neither the type nor where
        raise InferGraphError(
            f"an ndarray answer holds {_foreign(values)}, which a protobuf ListValue cannot "
            "carry (nor could Seldon's): return numbers, strings, booleans, lists and dicts "
            "(text as str; bytes as binData)"
        ) from None


def _foreign(values: list[Any]) -> str:
    """The first element of nested ``values`` that a ``Value`` cannot hold, in words."""
    stack: list[Any] = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, list | tuple):
            stack.extend(reversed(value))
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif not isinstance(value, str | int | float | type(None)):
            return f"a {type(value).__name__} ({value!r:.40})"
    return "a value of an unknown type"


def _numbers(raw: bytes, count: int) -> np.ndarray | None:
    if len(raw) != count * _LEAF.itemsize:
        return None
    leaves = np.frombuffer(raw, _LEAF)
    if not (
        (leaves["tag"] == 0x0A).all()
        and (leaves["size"] == 9).all()
        and (leaves["kind"] == 0x11).all()
    ):
        return None
    return leaves["number"].astype(np.float64)


def _matrix(raw: bytes) -> np.ndarray | None:
    """A ListValue of equal rows of numbers, as a 2-D array, if ``raw`` has that form."""
    if len(raw) < 4 or raw[0] != 0x0A:
        return None
    # the first row's header tells the width; every row must repeat it byte for byte
    value_at, value_size = _read_varint(raw, 1)
    if value_at >= len(raw) or raw[value_at] != 0x32:
        return None
    leaves_at, width = _read_varint(raw, value_at + 1)
    row_size = value_at + value_size
    if width % _LEAF.itemsize or row_size - leaves_at != width or len(raw) % row_size:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(-1, row_size)
    if not (rows[:, :leaves_at] == rows[0, :leaves_at]).all():
        return None
    cols = width // _LEAF.itemsize
    numbers = _numbers(rows[:, leaves_at:].tobytes(), rows.shape[0] * cols)
    return None if numbers is None else numbers.reshape(rows.shape[0], cols)


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    """(the position after, the value) of the varint at ``pos``."""
    value = shift = 0
    while pos < len(raw):
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return pos, value
        shift += 7
    return pos, -1


def array_from_list_value(values: Any) -> np.ndarray:
    """A ListValue as an array: straight from its bytes when it is a vector or a matrix of
    numbers, element by element otherwise (raises ValueError for ragged rows)."""
    if values.ByteSize() >= FAST_FROM * _LEAF.itemsize:
        raw = values.SerializeToString()
        first = values.values[0].WhichOneof("kind")
        fast = _numbers(raw, len(values.values)) if first == "number_value" else _matrix(raw)
        if fast is not None:
            return fast
    return np.array(list_value_to_python(values))
