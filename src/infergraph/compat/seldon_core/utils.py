"""``seldon_core.utils``: the data helpers Seldon model code calls in its ``*_raw`` methods.

Model code uses these to unpack a request and to pack its answer in the form Seldon's
wrapper would have written. The results must be the same as Seldon's, so the payload
conversions go through infergraph's codecs (:mod:`infergraph.protocol.seldon_json` and
:mod:`~infergraph.protocol.seldon_pb`), which already reproduce Seldon's wire forms,
and the protobuf <-> JSON dict helpers use protobuf's JSON mapping, as Seldon's do.
Building whole responses (``construct_response*``) lives in :mod:`._responses`.

Errors keep Seldon's type: a bad payload raises ``SeldonMicroserviceException``
(infergraph's :class:`~infergraph.errors.MicroserviceError`, a 400).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from google.protobuf import json_format

from infergraph.compat.seldon_core._responses import (
    construct_response,
    construct_response_json,
    plain_json,
)
from infergraph.errors import BadRequest, MicroserviceError
from infergraph.protocol import seldon_json, seldon_pb
from infergraph.protocol.listvalue import fill_list_value
from infergraph.protocol.message import DataKind, Message
from infergraph.protocol.proto import prediction_pb2

__all__ = [
    "array_to_grpc_datadef",
    "array_to_list_value",
    "array_to_rest_datadef",
    "construct_response",
    "construct_response_json",
    "extract_feedback_request_parts",
    "extract_request_parts",
    "extract_request_parts_json",
    "feedback_to_json",
    "get_data_from_proto",
    "get_meta_from_proto",
    "getenv",
    "getenv_as_bool",
    "grpc_datadef_to_array",
    "json_to_feedback",
    "json_to_seldon_message",
    "json_to_seldon_messages",
    "json_to_seldon_model_metadata",
    "seldon_message_to_json",
    "seldon_messages_to_json",
]

_KINDS = {"tensor": DataKind.TENSOR, "tftensor": DataKind.TFTENSOR, "ndarray": DataKind.NDARRAY}
"""Seldon's ``data_type`` argument -> infergraph's data kind; anything else is ndarray."""


@contextlib.contextmanager
def _as_seldon_error() -> Iterator[None]:
    """Re-raise a codec's 400 as the exception type Seldon model code catches."""
    try:
        yield
    except BadRequest as exc:
        raise MicroserviceError(str(exc)) from exc


# ---------------------------------------------------------------- environment


def getenv(*env_vars: str, default: Any = None) -> Any:
    """The value of the first of ``env_vars`` that is set, else ``default``.

    This is model code's own way of reading its container's environment, at the time it
    asks; infergraph's configuration never comes through here.
    """
    for name in env_vars:
        if name in os.environ:
            return os.environ[name]
    return default


def getenv_as_bool(*env_vars: str, default: bool = False) -> bool:
    """:func:`getenv` read as Seldon reads a flag: true for ``1``, ``true`` or ``t``."""
    value = getenv(*env_vars)
    if value is None:
        return default
    return str(value).lower() in ("1", "true", "t")


# ---------------------------------------------------------------- protobuf <-> JSON dicts


def _jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as lists and numbers, which protobuf's JSON
    parser needs; infergraph's codecs leave numpy values in the dicts they build."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


def _parse(message_json: Any, message: Any, *, ignore_unknown_fields: bool = False) -> Any:
    try:
        json_format.ParseDict(
            _jsonable(message_json), message, ignore_unknown_fields=ignore_unknown_fields
        )
    except json_format.ParseError as exc:
        raise MicroserviceError(f"Invalid JSON: {exc}") from exc
    return message


def json_to_seldon_message(message_json: Any) -> Any:
    """A SeldonMessage JSON dict (``None`` counts as ``{}``) as a ``SeldonMessage``."""
    return _parse({} if message_json is None else message_json, prediction_pb2.SeldonMessage())


def json_to_feedback(message_json: Any) -> Any:
    """A Feedback JSON dict as a ``Feedback`` message."""
    return _parse(message_json, prediction_pb2.Feedback())


def json_to_seldon_messages(message_json: Any) -> Any:
    """``{"seldonMessages": [...]}`` as a ``SeldonMessageList``."""
    return _parse(message_json, prediction_pb2.SeldonMessageList())


