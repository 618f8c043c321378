"""Seldon protocol protobuf (``seldon.protos``) <-> :class:`Message`.

Over protobuf, ``ndarray`` travels as a ``ListValue``, so every number becomes a
float, as in Seldon (converted by :mod:`infergraph.protocol.listvalue`, fast for numeric
arrays); ``tensor`` is packed doubles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import any_pb2, json_format

from infergraph.errors import BadRequest
from infergraph.protocol.listvalue import array_from_list_value, fill_list_value, value_to_python
from infergraph.protocol.message import DataKind, Feedback, Message, Meta, Status
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto._pool import coerce, same_type
from infergraph.protocol.tftensor import array_to_tf_proto, tf_proto_to_array
from infergraph.protocol.v2_message import as_seldon

__all__ = [
    "decode_feedback",
    "decode_message",
    "decode_message_list",
    "encode_feedback",
    "encode_message",
    "pb",
]

_METRIC_TYPES = ("COUNTER", "GAUGE", "TIMER")
_METRIC_NUMBERS = {name: i for i, name in enumerate(_METRIC_TYPES)}


def decode_meta(meta: Any) -> Meta:
    metrics = [
        {
            "key": m.key,
            "type": _METRIC_TYPES[m.type] if 0 <= m.type < 3 else str(m.type),
            "value": m.value,
            **({"tags": dict(m.tags)} if m.tags else {}),
        }
        for m in meta.metrics
    ]
    return Meta(
        meta.puid,
        {k: value_to_python(v) for k, v in meta.tags.items()},
        dict(meta.routing),
        dict(meta.requestPath),
        metrics,
    )


def decode_message(msg: Any, where: str = "request") -> Message:
    """Decode a ``seldon.protos.SeldonMessage`` (of infergraph's descriptor pool or another)."""
    meta = decode_meta(msg.meta) if msg.HasField("meta") else Meta()
    status = None
    if msg.HasField("status"):
        s = msg.status
        status = Status(s.code, s.info, s.reason, int(s.status))
    which = msg.WhichOneof("data_oneof")
    if which == "data":
        data = msg.data
        names = list(data.names)
        inner = data.WhichOneof("data_oneof")
        if inner == "tensor":
            values = np.array(data.tensor.values, dtype=np.float64)
            shape = list(data.tensor.shape)
            try:
                array = values.reshape(shape) if shape else values
            except ValueError as exc:
                raise BadRequest(
                    f"data.tensor: shape {shape} does not match {values.size} values"
                ) from exc
            return Message(DataKind.TENSOR, array, names, meta, status)
        if inner == "ndarray":
            try:
                array = array_from_list_value(data.ndarray)
            except ValueError as exc:
                raise BadRequest(
                    "data.ndarray is ragged: every row must have the same length"
                ) from exc
            return Message(DataKind.NDARRAY, array, names, meta, status)
        if inner == "tftensor":
            return Message(DataKind.TFTENSOR, tf_proto_to_array(data.tftensor), names, meta, status)
        return Message(DataKind.NDARRAY, np.array([]), names, meta, status)
    if which == "binData":
        return Message(DataKind.BIN, msg.binData, [], meta, status)
    if which == "strData":
        return Message(DataKind.STR, msg.strData, [], meta, status)
    if which == "jsonData":
        return Message(DataKind.JSON, value_to_python(msg.jsonData), [], meta, status)
    if which == "customData":
        # user code gets protobuf's own Any, as under Seldon, not one of infergraph's pool
        custom = any_pb2.Any.FromString(msg.customData.SerializeToString())
        return Message(DataKind.CUSTOM, custom, [], meta, status)
    if status is not None:
        return Message(DataKind.NONE, None, [], meta, status)
    raise BadRequest(
        f"Invalid request: {where} has none of data, strData, binData, jsonData or customData"
    )


def decode_message_list(msg: Any) -> list[Message]:
    return [decode_message(m, f"seldonMessages[{i}]") for i, m in enumerate(msg.seldonMessages)]


def decode_feedback(fb: Any) -> Feedback:
    def part(name: str) -> Message | None:
        if not fb.HasField(name):
            return None
        msg = getattr(fb, name)
        if msg.WhichOneof("data_oneof") is None and not msg.HasField("status"):
            return Message(meta=decode_meta(msg.meta))  # e.g. a response's puid only
        return decode_message(msg, f"feedback.{name}")

    return Feedback(part("request"), part("response"), float(fb.reward), part("truth"), raw=fb)


def encode_meta(meta: Meta, out: Any) -> None:
    if meta.puid:
        out.puid = meta.puid
    for key, value in meta.tags.items():
        json_format.ParseDict(value, out.tags[key])
    for key, value in meta.routing.items():
        out.routing[key] = int(value)
    for key, value in meta.request_path.items():
        out.requestPath[key] = str(value)
    for metric in meta.metrics:
        kind = metric.get("type", "COUNTER")
        out.metrics.add(
            key=str(metric.get("key", "")),
            type=_METRIC_NUMBERS.get(kind, 0) if isinstance(kind, str) else int(kind),
            value=float(metric.get("value", 0.0)),
            tags={str(k): str(v) for k, v in (metric.get("tags") or {}).items()},
        )


def encode_message(msg: Message) -> Any:
    """Encode a Message as a ``seldon.protos.SeldonMessage``."""
    if same_type(msg.raw, pb.SeldonMessage):
        return coerce(msg.raw, pb.SeldonMessage)
    msg = as_seldon(msg)
    out = pb.SeldonMessage()
    if msg.status is not None:
        s = msg.status
        out.status.code, out.status.info, out.status.reason = s.code, s.info, s.reason
        out.status.status = s.flag  # type: ignore[assignment]
    out.meta.SetInParent()  # Seldon always sets meta, even when empty
    encode_meta(msg.meta, out.meta)
    kind = msg.kind
    if kind is DataKind.TENSOR:
        array = np.asarray(msg.data, dtype=np.float64)
        out.data.names.extend(msg.names)
        out.data.tensor.shape.extend(array.shape)
        out.data.tensor.values.extend(array.ravel().tolist())
    elif kind is DataKind.NDARRAY:
        out.data.names.extend(msg.names)
        out.data.ndarray.SetInParent()  # set even when empty: `[]` is an ndarray answer
        fill_list_value(out.data.ndarray, msg.data)
    elif kind is DataKind.TFTENSOR:
        out.data.names.extend(msg.names)
        array_to_tf_proto(np.asarray(msg.data), out.data.tftensor)
    elif kind is DataKind.STR:
        out.strData = msg.data
    elif kind is DataKind.BIN:
        out.binData = bytes(msg.data)
    elif kind is DataKind.JSON:
        json_format.ParseDict(msg.data, out.jsonData)
    elif kind is DataKind.CUSTOM:
        out.customData.CopyFrom(coerce(msg.data, type(out.customData)))
    return out


def encode_feedback(fb: Feedback) -> Any:
    if same_type(fb.raw, pb.Feedback):
        return coerce(fb.raw, pb.Feedback)
    out = pb.Feedback(reward=fb.reward)
    for name in ("request", "response", "truth"):
        part = getattr(fb, name)
        if part is not None:
            getattr(out, name).CopyFrom(encode_message(part))
    return out
