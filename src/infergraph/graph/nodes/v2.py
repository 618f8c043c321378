"""Node clients that carry graph hops as binary Open Inference Protocol (V2) requests.

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
gRPC in a V2 hop. ``send_feedback`` goes in the Seldon protocol of the transport. Everything
else (replicas, probes, retries) is the Seldon clients'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from infergraph.errors import BadRequest, InferGraphError, PayloadTooLarge, UserCodeError
from infergraph.graph.nodes.grpc_client import GrpcNodeClient
from infergraph.graph.nodes.replicated import Replica
from infergraph.graph.nodes.rest_client import RestNodeClient
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
from infergraph.status import ERROR_BY_HTTP
from infergraph.wire.http1.client import HttpPool

__all__ = ["V2GrpcNodeClient", "V2RestNodeClient"]

HOP = "v2"
"""The ``_send`` method name of a V2 hop (whatever node method it asks for); retried on
another replica like the calls it carries."""
FEEDBACK_HOP = "v2_feedback"
"""A feedback as a V2 hop: a call of its own, never sent again to another replica."""
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


class _V2Hops:
    """predict, transform_input, transform_output and route as V2 hops when worth it; the
    Seldon client class after this one in the MRO does the rest."""

    async def predict(self, request: Message, wire: str = "json") -> Message:
        return await self._hop_or_seldon("predict", request, wire)

    async def transform_input(self, request: Message, wire: str = "json") -> Message:
        return await self._hop_or_seldon("transform_input", request, wire)

    async def transform_output(self, request: Message, wire: str = "json") -> Message:
        return await self._hop_or_seldon("transform_output", request, wire)

    async def route(self, request: Message, wire: str = "json") -> Message:
        return await self._hop_or_seldon("route", request, wire)

    async def _hop_or_seldon(self, method: str, request: Message, wire: str) -> Message:
        if not self._goes_v2(request):
            seldon: Any = getattr(super(), method)
            answer: Message = await seldon(request, wire)
            return answer
        answer = await self._call(HOP, self._hop(request, method))
        return answer

    @staticmethod
    def _goes_v2(message: Message) -> bool:
        """Whether ``message`` travels as a V2 hop on this transport."""
        raise NotImplementedError

    if TYPE_CHECKING:  # supplied by the Seldon client and the subclass

        async def _call(self, method: str, request: Any) -> Message: ...

        def _hop(self, message: Message, method: str) -> Any: ...


class V2RestNodeClient(_V2Hops, RestNodeClient):
    """A node over REST: large arrays as binary V2 to ``/v2/models/<node>/infer``."""

    _goes_v2 = staticmethod(binary_worthy)

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        self._infer_path = f"/v2/models/{name}/infer"

    def _hop(self, message: Message, method: str) -> tuple[bytes, int | None]:
        body, header_length = v2_rest.encode_request(
            write_call(message, method, self.name), binary=True
        )
        if len(body) > self.max_message_size:
            raise PayloadTooLarge(
                f"a request of {len(body)} bytes exceeds the limit of {self.max_message_size} "
                "bytes (the message size limit)"
            )
        return body, header_length

    async def _send(self, replica: Replica[HttpPool], method: str, request: Any) -> Message:
        if method != HOP:
            return await super()._send(replica, method, request)
        body, header_length = request
        headers = {"content-type": "application/octet-stream"}
        if header_length is not None:
            headers[v2_rest.INFERENCE_HEADER_CONTENT_LENGTH] = str(header_length)
        with self._wire_errors:
            status, answer, answer_length = await replica.conn.exchange(
                "POST", self._infer_path, body, headers, self.timeout
            )
        if not 200 <= status < 300:
            raise v2_error(status, answer)
        try:
            return read_answer(v2_rest.decode_response(answer, answer_length))
        except BadRequest as exc:  # the node's fault, not the caller's
            raise UserCodeError(f"invalid answer: {exc}") from None


class V2GrpcNodeClient(_V2Hops, GrpcNodeClient):
    """A node over gRPC: hops as ``inference.GRPCInferenceService/ModelInfer``, raw."""

    _goes_v2 = staticmethod(v2_carries)

    paths = {
        **GrpcNodeClient.paths,
        HOP: ("/inference.GRPCInferenceService/ModelInfer", pb.ModelInferResponse),
        FEEDBACK_HOP: ("/inference.GRPCInferenceService/ModelInfer", pb.ModelInferResponse),
    }

    def _hop(self, message: Message, method: str) -> Any:
        return v2_pb.encode_request(write_call(message, method, self.name), raw=True)

    async def send_feedback(self, feedback: Feedback, wire: str = "json") -> Message:
        """The feedback as Seldon JSON in a V2 hop, so the node's ``send_feedback`` gets the
        request's integers as integers (Seldon's protobuf makes them floats); with
        ``customData``, which only protobuf carries, as Seldon's ``Feedback``."""
        parts = (feedback.request, feedback.response, feedback.truth)
        if not all(v2_carries(m) for m in parts if m is not None):
            return await super().send_feedback(feedback, wire)
        request = v2_pb.encode_request(write_feedback(feedback, self.name), raw=True)
        return await self._call(FEEDBACK_HOP, request)

    async def aggregate(
        self, requests: list[Message], wire: str = "json", raw: Any = None
    ) -> Message:
        """The combiner's inputs as Seldon JSON in a V2 hop; with ``customData``, which
        only protobuf carries, as a ``SeldonMessageList``."""
        if not all(v2_carries(m) for m in requests):
            return await super().aggregate(requests, wire, raw)
        request = v2_pb.encode_request(write_aggregate(requests, self.name), raw=True)
        return await self._call(HOP, request)

    def _answer(self, method: str, answer: Any) -> Message:
        if method not in (HOP, FEEDBACK_HOP):
            return super()._answer(method, answer)
        try:
            return read_answer(v2_pb.decode_response(answer))
        except BadRequest as exc:
            raise UserCodeError(f"invalid answer: {exc}") from None
