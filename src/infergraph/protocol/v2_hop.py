"""A graph hop over the Open Inference Protocol: a Seldon message carried as V2 tensors.

Between the orchestrator and a node process the payload travels as binary V2 tensors
(raw bytes, no JSON numbers), and what V2 has no place for rides in one parameter,
``infergraph_seldon``: which method to run (``predict``, ``transform_input``,
``transform_output``, ``route``), the message's Seldon data kind and names, its ``meta``
(puid, tags, routing, requestPath, metrics) and status. The node answers the same way,
so a hop keeps every Seldon semantic (tags merge, custom metrics, ``tensor`` stays
``tensor``) while the data stays binary.

A payload that JSON gives back exactly as it was rides in that parameter too, as Seldon
JSON, with no tensor: a list (what a model returned: ``[[0.9, 1]]`` stays mixed, where a
tensor would make it ``[[0.9, 1.0]]``), an array of fewer than :data:`INLINE_BELOW`
finite ``int64``, ``float64``, booleans or strings (what a JSON request decodes to), a
string, a JSON value, and ``aggregate``'s list of messages (the body Seldon's executor
POSTs to ``/aggregate``). Every number keeps its type, as over REST, and a small hop costs
less than as a tensor (no tensor to encode) or as Seldon's protobuf (no ``Value`` per
number). Other arrays travel as tensors of their dtype (so the next model's ``X`` has
it); bytes, ndarrays of mixed objects and strings in larger arrays as one BYTES tensor
marked with a content type; V2 messages as they are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import orjson

from infergraph.errors import BadRequest
from infergraph.protocol.message import DataKind, Feedback, Message, Status
from infergraph.protocol.seldon_json import (
    decode_meta,
    dumps,
    encode_feedback,
    encode_message,
    encode_meta,
)
from infergraph.protocol.v2_content import tensor_from
from infergraph.protocol.v2_message import SELDON_OUTPUT, as_seldon, as_v2
from infergraph.protocol.v2_types import InferenceRequest, InferenceResponse

__all__ = [
    "HOP_METHODS",
    "HOP_PARAMETER",
    "INLINE_BELOW",
    "json_gives_back",
    "read_answer",
    "read_call",
    "write_aggregate",
    "write_answer",
    "write_call",
    "write_feedback",
]

HOP_PARAMETER = "infergraph_seldon"
HOP_METHODS = frozenset(
    {"predict", "transform_input", "transform_output", "route", "aggregate", "send_feedback"}
)
INLINE_BELOW = 256
"""Arrays of fewer elements may ride in the envelope as JSON; larger ones go binary."""
_KINDS = {kind.value: kind for kind in DataKind}
_INLINE_KINDS = frozenset({DataKind.NDARRAY, DataKind.TENSOR})
_JSON_DTYPES = frozenset({np.dtype(np.int64), np.dtype(np.float64), np.dtype(np.bool_)})
"""What a JSON number or boolean decodes to: an array of another dtype (float32...) is not
given back as it was."""
_NO_INLINE = object()


def _inline(message: Message) -> Any:
    """The payload as the JSON value that carries it exactly, or ``_NO_INLINE``."""
    kind, data = message.kind, message.data
    if kind is DataKind.STR or kind is DataKind.JSON:
        return data
    if kind not in _INLINE_KINDS:
        return _NO_INLINE
    if isinstance(data, list):
        return data
    if not isinstance(data, np.ndarray) or data.size >= INLINE_BELOW:
        return _NO_INLINE
    if data.dtype.kind == "U" and kind is DataKind.NDARRAY:  # strings, as a JSON request
        return data if data.ndim and data.size else _NO_INLINE
    return data if json_gives_back(data) else _NO_INLINE


def json_gives_back(array: np.ndarray) -> bool:
    """Whether ``np.array`` of ``array``'s JSON is ``array`` again: finite ``int64``,
    ``float64`` or booleans, neither a scalar nor empty (whose JSON says less than them)."""
    if array.dtype not in _JSON_DTYPES or array.ndim == 0 or array.size == 0:
        return False
    return array.dtype.kind != "f" or bool(np.isfinite(array).all())  # JSON has no NaN


def _as_tensor(data: Any) -> np.ndarray | None:
    """The payload as an array when it travels as a typed tensor and comes back the same
    (numbers, booleans, or strings only); None for anything else (sent as JSON)."""
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data)
        except ValueError:  # ragged
            return None
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "U":
        return array if array is data or _all_strings(data) else None
    if kind == "O" and array.size > 0 and _all_strings(array.ravel().tolist()):
        return array
    return None


def _all_strings(data: Any) -> bool:
    if isinstance(data, str):
        return True
    if isinstance(data, list | tuple):
        return all(_all_strings(item) for item in data)
    return False


def _payload(message: Message) -> InferenceRequest:
    if message.kind.is_data:
        array = _as_tensor(message.data)
        if array is not None:
            return InferenceRequest([tensor_from(SELDON_OUTPUT, array)])
        raw = orjson.dumps(message.data, option=orjson.OPT_SERIALIZE_NUMPY)
        tensor = tensor_from(SELDON_OUTPUT, raw)
        tensor.parameters["content_type"] = "json"
        return InferenceRequest([tensor])
    return as_v2(message)


def _envelope(message: Message, extra: dict[str, Any]) -> str:
    """The Seldon fields of ``message`` (and ``extra``) as the hop parameter's JSON."""
    fields: dict[str, Any] = {"kind": message.kind.value, **extra}
    if message.names:
        fields["names"] = message.names
    meta = encode_meta(message.meta)
    if meta:
        fields["meta"] = meta
    if message.status is not None:
        s = message.status
        fields["status"] = [s.code, s.info, s.reason, s.flag]
    return dumps(fields).decode()


