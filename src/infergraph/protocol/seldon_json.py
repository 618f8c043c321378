"""Seldon protocol JSON <-> :class:`Message`.

Reproduces the Python wrapper's JSON exactly: ``ndarray`` keeps integers as
integers, ``tensor`` is ``{"shape", "values"}``, ``tftensor`` is TensorProto JSON,
``binData`` is base64, and empty meta fields are omitted.
"""

from __future__ import annotations

import base64
import binascii
import difflib
from typing import Any

import numpy as np
import orjson

from infergraph.errors import BadRequest
from infergraph.protocol.message import DataKind, Feedback, Message, Meta, Status
from infergraph.protocol.tftensor import array_to_tf_json, tf_json_to_array
from infergraph.protocol.v2_message import as_seldon

__all__ = [
    "DATA_FIELDS",
    "FEEDBACK_FIELDS",
    "MESSAGE_FIELDS",
    "decode_aggregate",
    "decode_feedback",
    "decode_message",
    "dumps",
    "encode_feedback",
    "encode_message",
    "error_body",
    "loads",
]

_METRIC_TYPES = ("COUNTER", "GAUGE", "TIMER")

MESSAGE_FIELDS = ("meta", "data", "binData", "strData", "jsonData", "status")
"""The fields of a SeldonMessage over REST (``customData`` is gRPC only)."""
DATA_FIELDS = ("names", "ndarray", "tensor", "tftensor")
"""The fields of a SeldonMessage's ``data``: names beside one data kind."""
FEEDBACK_FIELDS = ("request", "response", "reward", "truth")
"""The fields of a Seldon Feedback."""
_MESSAGE_KNOWN = frozenset(MESSAGE_FIELDS)
_DATA_KNOWN = frozenset(DATA_FIELDS)
_FEEDBACK_KNOWN = frozenset(FEEDBACK_FIELDS)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    if isinstance(obj, set | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Serialize to JSON bytes; numpy arrays and scalars are written natively."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def loads(body: bytes | str) -> Any:
    """Parse JSON, turning any syntax error into a 400 that says where it is."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON: {exc}") from exc


def error_body(message: str, reason: str = "MICROSERVICE_BAD_DATA") -> dict[str, Any]:
    """Seldon's error JSON, as the Python wrapper writes it."""
    return {"status": {"status": 1, "info": message, "code": -1, "reason": reason}}


# ---------------------------------------------------------------- decoding


def _to_array(value: Any, where: str) -> np.ndarray:
    try:
        array = np.array(value)
    except ValueError as exc:
        if "maximum" in str(exc):  # numpy's limit: 32 dimensions (numpy 1), 64 (numpy 2)
            raise BadRequest(f"{where} nests too deeply for an array: {exc}") from exc
        raise BadRequest(f"{where} is ragged: every row must have the same length") from exc
    if array.dtype == object and _is_ragged(value):
        raise BadRequest(f"{where} is ragged: every row must have the same length")
    return array


def _is_ragged(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    lists = [isinstance(v, list) for v in value]
    if any(lists) and not all(lists):
        return True
    if all(lists):
        first = len(value[0])
        return any(len(v) != first for v in value) or any(_is_ragged(v) for v in value)
    return False


def _writable(value: Any, where: str) -> Any:
    """``value``, if an answer that carries it back can be written.

    orjson reads JSON nested 1024 levels deep but writes at most 254, so a jsonData or a tag
    nested deeper would reach the model and then fail its answer, echoed or passed on. The
    check leaves room for the levels an answer wraps around the value.
    """
    try:
        orjson.dumps([[[[[[[[value]]]]]]]])  # eight: meta.tags.key in a feedback's response
    except orjson.JSONEncodeError:
        raise BadRequest(
            f"{where} nests too deeply: a JSON answer carrying it could not be written "
            f"(at most {_MAX_DEPTH} levels)"
        ) from None
    return value


_MAX_DEPTH = 254 - 8


def decode_meta(obj: Any, where: str = "meta") -> Meta:
    if obj is None:
        return Meta()
    if not isinstance(obj, dict):
        raise BadRequest(f"{where} must be an object")
    tags = obj.get("tags") or {}
    routing = obj.get("routing") or {}
    path = obj.get("requestPath") or {}
    metrics = obj.get("metrics") or []
    if not isinstance(tags, dict):
        raise BadRequest(f"{where}.tags must be an object")
    if not isinstance(routing, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in routing.values()
    ):
        raise BadRequest(f"{where}.routing must map node names to integers")
    if not isinstance(path, dict) or not all(isinstance(v, str) for v in path.values()):
        raise BadRequest(f"{where}.requestPath must map node names to images (strings)")
    if not isinstance(metrics, list):
        raise BadRequest(f"{where}.metrics must be a list")
    for key, value in (("tags", tags), ("requestPath", path), ("metrics", metrics)):
        if value:
            _writable(value, f"{where}.{key}")
    puid = obj.get("puid") or ""
    return Meta(str(puid), dict(tags), dict(routing), dict(path), list(metrics))


def _unknown_field(obj: dict[str, Any], fields: tuple[str, ...], where: str) -> BadRequest:
    """The 400 for keys outside ``fields``: a misspelt field is never read as an absent one.

    Callers test the keys first (one set test per request); this runs only for a bad one.
    """
    unknown = [key for key in obj if key not in fields]
    first = str(unknown[0])
    close = difflib.get_close_matches(first, fields, n=1, cutoff=0.75) or [
        field for field in fields if field.lower() == first.lower()
    ]
    listed = ", ".join(repr(key) for key in unknown)
    return BadRequest(
        f"unknown field{'s' if len(unknown) > 1 else ''} {listed} in {where}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; known fields: {', '.join(fields)}"
    )


def _decode_data(
    data: Any, where: str, strict: bool = False, lists: bool = False
) -> tuple[DataKind, Any, list[str]]:
    if not isinstance(data, dict):
        raise BadRequest(f"{where} must be an object with names and ndarray, tensor or tftensor")
    if strict and not _DATA_KNOWN.issuperset(data):
        raise _unknown_field(data, DATA_FIELDS, where)
    names = data.get("names") or []
    if not isinstance(names, list):
        raise BadRequest(f"{where}.names must be a list of strings")
    if "ndarray" in data:
        if not isinstance(data["ndarray"], list):
            raise BadRequest(f"{where}.ndarray must be a list (of rows)")
        if lists:
            return DataKind.NDARRAY, data["ndarray"], names
        array = _to_array(data["ndarray"], f"{where}.ndarray")
        if array.dtype == object:  # objects (a dict, a list) may nest deeper than numbers can
            _writable(data["ndarray"], f"{where}.ndarray")
        return DataKind.NDARRAY, array, names
    if "tensor" in data:
        tensor = data["tensor"]
        if not isinstance(tensor, dict):
            raise BadRequest(f"{where}.tensor must be an object with shape and values")
        shape, values = tensor.get("shape"), tensor.get("values", [])
        if not isinstance(values, list):
            raise BadRequest(f"{where}.tensor.values must be a list of numbers")
        array = _to_array(values, f"{where}.tensor.values")
        if array.dtype.kind not in "iufb" and array.size:
            raise BadRequest(f"{where}.tensor.values must be numbers")
        if shape is not None:
            try:
                array = array.reshape(shape)
            except (TypeError, ValueError) as exc:
                raise BadRequest(
                    f"{where}.tensor: shape {shape} does not match {array.size} values"
                ) from exc
        return DataKind.TENSOR, array, names
    if "tftensor" in data:
        return DataKind.TFTENSOR, tf_json_to_array(data["tftensor"], f"{where}.tftensor"), names
    if strict:
        raise BadRequest(f"{where} has no data kind: it needs ndarray, tensor or tftensor")
    return DataKind.NDARRAY, np.array([]), names


def decode_message(
    obj: Any, where: str = "request", *, strict: bool = False, lists: bool = False
) -> Message:
    """Decode one SeldonMessage JSON object (already parsed).

    ``strict`` is for a client's request: an unknown field, or a ``data`` without a data
    kind, is a 400 naming it, where Seldon's wrapper quietly reads an empty array. Answers
    of nodes and of ``*_raw`` methods are decoded leniently, as Seldon passes them on.
    ``lists`` keeps an ``ndarray`` as the list it is, for a node's answer: Seldon's executor
    passes it on untouched, so ``[[0.9, 1]]`` stays mixed (an array would make it floats).
    """
    if not isinstance(obj, dict):
        raise BadRequest(f"Invalid request data type: {where} must be a JSON object")
    if strict and not _MESSAGE_KNOWN.issuperset(obj):
        raise _unknown_field(obj, MESSAGE_FIELDS, "the request" if where == "request" else where)
    meta = decode_meta(obj.get("meta"), f"{where}.meta" if where != "request" else "meta")
    prefix = "" if where == "request" else f"{where}."
    status = _decode_status(obj.get("status"), f"{prefix}status")
    if "data" in obj:
        kind, data, names = _decode_data(obj["data"], f"{prefix}data", strict, lists)
        return Message(kind, data, names, meta, status)
    if "strData" in obj:
        if not isinstance(obj["strData"], str):
            raise BadRequest(f"{prefix}strData must be a string")
        return Message(DataKind.STR, obj["strData"], [], meta, status)
    if "binData" in obj:
        try:
            raw = base64.b64decode(obj["binData"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise BadRequest(f"{prefix}binData must be base64: {exc}") from exc
        return Message(DataKind.BIN, raw, [], meta, status)
    if "jsonData" in obj:
        data = _writable(obj["jsonData"], f"{prefix}jsonData")
        return Message(DataKind.JSON, data, [], meta, status)
    if status is not None:
        return Message(DataKind.NONE, None, [], meta, status)
    raise BadRequest(f"Invalid request: {where} has none of data, strData, binData or jsonData")


def _decode_status(obj: Any, where: str = "status") -> Status | None:
    if not isinstance(obj, dict):
        return None
    flag = obj.get("status", 0)
    if isinstance(flag, str):
        flag = 1 if flag == "FAILURE" else 0
    try:
        code, flag = int(obj.get("code", 0) or 0), int(flag or 0)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(
            f"{where} needs an integer code and a status of SUCCESS, FAILURE, 0 or 1"
        ) from None
    return Status(code, str(obj.get("info", "")), str(obj.get("reason", "")), flag)


def decode_aggregate(obj: Any) -> list[Message]:
    """Decode a combiner's input: a JSON list, or ``{"seldonMessages": [...]}``."""
    if isinstance(obj, dict) and "seldonMessages" in obj:
        obj = obj["seldonMessages"]
    if not isinstance(obj, list):
        raise BadRequest(
            "aggregate expects a JSON list of SeldonMessages or {'seldonMessages': [...]}"
        )
    return [decode_message(item, f"seldonMessages[{i}]") for i, item in enumerate(obj)]


def decode_feedback(obj: Any, *, strict: bool = False) -> Feedback:
    """Decode Seldon's Feedback JSON: request, response, reward and truth.

    ``strict`` refuses unknown fields in the feedback and in its messages, as Seldon's
    wrapper does (it parses REST feedback with protobuf's parser).
    """
    if not isinstance(obj, dict):
        raise BadRequest("Invalid feedback: the body must be a JSON object")
    if strict and not _FEEDBACK_KNOWN.issuperset(obj):
        raise _unknown_field(obj, FEEDBACK_FIELDS, "the feedback")
    reward = obj.get("reward", 0.0)
    if reward is None:
        reward = 0.0
    if isinstance(reward, bool) or not isinstance(reward, int | float):
        raise BadRequest("feedback.reward must be a number")
    parts: dict[str, Message | None] = {}
    for key in ("request", "response", "truth"):
        value = obj.get(key)
        where = f"feedback.{key}"
        if isinstance(value, dict) and value.keys() <= {"meta"}:  # e.g. a response's puid only
            parts[key] = Message(meta=decode_meta(value.get("meta"), f"{where}.meta"))
        else:
            parts[key] = None if value is None else decode_message(value, where, strict=strict)
    return Feedback(parts["request"], parts["response"], float(reward), parts["truth"])


# ---------------------------------------------------------------- encoding


def encode_meta(meta: Meta) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if meta.puid:
        out["puid"] = meta.puid
    if meta.tags:
        out["tags"] = meta.tags
    if meta.routing:
        out["routing"] = meta.routing
    if meta.request_path:
        out["requestPath"] = meta.request_path
    if meta.metrics:
        out["metrics"] = meta.metrics
    return out


def _encode_data(kind: DataKind, data: Any, names: list[str]) -> dict[str, Any]:
    if kind is DataKind.TENSOR:
        array = np.asarray(data)
        return {"names": names, "tensor": {"shape": list(array.shape), "values": array.ravel()}}
    if kind is DataKind.TFTENSOR:
        return {"names": names, "tftensor": array_to_tf_json(np.asarray(data))}
    return {"names": names, "ndarray": data}


def encode_message(msg: Message) -> dict[str, Any]:
    """Encode a Message as a SeldonMessage JSON object (numpy values left for dumps)."""
    if isinstance(msg.raw, dict):
        return msg.raw
    msg = as_seldon(msg)
    out: dict[str, Any] = {}
    if msg.status is not None:
        status = msg.status
        out["status"] = {
            "code": status.code,
            "info": status.info,
            "reason": status.reason,
            "status": "FAILURE" if status.flag else "SUCCESS",
        }
    out["meta"] = encode_meta(msg.meta)
    kind = msg.kind
    if kind.is_data:
        out["data"] = _encode_data(kind, msg.data, msg.names)
    elif kind is DataKind.STR:
        out["strData"] = msg.data
    elif kind is DataKind.BIN:
        out["binData"] = base64.b64encode(msg.data).decode()
    elif kind is DataKind.JSON:
        out["jsonData"] = msg.data
    elif kind is DataKind.CUSTOM:
        raise BadRequest("customData can only be returned over gRPC")
    return out


def encode_feedback(fb: Feedback) -> dict[str, Any]:
    out: dict[str, Any] = {"reward": fb.reward}
    for key in ("request", "response", "truth"):
        part = getattr(fb, key)
        if part is not None:
            out[key] = encode_message(part)
    return out


def metric_type_name(value: Any) -> str:
    """Accept metric types as names or as protobuf enum numbers."""
    if isinstance(value, int) and 0 <= value < len(_METRIC_TYPES):
        return _METRIC_TYPES[value]
    return str(value)
