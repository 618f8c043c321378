"""The codecs that carry graph hops as binary Open Inference Protocol (V2) requests.

``predict``, ``transform_input``, ``transform_output`` and ``route`` go to the node's V2
``infer`` (REST with the binary tensor extension, or gRPC ``ModelInfer`` with
``raw_input_contents``): tensors travel as raw bytes, never as JSON numbers, and the
Seldon fields V2 has no place for ride in one parameter (:mod:`infergraph.protocol.v2_hop`).

Which messages depends on the transport, so that no number changes type on the way:

- over REST, every V2 message, every numpy array of at least :data:`BINARY_FROM`
  elements, and smaller ones that JSON would change (``float32``, NaN). A smaller Seldon
  message (a row or two, a string, JSON, a list a model returned) goes as Seldon JSON,
  which keeps every number as it is: measured (``bench/graph.py``), a one-row hop costs
  84 µs of CPU in Seldon JSON and 164 µs as V2, whose fixed costs (two JSON headers, the
  envelope) only pay off once the tensor is large (a 1000x100 tensor is 1.7 MB of JSON
  text, 400 KB binary);
- over gRPC, every message but ``customData``, whatever its size: Seldon's protobuf would
  turn every ``ndarray``, ``tensor``, ``jsonData`` and tag number into a float, in the
  call and in the node's answer (a classifier's integer labels too). A small payload rides
  in the hop's parameter as JSON, which costs less than protobuf's ``Value`` per number.

``aggregate`` (a list of messages) goes as Seldon JSON: over REST to ``/aggregate``, over
gRPC in a V2 hop. ``send_feedback`` goes over REST in Seldon JSON, over gRPC in a V2 hop.
What does not go as V2 goes in the Seldon protocol of the transport
(:mod:`~infergraph.graph.nodes.seldon_codecs`), so each V2 codec holds the Seldon codec of
its transport. Everything else (replicas, probes, retries) is the clients'
(:class:`~infergraph.graph.nodes.rest_client.RestNodeClient`,
:class:`~infergraph.graph.nodes.grpc_client.GrpcNodeClient`).
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError

from infergraph.errors import BadRequest, InferGraphError, PayloadTooLarge, UserCodeError
from infergraph.graph.nodes.codecs import GrpcCodec, GrpcRequest, RestCodec, RestRequest
from infergraph.graph.nodes.seldon_codecs import SeldonJsonCodec, SeldonProtoCodec
from infergraph.protocol import v2_pb, v2_rest
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.v2_hop import (
    json_gives_back,
    read_answer,
    write_aggregate,
    write_call,
    write_feedback,
)
from infergraph.protocol.v2_types import InferenceRequest
from infergraph.status import ERROR_BY_HTTP

__all__ = ["BINARY_FROM", "V2GrpcCodec", "V2RestCodec", "binary_worthy", "v2_carries", "v2_error"]

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
"""Where a V2 hop goes over gRPC, whatever node method it asks for."""
BINARY_FROM = 256
"""Over REST, tensors of this many elements or more travel as binary V2; smaller ones as
Seldon JSON, when it gives them back as they are."""


def binary_worthy(message: Message) -> bool:
    """Whether ``message`` goes as a V2 hop over REST: a V2 message, a large numeric
    tensor, or one that Seldon JSON would not give back as it is (``float32``, NaN, an
    empty array's shape). An ``ndarray`` list is not: it travels as the JSON it is."""
    if message.kind is DataKind.V2:
        return True
    if not message.kind.is_data:
        return False
    data = message.data
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "biuf":
            return False
        return data.size >= BINARY_FROM or not json_gives_back(data)
    if isinstance(data, list) and data and message.kind is not DataKind.NDARRAY:
        first = data[0]
        rows = len(data)
        width = len(first) if isinstance(first, list) else 1
        return rows * width >= BINARY_FROM
    return False


def v2_carries(message: Message) -> bool:
    """Whether a V2 hop can carry ``message``: every kind but ``customData``."""
    return message.kind is not DataKind.CUSTOM


def v2_error(status: int, body: bytes) -> InferGraphError:
    """A node's V2 error answer (``{"error": ...}``) as the error it stands for."""
    try:
        message = str(v2_rest.decode_error(body))
    except BadRequest:
        message = body[:1000].decode("utf-8", "replace").strip() or f"HTTP {status}"
    kind = ERROR_BY_HTTP.get(status)
    if kind is not None:
        return kind(message)
    return UserCodeError(message, status_code=status if status >= 400 else None)


class V2RestCodec(RestCodec):
    """Over REST: large arrays as binary V2 to ``/v2/models/<node>/infer``, the rest as
    Seldon JSON. ``node`` names the model the hop asks for; calls larger than
    ``max_message_size`` are refused here, before anything is sent."""

    def __init__(self, node: str, max_message_size: int) -> None:
        self.node = node
        self.max_message_size = max_message_size
        self.seldon = SeldonJsonCodec(max_message_size)
        """What carries the calls that do not go as V2."""
        self.infer_path = f"/v2/models/{node}/infer"

    def call(self, method: str, message: Message) -> RestRequest:
        if not binary_worthy(message):
            return self.seldon.call(method, message)
        body, header_length = v2_rest.encode_request(
            write_call(message, method, self.node), binary=True
        )
        if len(body) > self.max_message_size:
            raise PayloadTooLarge(
                f"a request of {len(body)} bytes exceeds the limit of {self.max_message_size} "
                "bytes (the message size limit)"
            )
        headers = {"content-type": "application/octet-stream"}
        if header_length is not None:
            headers[v2_rest.INFERENCE_HEADER_CONTENT_LENGTH] = str(header_length)
        return self.infer_path, body, headers

    def batch(self, messages: list[Message]) -> RestRequest:
        return self.seldon.batch(messages)

    def feedback(self, feedback: Feedback) -> RestRequest:
        return self.seldon.feedback(feedback)

    def answer(
        self, request: RestRequest, status: int, body: bytes, header_length: int | None
    ) -> Message:
        if request[0] != self.infer_path:
            return self.seldon.answer(request, status, body, header_length)
        if not 200 <= status < 300:
            raise v2_error(status, body)
        try:
            return read_answer(v2_rest.decode_response(body, header_length))
        except BadRequest as exc:  # the node's fault, not the caller's
            raise UserCodeError(f"invalid answer: {exc}") from None


class V2GrpcCodec(GrpcCodec):
    """Over gRPC: every call but ``customData`` as ``inference.GRPCInferenceService/
    ModelInfer``, raw; ``customData``, which only protobuf carries, as Seldon's protobuf.
    ``node`` names the model the hop asks for."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.seldon = SeldonProtoCodec()
        """What carries the calls that do not go as V2."""

    def _hop(self, request: InferenceRequest) -> GrpcRequest:
        return MODEL_INFER, v2_pb.encode_request(request, raw=True).SerializeToString()

    def call(self, method: str, message: Message) -> GrpcRequest:
        if not v2_carries(message):
            return self.seldon.call(method, message)
        return self._hop(write_call(message, method, self.node))

    def batch(self, messages: list[Message]) -> GrpcRequest:
        """The combiner's inputs as Seldon JSON in a V2 hop; with ``customData``, which
        only protobuf carries, as a ``SeldonMessageList``."""
        if not all(v2_carries(m) for m in messages):
            return self.seldon.batch(messages)
        return self._hop(write_aggregate(messages, self.node))

    def feedback(self, feedback: Feedback) -> GrpcRequest:
        """The feedback as Seldon JSON in a V2 hop, so the node's ``send_feedback`` gets the
        request's integers as integers (Seldon's protobuf makes them floats); with
        ``customData``, which only protobuf carries, as Seldon's ``Feedback``."""
        parts = (feedback.request, feedback.response, feedback.truth)
        if not all(v2_carries(m) for m in parts if m is not None):
            return self.seldon.feedback(feedback)
        return self._hop(write_feedback(feedback, self.node))

    def answer(self, request: GrpcRequest, body: bytes) -> Message:
        if request[0] != MODEL_INFER:
            return self.seldon.answer(request, body)
        try:
            return read_answer(v2_pb.decode_response(pb.ModelInferResponse.FromString(body)))
        except (DecodeError, BadRequest) as exc:  # the node's fault, not the caller's
            raise UserCodeError(f"invalid answer: {exc}") from None
