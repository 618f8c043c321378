"""Seldon's ``construct_response`` and ``construct_response_json``: a model's return value
made into the response message Seldon's wrapper would have sent.

A ``*_raw`` method that builds its own answer calls these, so they must choose the data
kind, the column names and the ``meta`` block by Seldon's rules:

- a numeric result mirrors the request's data kind (``tensor``, ``tftensor``, else
  ``ndarray``); with no ``data`` in the request it is a ``tensor``; anything else is an
  ``ndarray``;
- columns of a 2-D+ result are named by the model's ``class_names()`` (``t:0``, ...), or
  with ``is_request`` (a transformer's input) by its ``feature_names()`` or the request's;
- ``meta`` holds the given tags and metrics plus the model's ``tags()``, the runtime tags
  and metrics, the request's ``puid`` and its ``requestPath`` under this unit's entry.

The payload is then written by infergraph's codecs, the same code that writes the
answers infergraph itself sends.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from infergraph.compat.seldon_core.user_model import (
    client_class_names,
    client_custom_tags,
    client_feature_names,
)
from infergraph.errors import MicroserviceError
from infergraph.protocol import seldon_json, seldon_pb
from infergraph.protocol.message import DataKind, Message, Meta

__all__ = ["construct_response", "construct_response_json", "plain_json"]

_REQUEST_KINDS = {"tensor": DataKind.TENSOR, "tftensor": DataKind.TFTENSOR}


def plain_json(value: Any) -> Any:
    """``value`` with the numpy arrays and scalars the codecs leave in it (for the JSON
    writer) turned into lists and numbers, as ``tolist()`` gives them; lists the model
    returned are kept as they are."""
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


def _unit_request_path() -> dict[str, str]:
    """``{PREDICTIVE_UNIT_ID: PREDICTIVE_UNIT_IMAGE}``, read when the response is built
    (as Seldon's helper reads it); empty when the unit has no id."""
    unit = os.environ.get("PREDICTIVE_UNIT_ID", "")
    return {unit: os.environ.get("PREDICTIVE_UNIT_IMAGE", "")} if unit else {}


def _meta(
    user_model: Any,
    meta: dict[str, Any] | None,
    custom_metrics: list[dict[str, Any]] | None,
    runtime_tags: dict[str, Any] | None,
    puid: str,
    request_path: dict[str, str],
) -> Meta:
    given = meta or {}
    tags = dict(given.get("tags") or {})
    tags.update(client_custom_tags(user_model))
    tags.update(runtime_tags or {})
    metrics = [*(given.get("metrics") or []), *(custom_metrics or [])]
    return Meta(puid, tags, {}, {**_unit_request_path(), **request_path}, metrics)


def _same_pool_any(value: Any) -> Any:
    """``value`` as the ``Any`` class ``customData`` takes: a ``google.protobuf.any_pb2.Any``
    is copied through its wire form when infergraph's messages use a pool of their own."""
    wanted = type(seldon_pb.pb.SeldonMessage().customData)
    return value if isinstance(value, wanted) else wanted.FromString(value.SerializeToString())


def _payload(
    user_model: Any,
    is_request: bool,
    result: Any,
    request_kind: DataKind | None,
    request_names: list[str],
) -> tuple[DataKind, Any, list[str]]:
    """(kind, data, names) of a return value; ``request_kind`` is None without ``data``."""
    if isinstance(result, dict):
        return DataKind.JSON, result, []
    if isinstance(result, bytes | bytearray):
        return DataKind.BIN, bytes(result), []
    if isinstance(result, str):
        return DataKind.STR, result, []
    if type(result).__name__ == "Any" and hasattr(result, "type_url"):
        return DataKind.CUSTOM, _same_pool_any(result), []
    if not isinstance(result, np.ndarray | list):
        raise MicroserviceError(
            "Unknown data type returned as payload (must be list or np array):" + str(result)
        )
    array = np.asarray(result)
    if not np.issubdtype(array.dtype, np.number):
        kind = DataKind.NDARRAY
    else:
        kind = DataKind.TENSOR if request_kind is None else request_kind
    if is_request:
        names = client_feature_names(user_model, request_names)
    else:
        names = client_class_names(user_model, array)
    return kind, result, names


def construct_response_json(
    user_model: Any,
    is_request: bool,
    client_request_raw: Any,
    client_raw_response: Any,
    meta: dict[str, Any] | None = None,
    custom_metrics: list[dict[str, Any]] | None = None,
    runtime_tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The SeldonMessage JSON dict answering the JSON request ``client_request_raw``.

    Lists in an ``ndarray`` answer keep their integers, as Seldon's REST answers do.
    """
    request = client_request_raw if isinstance(client_request_raw, dict) else {}
    data = request.get("data")
    request_kind = None
    if "data" in request:
        block = data if isinstance(data, dict) else {}
        request_kind = next((k for n, k in _REQUEST_KINDS.items() if n in block), DataKind.NDARRAY)
    names = list(data.get("names") or []) if isinstance(data, dict) else []
    kind, payload, out_names = _payload(
        user_model, is_request, client_raw_response, request_kind, names
    )
    if kind is DataKind.CUSTOM:
        raise MicroserviceError("customData can only be returned over gRPC")
    request_meta = request.get("meta") or {}
    out_meta = _meta(
        user_model,
        meta,
        custom_metrics,
        runtime_tags,
        str(request_meta.get("puid") or ""),
        dict(request_meta.get("requestPath") or {}),
    )
    body = seldon_json.encode_message(Message(kind, payload, out_names, out_meta))
    if "data" in body:
        body["data"] = plain_json(body["data"])
    body["meta"] = plain_json(body["meta"])
    return body


def construct_response(
    user_model: Any,
    is_request: bool,
    client_request: Any,
    client_raw_response: Any,
    meta: dict[str, Any] | None = None,
    custom_metrics: list[dict[str, Any]] | None = None,
    runtime_tags: dict[str, Any] | None = None,
) -> Any:
    """The ``SeldonMessage`` answering the protobuf request ``client_request``.

    As in Seldon, ``requestPath`` comes from ``meta`` (not from the request) and every
    ``ndarray`` number is a float.
    """
    request_kind = None
    if client_request.WhichOneof("data_oneof") == "data":
        inner = client_request.data.WhichOneof("data_oneof")
        request_kind = _REQUEST_KINDS.get(inner or "", DataKind.NDARRAY)
    result = client_raw_response
    if isinstance(result, list):
        result = np.asarray(result)
    kind, payload, names = _payload(
        user_model, is_request, result, request_kind, list(client_request.data.names)
    )
    out_meta = _meta(
        user_model,
        meta,
        custom_metrics,
        runtime_tags,
        client_request.meta.puid,
        dict((meta or {}).get("requestPath") or {}),
    )
    return seldon_pb.encode_message(Message(kind, payload, names, out_meta))
