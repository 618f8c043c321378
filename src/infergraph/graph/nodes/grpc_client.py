"""The gRPC client of a node served by other processes (``spec.transport: grpc``).

:class:`GrpcNodeClient` calls a node as Seldon's executor calls a pod with ``transport:
grpc``, in the protocol of the codec it is given: Seldon's protobuf
(:class:`~infergraph.graph.nodes.seldon_codecs.SeldonProtoCodec`, the default), so any
Seldon-compatible microservice can be a node, or V2
(:class:`~infergraph.graph.nodes.v2_codecs.V2GrpcCodec`). The client owns the channels, the
probe (Seldon's ``Model/Metadata``, whatever the codec) and what the wire raises
(:mod:`~infergraph.graph.nodes.wire_errors`); replicas, health and retries come from
:class:`~infergraph.graph.nodes.replicated.ReplicatedNodeClient`. REST, the default
transport, is :class:`~infergraph.graph.nodes.rest_client.RestNodeClient`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError

from infergraph.errors import UserCodeError
from infergraph.graph.nodes.codecs import GrpcCodec, GrpcRequest
from infergraph.graph.nodes.replicated import Replica, ReplicatedNodeClient
from infergraph.graph.nodes.seldon_codecs import SeldonProtoCodec, metadata_from_proto
from infergraph.graph.nodes.wire_errors import RPC_UNREACHABLE, metadata_error
from infergraph.protocol.message import Message
from infergraph.protocol.seldon_pb import pb
from infergraph.wire.grpc.client import GrpcChannel, RpcError
from infergraph.wire.limits import Http2Limits
from infergraph.wire.tls import ReloadingContext
from infergraph.wire.tokens import BearerTokens

__all__ = ["GrpcNodeClient"]

METADATA = "/seldon.protos.Model/Metadata"
"""What the probe asks every replica, whatever the codec."""
_POLL_S = 0.05
"""How often a replica that answers "unavailable" (still loading) is asked again."""


class GrpcNodeClient(ReplicatedNodeClient[GrpcChannel]):
    """Calls a node over gRPC as Seldon's executor does with ``transport: grpc``.

    One :class:`~infergraph.wire.grpc.client.GrpcChannel` per replica carries every call
    (HTTP/2 multiplexes them); a restarted replica is found again by its next call.
    ``codec`` is the hop's protocol (by default Seldon's protobuf); the channel refuses a
    call larger than ``max_message_size`` and does not read a larger answer. ``http2`` is
    what each channel holds its server to.
    """

    transport = "grpc"
    codec: GrpcCodec

    def __init__(
        self,
        name: str,
        addresses: Sequence[str],
        *,
        max_message_size: int,
        codec: GrpcCodec | None = None,
        timeout: float | None = None,
        load_timeout: float = 60.0,
        probe_interval: float = 0.5,
        tls: ReloadingContext | None = None,
        auth: BearerTokens | None = None,
        http2: Http2Limits | None = None,
    ) -> None:
        super().__init__(
            name,
            addresses,
            codec=codec or SeldonProtoCodec(),
            max_message_size=max_message_size,
            timeout=timeout,
            load_timeout=load_timeout,
            probe_interval=probe_interval,
            tls=tls,
            auth=auth,
        )
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

    async def _metadata_call(self, channel: GrpcChannel, timeout: float) -> Any:
        body = await channel.unary(
            METADATA, empty_pb2.Empty().SerializeToString(), timeout, wait_for_ready=True
        )
        try:
            return pb.SeldonModelMetadata.FromString(body)
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
                answer = await self._metadata_call(replica.conn, max(deadline - loop.time(), 0.001))
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

    async def _send(
        self, replica: Replica[GrpcChannel], method: str, request: GrpcRequest
    ) -> Message:
        path, body = request
        with self._wire_errors:
            answer = await replica.conn.unary(path, body, self.timeout)
        return self.codec.answer(request, answer)
