"""The Seldon protocol of a hop: how Seldon's executor calls a node, over REST or gRPC.

Over REST (:class:`SeldonJsonCodec`) a Seldon JSON body is POSTed to ``/predict``,
``/transform-input``, ``/transform-output``, ``/route``, ``/aggregate`` (a JSON list of
SeldonMessages) or ``/send-feedback``; ``ndarray`` integers stay integers, and a list a node
answers stays the list it is, as Seldon's executor passes it on. A node's non-2xx answer
keeps its HTTP status and its Seldon error (``status.info``, ``status.reason``), as Seldon's
executor passes a node's status and body through.

Over gRPC (:class:`SeldonProtoCodec`) the call is Seldon's protobuf (``Model/Predict``,
``Router/Route``, ``Combiner/Aggregate``...); as in Seldon, ``ndarray`` numbers come back as
floats.

Either way any Seldon-compatible microservice can be a node.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from infergraph.errors import (
    BadRequest,
    InferGraphError,
    MicroserviceError,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.graph.nodes.codecs import GrpcCodec, GrpcRequest, RestCodec, RestRequest
from infergraph.protocol import seldon_json, seldon_pb
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.protocol.seldon_pb import pb
from infergraph.status import ERROR_BY_HTTP

__all__ = [
    "SeldonJsonCodec",
    "SeldonProtoCodec",
    "error_from_status",
    "metadata_from_proto",
    "seldon_error",
]

# ---------------------------------------------------------------- Seldon JSON, over REST

_REST_PATHS = {
    "predict": "/predict",
    "transform_input": "/transform-input",
    "transform_output": "/transform-output",
    "route": "/route",
    "aggregate": "/aggregate",
    "send_feedback": "/send-feedback",
}
_JSON = {"content-type": "application/json"}
_PAYLOADS = ("data", "strData", "binData", "jsonData", "status")


def seldon_error(status: int, body: bytes) -> tuple[str, str | None, dict[str, Any] | None]:
    """``status.info`` and ``status.reason`` of a Seldon error body, and the body itself."""
    try:
        obj = seldon_json.loads(body)
    except BadRequest:
        obj = None
    block = obj.get("status") if isinstance(obj, dict) else None
    if isinstance(block, dict) and block.get("info"):
        reason = block.get("reason")
        return str(block["info"]), str(reason) if reason else None, obj
    text = body[:1000].decode("utf-8", "replace").strip()
    return text or f"HTTP {status}", None, obj if isinstance(obj, dict) else None


def error_from_status(status: int, body: bytes) -> InferGraphError:
    """The infergraph error a node's non-2xx answer stands for, keeping its status and words.

    400, 404, 413, 503 and 504 have their own errors; any other status becomes a
    :class:`MicroserviceError` with that status (and the node's other JSON fields as its
    payload), so the orchestrator answers with the node's status, as Seldon's executor does.
    """
    info, reason, obj = seldon_error(status, body)
    kind = ERROR_BY_HTTP.get(status)
    if kind is not None:
        return kind(info, reason=reason)
    payload = {k: v for k, v in obj.items() if k != "status"} if obj else None
    if reason is None:
        reason = "MICROSERVICE_INTERNAL_ERROR" if status >= 500 else "MICROSERVICE_BAD_DATA"
    return MicroserviceError(info, status_code=status, payload=payload or None, reason=reason)


def _fields(msg: Message) -> dict[str, Any]:
    # the fields are authoritative: ``raw`` may be the wire form of an earlier hop whose
    # meta (puid, requestPath) the executor has since changed
    return seldon_json.encode_message(replace(msg, raw=None) if msg.raw is not None else msg)


class SeldonJsonCodec(RestCodec):
    """Seldon JSON over REST (``spec.transport: rest``), as Seldon's executor sends it.

    Calls larger than ``max_message_size`` are refused here, before anything is sent: the
    node process has the same limit.
    """

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size

    def _body(self, obj: Any) -> bytes:
        body = seldon_json.dumps(obj)
        if len(body) > self.max_message_size:
            raise PayloadTooLarge(
                f"a request of {len(body)} bytes exceeds the limit of {self.max_message_size} "
                "bytes (the message size limit)"
            )
        return body

    def call(self, method: str, message: Message) -> RestRequest:
        return _REST_PATHS[method], self._body(_fields(message)), _JSON

    def batch(self, messages: list[Message]) -> RestRequest:
        return _REST_PATHS["aggregate"], self._body([_fields(m) for m in messages]), _JSON

    def feedback(self, feedback: Feedback) -> RestRequest:
        out: dict[str, Any] = {"reward": feedback.reward}
        for part in ("request", "response", "truth"):
            value = getattr(feedback, part)
            if value is not None:
                out[part] = _fields(value)
        return _REST_PATHS["send_feedback"], self._body(out), _JSON

    def answer(
        self, request: RestRequest, status: int, body: bytes, header_length: int | None
    ) -> Message:
        """Decode a node's answer; one without a payload (a bare ``meta``) is still an
        answer."""
        if not 200 <= status < 300:
            raise error_from_status(status, body)
        try:
            obj = seldon_json.loads(body)
            if isinstance(obj, list):  # a router's bare JSON list, which Seldon's executor reads
                return Message(DataKind.NONE, None, [], raw=obj)
            if isinstance(obj, dict) and not any(key in obj for key in _PAYLOADS):
                return Message(DataKind.NONE, None, [], seldon_json.decode_meta(obj.get("meta")))
            return seldon_json.decode_message(obj, "response", lists=True)
        except BadRequest as exc:  # the node's fault, not the caller's
            raise UserCodeError(f"invalid answer: {exc}") from None


# ---------------------------------------------------------------- Seldon protobuf, over gRPC

_GRPC_PATHS = {
    "predict": "/seldon.protos.Model/Predict",
    "transform_input": "/seldon.protos.Transformer/TransformInput",
    "transform_output": "/seldon.protos.OutputTransformer/TransformOutput",
    "route": "/seldon.protos.Router/Route",
    "aggregate": "/seldon.protos.Combiner/Aggregate",
    "send_feedback": "/seldon.protos.Model/SendFeedback",
}


def metadata_from_proto(meta: Any) -> dict[str, Any]:
    """``SeldonModelMetadata`` as the dict a node's REST ``/metadata`` answers."""

    def tensor(item: Any) -> dict[str, Any]:
        if item.messagetype:
            out: dict[str, Any] = {"messagetype": item.messagetype}
            if item.HasField("schema"):
                out["schema"] = json_format.MessageToDict(item.schema)
            return out
        return {"name": item.name, "datatype": item.datatype, "shape": list(item.shape)}

    return {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": [tensor(i) for i in meta.inputs],
        "outputs": [tensor(o) for o in meta.outputs],
        "custom": dict(meta.custom),
    }


