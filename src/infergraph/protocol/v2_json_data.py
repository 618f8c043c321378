"""V2 JSON tensor ``data`` <-> numpy arrays, checked element by element.

JSON is where a V2 request is most often wrong (a miscounted shape, a float sent to an
integer input, 300 sent to UINT8), and numpy would silently coerce or wrap most of those.
This module rejects them with the field and element named, and is the one place that
decides how each datatype looks in JSON (see :mod:`infergraph.protocol.v2_rest`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from infergraph.errors import BadRequest
from infergraph.protocol.v2_binary import element_count, shaped
from infergraph.protocol.v2_types import DATATYPES

__all__ = ["array_from_json", "brief", "json_data", "json_kind"]

_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


def _element_rule(datatype: str) -> tuple[frozenset[type], str]:
    if datatype == "BOOL":
        return frozenset({bool}), "true or false"
    if datatype == "BYTES":
        return frozenset({str}), "strings"
    if DATATYPES[datatype].kind == "f":
        return frozenset({int, float, type(None)}), "numbers"
    return frozenset({int}), "integers"


_ELEMENTS = {datatype: _element_rule(datatype) for datatype in DATATYPES}


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in words for an error message."""
    if value is None:
        return "null"
    return _KINDS.get(type(value), "a number")


def brief(value: Any) -> str:
    """A parsed JSON value as JSON, cut short enough to quote in an error message."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits, which orjson parses but won't write
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major elements of nested lists, without recursion (the nesting is untrusted)."""
    if not any(type(value) is list for value in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def array_from_json(data: Any, datatype: str, shape: list[int], where: str) -> np.ndarray:
    """The array of a tensor's JSON ``data``, nested or flat; ``where`` names the tensor."""
    if not isinstance(data, list):
        raise BadRequest(f"{where}.data must be a list, got {json_kind(data)}")
    flat = _flatten(data)
    count = element_count(shape)
    if len(flat) != count:
        raise BadRequest(f"{where}.shape: {shape} needs {count} values, got {len(flat)}")
    allowed, words = _ELEMENTS[datatype]
    if not {type(value) for value in flat} <= allowed:
        index = next(i for i, value in enumerate(flat) if type(value) not in allowed)
        raise BadRequest(
            f"{where}.data: element {index} is {brief(flat[index])}; {datatype} needs {words}"
        )
    dtype = DATATYPES[datatype]
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = [value.encode("utf-8") for value in flat]
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        for bad in (min(flat, default=0), max(flat, default=0)):
            if not info.min <= bad <= info.max:
                raise BadRequest(
                    f"{where}.data: element {flat.index(bad)} is {bad}, out of range for "
                    f"{datatype} ({info.min} to {info.max})"
                )
        array = np.array(flat, dtype=dtype)
    elif dtype.kind == "f":
        array = _floats(flat, datatype, where)
    else:
        array = np.array(flat, dtype=dtype)
    return shaped(array, shape, where)


def _floats(flat: list[Any], datatype: str, where: str) -> np.ndarray:
    """Floats in ``datatype``; ``null`` is NaN, and a value that would become inf is refused."""
    limit = float(np.finfo(DATATYPES[datatype]).max)
    for index, value in enumerate(flat):
        if type(value) is int and abs(value) > limit:
            raise BadRequest(
                f"{where}.data: element {index} is {brief(value)}, out of range for {datatype}"
            )
    with np.errstate(over="ignore"):
        array = np.array(flat, dtype=DATATYPES[datatype])
    overflow = np.isinf(array)
    if overflow.any():
        index = int(np.argmax(overflow))
        raise BadRequest(
            f"{where}.data: element {index} is {flat[index]}, out of range for {datatype}"
        )
    return array


def json_data(array: np.ndarray, datatype: str, where: str, hint: str) -> Any:
    """A flat JSON-serialisable form of ``array`` (numpy arrays go to orjson as they are).

    BYTES elements become strings and must be UTF-8; ``hint`` says how to send them
    otherwise. Non-BYTES arrays are returned flat for ``orjson.OPT_SERIALIZE_NUMPY``.
    """
    flat = array.reshape(-1)
    if datatype != "BYTES":
        return flat
    values: list[str] = []
    for index, value in enumerate(flat.tolist()):
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, bytes | bytearray | memoryview):
            try:
                values.append(bytes(value).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise BadRequest(
                    f"{where}: BYTES element {index} is not UTF-8, so it cannot be sent as "
                    f"JSON; {hint}"
                ) from exc
        else:
            values.append(str(value))
    return values
