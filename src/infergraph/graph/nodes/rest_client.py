"""The REST client of a node served by other processes: Seldon's default node transport.

Seldon's executor calls each node over REST unless ``spec.transport`` is ``grpc``. So does
:class:`RestNodeClient`, in the protocol of the codec it is given: Seldon JSON
(:class:`~infergraph.graph.nodes.seldon_codecs.SeldonJsonCodec`, the default) or binary V2
(:class:`~infergraph.graph.nodes.v2_codecs.V2RestCodec`). The client owns the connections,
the probes (``GET /ready`` and the node's ``/metadata``) and what the wire raises
(:mod:`~infergraph.graph.nodes.wire_errors`); replicas and retries are
:class:`~infergraph.graph.nodes.replicated.ReplicatedNodeClient`'s.

Why REST and not gRPC between processes: Python's gRPC costs about 0.5 ms a hop, mostly in
the node's gRPC server; the node's httptools server answers REST in about a tenth of that,
and :class:`~infergraph.wire.http1.client.HttpPool` keeps the client's side as small.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from infergraph.errors import BadMetadata, BadRequest
from infergraph.graph.nodes.codecs import RestCodec, RestRequest
from infergraph.graph.nodes.replicated import Replica, ReplicatedNodeClient
from infergraph.graph.nodes.seldon_codecs import SeldonJsonCodec, seldon_error
from infergraph.graph.nodes.wire_errors import HTTP_FAILURES
from infergraph.protocol import seldon_json
from infergraph.protocol.message import Message
from infergraph.wire.http1.client import HttpPool
from infergraph.wire.tls import ReloadingContext
from infergraph.wire.tokens import BearerTokens

__all__ = ["RestNodeClient"]

_POLL_S = 0.05
"""How often a replica that is not ready yet is asked again, within one probe."""


class RestNodeClient(ReplicatedNodeClient[HttpPool]):
    """Calls a node's REST API as Seldon's executor does (``spec.transport: rest``).

    Each replica has a pool of keep-alive connections. ``codec`` is the hop's protocol
    (by default Seldon JSON); calls larger than ``max_message_size`` are refused by it,
    answers larger than it are not read: the node process has the same limit.
    ``connect_timeout`` bounds opening a connection.
    """

    transport = "rest"
    codec: RestCodec

    def __init__(
        self,
        name: str,
        addresses: Sequence[str],
        *,
        max_message_size: int,
        codec: RestCodec | None = None,
        timeout: float | None = None,
        load_timeout: float = 60.0,
        probe_interval: float = 0.5,
        connect_timeout: float = 5.0,
        tls: ReloadingContext | None = None,
        auth: BearerTokens | None = None,
    ) -> None:
        super().__init__(
            name,
            addresses,
            codec=codec or SeldonJsonCodec(max_message_size),
            max_message_size=max_message_size,
            timeout=timeout,
            load_timeout=load_timeout,
            probe_interval=probe_interval,
            tls=tls,
            auth=auth,
        )
        self.connect_timeout = connect_timeout

    def _connect(self, address: str) -> HttpPool:
        return HttpPool(
            address,
            max_response_size=self.max_message_size,
            connect_timeout=self.connect_timeout,
            tls=self.tls,
            auth=self.auth,
        )

    async def _disconnect(self, conn: HttpPool) -> None:
        await conn.aclose()

    def close(self) -> None:
        """Stop probing and close every connection."""
        super().close()
        for replica in self._replicas:
            replica.conn.close()

    def _went_down(self, replica: Replica[HttpPool]) -> None:
        replica.conn.drop_idle()  # connections to a dead process: never worth trying

    async def _ping(self, replica: Replica[HttpPool], timeout: float) -> bool:
        """Ask again every 50 ms, up to ``timeout``, until the replica is ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                if await self._ready(replica.conn, max(deadline - loop.time(), 0.001)):
                    replica.up = True
                    return True
            except HTTP_FAILURES:
                pass
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(_POLL_S, left))

    async def _ready(self, pool: HttpPool, timeout: float) -> bool:
        """``GET /ready`` answers 200 once the node's ``load()`` has run; the first replica
        that is ready also gives the node's ``/metadata``."""
        status, _ = await pool.request("GET", "/ready", timeout=timeout)
        if status != 200:
            return False
        if self._metadata is None:
            status, body = await pool.request("GET", "/metadata", timeout=timeout)
            meta = None
            try:
                meta = seldon_json.loads(body) if status == 200 else None
            except BadRequest as exc:
                status, body = 500, str(exc).encode()
            if isinstance(meta, dict):
                self._metadata, self._metadata_error = meta, None
            else:  # e.g. BadMetadata: reported by metadata()
                self._metadata_error = BadMetadata(seldon_error(status, body)[0])
        return True

    async def _send(self, replica: Replica[HttpPool], method: str, request: RestRequest) -> Message:
        path, body, headers = request
        with self._wire_errors:
            status, answer, header_length = await replica.conn.exchange(
                "POST", path, body, headers, self.timeout, method != "send_feedback"
            )
        return self.codec.answer(request, status, answer, header_length)