def _message_proto(msg: Message) -> Any:
    # the fields are authoritative: ``raw`` may be the wire form of an earlier hop whose
    # meta (puid, requestPath) the executor has since changed
    return seldon_pb.encode_message(replace(msg, raw=None) if msg.raw is not None else msg)


def _proto_answer(response: Any) -> Message:
    """Decode a node's answer; one without a payload (a bare ``meta``) is still an answer."""
    if response.WhichOneof("data_oneof") is None and not response.HasField("status"):
        return Message(DataKind.NONE, None, [], seldon_pb.decode_meta(response.meta))
    try:
        return seldon_pb.decode_message(response, "response")
    except BadRequest as exc:  # the node's fault, not the caller's
        raise UserCodeError(f"invalid answer: {exc}") from None


class SeldonProtoCodec(GrpcCodec):
    """Seldon's protobuf over gRPC (``spec.transport: grpc``), as Seldon's executor sends it.

    The gRPC channel refuses a call larger than its message limit."""

    def call(self, method: str, message: Message) -> GrpcRequest:
        return _GRPC_PATHS[method], _message_proto(message).SerializeToString()

    def batch(self, messages: list[Message]) -> GrpcRequest:
        request = pb.SeldonMessageList(seldonMessages=[_message_proto(m) for m in messages])
        return _GRPC_PATHS["aggregate"], request.SerializeToString()

    def feedback(self, feedback: Feedback) -> GrpcRequest:
        out = pb.Feedback(reward=feedback.reward)
        for part in ("request", "response", "truth"):
            value = getattr(feedback, part)
            if value is not None:
                getattr(out, part).CopyFrom(_message_proto(value))
        return _GRPC_PATHS["send_feedback"], out.SerializeToString()

    def answer(self, request: GrpcRequest, body: bytes) -> Message:
        try:
            response = pb.SeldonMessage.FromString(body)
        except DecodeError as exc:
            raise UserCodeError(f"invalid answer: {exc}") from None
        return _proto_answer(response)
