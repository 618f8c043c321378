"""Between Seldon messages and V2 tensors, for the hops where one protocol meets the other.

A V2 request can reach a node that answers in the Seldon protocol (a ``*_raw`` method, a
remote Seldon microservice), and a Seldon request can reach a node over V2. These two
functions carry the payload across: Seldon's data kinds become tensors (strings as BYTES
marked ``content_type: str``, ``jsonData`` as a JSON string marked ``content_type: json``),
and tensors become Seldon data again (a single tensor as ``ndarray``/``tensor`` data).
"""

from __future__ import annotations

import numpy as np
import orjson

from infergraph.errors import BadRequest
from infergraph.protocol.message import DataKind, Message
from infergraph.protocol.v2_content import decode_tensor, tensor_from
from infergraph.protocol.v2_types import InferenceRequest, Tensor

__all__ = ["as_seldon", "as_v2"]

SELDON_OUTPUT = "output-0"


def as_v2(message: Message, name: str = SELDON_OUTPUT) -> InferenceRequest:
    """The message's payload as tensors (V2 messages as they are)."""
    if message.kind is DataKind.V2:
        payload: InferenceRequest = message.data
        return payload
    kind, data = message.kind, message.data
    if kind.is_data:
        tensors = [tensor_from(name, message.array())]
    elif kind is DataKind.STR:
        tensors = [tensor_from(name, str(data))]
    elif kind is DataKind.BIN:
        tensors = [tensor_from(name, bytes(data))]
    elif kind is DataKind.JSON:
        tensor = tensor_from(name, orjson.dumps(data))
        tensor.parameters["content_type"] = "json"
        tensors = [tensor]
    elif kind is DataKind.NONE:
        tensors = []
    else:
        raise BadRequest(
            f"a {kind.value} message has no Open Inference Protocol form; "
            "answer with data, strData, binData or jsonData"
        )
    return InferenceRequest(tensors)


def _seldon_payload(tensor: Tensor) -> tuple[DataKind, object]:
    ctype = tensor.parameters.get("content_type")
    if tensor.datatype == "BYTES" and tensor.data.size == 1:
        item = tensor.data.ravel()[0]
        if ctype == "json":
            try:
                return DataKind.JSON, orjson.loads(item)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"tensor '{tensor.name}' is marked json but {exc}") from None
        if ctype == "str":
            return DataKind.STR, item.decode("utf-8")
        return DataKind.BIN, bytes(item)
    value = decode_tensor(tensor)
    return DataKind.NDARRAY, value if isinstance(value, np.ndarray) else np.asarray(value)


def as_seldon(message: Message) -> Message:
    """A V2 message as Seldon data (other messages as they are)."""
    if message.kind is not DataKind.V2:
        return message
    inputs = message.data.inputs
    if not inputs:
        return Message(DataKind.NONE, None, [], message.meta)
    if len(inputs) > 1:
        names = ", ".join(repr(t.name) for t in inputs)
        raise BadRequest(
            f"the Seldon protocol carries one tensor, but this V2 message has {len(inputs)} "
            f"({names}); serve the node with the V2 protocol or combine the tensors"
        )
    kind, data = _seldon_payload(inputs[0])
    return Message(kind, data, [], message.meta)