def _write(message: Message, extra: dict[str, Any]) -> InferenceRequest:
    """The tensors and parameters that carry ``message``: its payload inline when JSON
    gives it back exactly, else as tensors."""
    inline = _inline(message)
    if inline is not _NO_INLINE:
        return InferenceRequest(
            [], parameters={HOP_PARAMETER: _envelope(message, {**extra, "data": inline})}
        )
    payload = _payload(message)
    parameters = dict(payload.parameters)
    parameters[HOP_PARAMETER] = _envelope(message, extra)
    return InferenceRequest(payload.inputs, parameters=parameters)


def _data(payload: InferenceRequest) -> Any:
    """The payload of a Seldon data kind: an array, strings as nested lists, or JSON."""
    if len(payload.inputs) != 1:
        raise BadRequest(f"a Seldon data hop carries one tensor, got {len(payload.inputs)}")
    tensor = payload.inputs[0]
    ctype = tensor.parameters.get("content_type")
    if ctype == "json" and tensor.data.size == 1:
        return orjson.loads(tensor.data.ravel()[0])
    if ctype == "str":
        items = [item.decode("utf-8") for item in tensor.data.ravel()]
        return np.array(items, dtype=object).reshape(tensor.data.shape).tolist()
    return tensor.data


def _inline_data(kind: DataKind, data: Any) -> Any:
    """An inline payload, checked against its kind (a list stays the list it is)."""
    if kind in _INLINE_KINDS and isinstance(data, list):
        return data
    if kind is DataKind.STR and isinstance(data, str):
        return data
    if kind is DataKind.JSON:
        return data
    raise BadRequest(f"parameters.{HOP_PARAMETER}.data does not hold a {kind.value} payload")


def _message(payload: InferenceRequest, fields: dict[str, Any]) -> Message:
    kind = _KINDS.get(fields.get("kind", "v2"), DataKind.V2)
    meta = decode_meta(fields.get("meta"))
    if "data" in fields:
        names = list(fields.get("names") or [])
        message = Message(kind, _inline_data(kind, fields["data"]), names, meta)
    elif kind is DataKind.V2:
        message = Message(DataKind.V2, payload, [t.name for t in payload.inputs], meta)
    elif kind.is_data:
        message = Message(kind, _data(payload), list(fields.get("names") or []), meta)
    else:
        seldon = as_seldon(Message(DataKind.V2, payload))
        message = Message(seldon.kind, seldon.data, list(fields.get("names") or []), meta)
    status = fields.get("status")
    if isinstance(status, list) and len(status) == 4:
        message.status = Status(*status)
    return message


def _fields(parameters: dict[str, Any], where: str) -> dict[str, Any] | None:
    text = parameters.pop(HOP_PARAMETER, None)
    if text is None:
        return None
    try:
        fields = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise BadRequest(f"{where} parameters.{HOP_PARAMETER} is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise BadRequest(f"{where} parameters.{HOP_PARAMETER} must be a JSON object")
    return fields


# ---------------------------------------------------------------- the call


def write_call(message: Message, method: str, model: str) -> InferenceRequest:
    """The V2 request that asks node ``model`` to run ``method`` on ``message``."""
    request = _write(message, {"method": method})
    request.model_name = model
    return request


def write_aggregate(messages: list[Message], model: str) -> InferenceRequest:
    """The V2 request that asks node ``model`` to aggregate ``messages``: the JSON list that
    Seldon's executor POSTs to a combiner's ``/aggregate``, inline, so every number keeps
    its type as over REST. :func:`read_call` reads it as a ``jsonData`` message holding
    that list."""
    # the fields are authoritative: ``raw`` may be the wire form of an earlier hop
    listed = [encode_message(replace(m, raw=None) if m.raw is not None else m) for m in messages]
    request = _write(Message(DataKind.JSON, listed), {"method": "aggregate"})
    request.model_name = model
    return request


def write_feedback(feedback: Feedback, model: str) -> InferenceRequest:
    """The V2 request that gives node ``model`` a feedback: Seldon's Feedback JSON, inline,
    so the request and response in it keep their number types (Seldon's protobuf would make
    every number a float). :func:`read_call` reads it as a ``jsonData`` message holding it."""
    request = _write(Message(DataKind.JSON, encode_feedback(feedback)), {"method": "send_feedback"})
    request.model_name = model
    return request


def read_call(request: InferenceRequest) -> tuple[str, Message] | None:
    """The method and message of a hop (None for an ordinary V2 request)."""
    fields = _fields(request.parameters, "the request's")
    if fields is None:
        return None
    method = fields.get("method")
    if method not in HOP_METHODS:
        raise BadRequest(
            f"parameters.{HOP_PARAMETER}.method {method!r} is not one of "
            f"{', '.join(sorted(HOP_METHODS))}"
        )
    return str(method), _message(request, fields)


# ---------------------------------------------------------------- the answer


def write_answer(message: Message) -> InferenceRequest:
    """A node's answer as the tensors and parameters of its V2 response."""
    return _write(message, {})


def read_answer(response: InferenceResponse) -> Message:
    """The node's answer as a message (a plain V2 answer stays V2)."""
    parameters = dict(response.parameters)
    fields = _fields(parameters, "the node's answer")
    payload = InferenceRequest(response.outputs, parameters=parameters)
    return _message(payload, fields or {"kind": "v2"})