def json_to_seldon_model_metadata(metadata_json: Any) -> Any:
    """Model metadata as a ``SeldonModelMetadata``; unknown fields are dropped."""
    return _parse(
        {} if metadata_json is None else metadata_json,
        prediction_pb2.SeldonModelMetadata(),
        ignore_unknown_fields=True,
    )


def seldon_message_to_json(message_proto: Any) -> dict[str, Any]:
    """A message as protobuf's JSON mapping writes it (every ``ndarray`` number a float)."""
    out: dict[str, Any] = json_format.MessageToDict(message_proto)
    return out


seldon_messages_to_json = seldon_message_to_json
feedback_to_json = seldon_message_to_json


def get_meta_from_proto(request: Any) -> dict[str, Any]:
    """A SeldonMessage's ``meta`` as a JSON dict."""
    return seldon_message_to_json(request.meta)


# ---------------------------------------------------------------- payloads


def get_data_from_proto(request: Any) -> Any:
    """A SeldonMessage's payload as Seldon hands it to ``predict``: an array for ``data``
    (``tensor`` and ``ndarray`` numbers are floats), bytes, str, a dict for ``jsonData``,
    or the ``Any`` of ``customData``."""
    if request.WhichOneof("data_oneof") is None:
        raise MicroserviceError("Unknown data in SeldonMessage")
    with _as_seldon_error():
        return seldon_pb.decode_message(request).data


def grpc_datadef_to_array(datadef: Any) -> np.ndarray:
    """A ``DefaultData`` as an array (an empty one when it holds no tensor or ndarray)."""
    holder = prediction_pb2.SeldonMessage()
    holder.data.CopyFrom(datadef)
    with _as_seldon_error():
        return np.asarray(seldon_pb.decode_message(holder).data)


def array_to_grpc_datadef(data_type: str, array: Any, names: Iterable[str] | None = None) -> Any:
    """``array`` as a ``DefaultData`` of kind ``data_type`` (tensor, ndarray or tftensor)."""
    message = Message(_KINDS.get(data_type, DataKind.NDARRAY), np.asarray(array), list(names or []))
    return seldon_pb.encode_message(message).data


def array_to_rest_datadef(
    data_type: str, array: Any, names: Iterable[str] | None = None
) -> dict[str, Any]:
    """``array`` as the JSON ``data`` block of kind ``data_type``, with plain Python values
    (``ndarray`` integers stay integers, as in Seldon's REST answers)."""
    message = Message(_KINDS.get(data_type, DataKind.NDARRAY), np.asarray(array), list(names or []))
    return plain_json(seldon_json.encode_message(message)["data"])


def array_to_list_value(array: Any, lv: Any = None) -> Any:
    """``array`` appended to the ``ListValue`` ``lv``; by default a new one of the class
    ``DefaultData.ndarray`` takes (infergraph's messages may live in their own descriptor
    pool, where protobuf's ``struct_pb2.ListValue`` would be refused)."""
    out = type(prediction_pb2.DefaultData().ndarray)() if lv is None else lv
    fill_list_value(out, np.asarray(array))
    return out


# ---------------------------------------------------------------- requests


def extract_request_parts_json(request: Any) -> tuple[Any, Any, Any, str]:
    """``(features, meta, datadef, data_type)`` of a SeldonMessage JSON dict.

    ``meta`` and ``datadef`` are the dicts as sent (``None`` when absent); ``data_type``
    is the key that carried the payload: ``data``, ``jsonData``, ``strData`` or ``binData``.
    """
    if not isinstance(request, dict):
        raise MicroserviceError(f"Invalid request data type: {request}")
    meta = request.get("meta")
    for key in ("data", "jsonData", "strData", "binData"):
        if key in request:
            with _as_seldon_error():
                message = seldon_json.decode_message({key: request[key]})
            datadef = request["data"] if key == "data" else None
            return message.array(), meta, datadef, key
    raise MicroserviceError(f"Invalid request data type: {request}")


def extract_request_parts(request: Any) -> tuple[Any, dict[str, Any], Any, str | None]:
    """``(features, meta, datadef, data_type)`` of a ``SeldonMessage``."""
    features = get_data_from_proto(request)
    return features, get_meta_from_proto(request), request.data, request.WhichOneof("data_oneof")


def extract_feedback_request_parts(request: Any) -> tuple[Any, np.ndarray, np.ndarray, float]:
    """``(request datadef, features, truth, reward)`` of a ``Feedback`` message."""
    features = grpc_datadef_to_array(request.request.data)
    truth = grpc_datadef_to_array(request.truth.data)
    return request.request.data, features, truth, float(request.reward)
