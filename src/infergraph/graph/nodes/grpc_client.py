"""The gRPC client of a node served by other processes.

:class:`GrpcNodeClient` calls a node as Seldon's executor calls a pod with ``transport:
grpc`` (``Model/Predict``, ``Router/Route``, ``Combiner/Aggregate``...), so any
Seldon-compatible microservice can be a node; as in Seldon, ``ndarray`` numbers come back as
floats. Replicas, health and retries come from
:class:`~infergraph.graph.nodes.replicated.ReplicatedNodeClient`; REST, the default transport, is
:class:`~infergraph.graph.nodes.rest_client.RestNodeClient`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from google.protobuf import empty_pb2, json_format
from google.protobuf.message import DecodeError

from infergraph.errors import BadRequest, UserCodeError
from infergraph.graph.nodes.replicated import Replica, ReplicatedNodeClient
from infergraph.graph.nodes.wire_errors import RPC_UNREACHABLE, metadata_error
from infergraph.protocol import seldon_pb
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.protocol.seldon_pb import pb
from infergraph.wire.grpc.client import GrpcChannel, RpcError
from infergraph.wire.limits import Http2Limits

__all__ = ["GrpcNodeClient", "metadata_from_proto"]

_PATHS: dict[str, tuple[str, Any]] = {
    "predict": ("/seldon.protos.Model/Predict", pb.SeldonMessage),
    "transform_input": ("/seldon.protos.Transformer/TransformInput", pb.SeldonMessage),
    "transform_output": ("/seldon.protos.OutputTransformer/TransformOutput", pb.SeldonMessage),
    "route": ("/seldon.protos.Router/Route", pb.SeldonMessage),
    "aggregate": ("/seldon.protos.Combiner/Aggregate", pb.SeldonMessage),
    "send_feedback": ("/seldon.protos.Model/SendFeedback", pb.SeldonMessage),
    "metadata": ("/seldon.protos.Model/Metadata", pb.SeldonModelMetadata),
}
_POLL_S = 0.05
"""How often a replica that answers "unavailable" (still loading) is asked again."""


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


def _feedback_proto(feedback: Feedback) -> Any:
    out = pb.Feedback(reward=feedback.reward)
    for part in ("request", "response", "truth"):
        value = getattr(feedback, part)
        if value is not None:
            getattr(out, part).CopyFrom(_message_proto(value))
    return out


def _answer(response: Any) -> Message:
    """Decode a node's answer; one without a payload (a bare ``meta``) is still an answer."""
    if response.WhichOneof("data_oneof") is None and not response.HasField("status"):
        return Message(DataKind.NONE, None, [], seldon_pb.decode_meta(response.meta))
    try:
        return seldon_pb.decode_message(response, "response")
    except BadRequest as exc:  # the node's fault, not the caller's
        raise UserCodeError(f"invalid answer: {exc}") from None


class GrpcNodeClient(ReplicatedNodeClient[GrpcChannel]):
    """Calls a node as Seldon's executor does with ``transport: grpc``.

    One :class:`~infergraph.wire.grpc.client.GrpcChannel` per replica carries every call
    (HTTP/2 multiplexes them); a restarted replica is found again by its next call.
    """

    transport = "grpc"
    paths: dict[str, tuple[str, Any]] = _PATHS
    """method -> (gRPC path, answer message class)."""

    def __init__(self, *args: Any, http2: Http2Limits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http2 = http2 or Http2Limits()
        """The HTTP/2 limits each replica's channel holds its server to."""

    def _connect(self, address: str) -> GrpcChannel:
        return GrpcChannel(
            address,
            max_message_size=self.max_message_size,
            limits=self.http2,
            tls=self.tls,
            auth=self.auth,
        )

    async def _disconnect(self, conn: GrpcChannel) -> None:
        await conn.close()

    async def _rpc(
        self, channel: GrpcChannel, method: str, request: Any, timeout: float | None, **kw: Any
    ) -> Any:
        path, answer_type = self.paths[method]
        body = await channel.unary(path, request.SerializeToString(), timeout, **kw)
        try:
            return answer_type.FromString(body)
        except DecodeError as exc:
            raise UserCodeError(f"invalid answer: {exc}") from None

    async def _ping(self, replica: Replica[GrpcChannel], timeout: float) -> bool:
        """Ask for ``Model/Metadata`` up to ``timeout``; any answer but "unreachable" means
        the replica is up. A node that is still loading answers UNAVAILABLE: it is asked
        again every 50 ms, as a refused connection is retried."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                answer = await self._rpc(
                    replica.conn,
                    "metadata",
                    empty_pb2.Empty(),
                    max(deadline - loop.time(), 0.001),
                    wait_for_ready=True,
                )
            except RpcError as exc:
                if exc.code() in RPC_UNREACHABLE:
                    left = deadline - loop.time()
                    if left <= 0:
                        return False
                    await asyncio.sleep(min(_POLL_S, left))
                    continue
                if self._metadata is None:  # e.g. BadMetadata: reported by metadata()
                    self._metadata_error = metadata_error(exc)
            else:
                if self._metadata is None:
                    self._metadata, self._metadata_error = metadata_from_proto(answer), None
            replica.up = True
            return True

    async def _send(self, replica: Replica[GrpcChannel], method: str, request: Any) -> Message:
        with self._wire_errors:
            answer = await self._rpc(replica.conn, method, request, self.timeout)
        return self._answer(method, answer)

    def _answer(self, method: str, answer: Any) -> Message:
        return _answer(answer)

    def _message(self, msg: Message) -> Any:
        return _message_proto(msg)

    def _batch(self, msgs: list[Message]) -> Any:
        return pb.SeldonMessageList(seldonMessages=[_message_proto(m) for m in msgs])

    def _feedback(self, feedback: Feedback) -> Any:
        return _feedback_proto(feedback)
