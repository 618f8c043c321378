"""What gRPC and REST node clients share: replicas, round-robin, health, retries.

A node served by other processes has one or more replicas (processes, like pods). Calls
rotate round-robin over the replicas that answered their last health check. A replica whose
process died is marked down (by the supervisor that saw it die, or by the first call that
cannot reach it) and probed until it answers again, so a restarted process on the same
address rejoins without anyone rebuilding the client. Whoever marks a replica down says
why, so that a call refused meanwhile says "restarting" or "unreachable", not "still
loading". The transports (:class:`~infergraph.graph.nodes.grpc_client.GrpcNodeClient`,
:class:`~infergraph.graph.nodes.rest_client.RestNodeClient`) add only how to connect, probe
and send; the hop's protocol is the codec each is given
(:mod:`~infergraph.graph.nodes.codecs`), and what the wire raises becomes infergraph's errors
in one place (:mod:`~infergraph.graph.nodes.wire_errors`). Keeping the rest here makes them
behave alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from infergraph.errors import InferGraphError, NotReady
from infergraph.graph.nodes.codecs import NodeCodec
from infergraph.graph.nodes.wire_errors import Unreachable, WireErrors
from infergraph.protocol.message import Feedback, Message
from infergraph.wire.tls import ReloadingContext
from infergraph.wire.tokens import BearerTokens

__all__ = ["Replica", "ReplicatedNodeClient"]

C = TypeVar("C")

# Calls that may be sent again to another replica when the first one was unreachable,
# in whatever protocol their codec sends them. Feedback is not: a reward counted twice
# would skew a bandit.
_RETRIED = frozenset({"predict", "transform_input", "transform_output", "route", "aggregate"})


@dataclass(eq=False)
class Replica(Generic[C]):
    address: str
    conn: C
    """The transport's handle: a gRPC channel's calls, a pool of HTTP connections."""
    up: bool = False
    probe: asyncio.Task[None] | None = field(default=None, repr=False)
    down_reason: str = ""
    """Why it was marked down, said after the node's name (``is restarting: ...``); empty
    once it answers again, and before it ever answered (it is still loading)."""


class ReplicatedNodeClient(ABC, Generic[C]):
    """A :class:`~infergraph.graph.plan.NodeClient` for a node served by other processes.

    What does not depend on the transport lives here, so gRPC and REST behave alike:
    round-robin over the replicas that are up, marking down and probing, waiting at load,
    the metadata fetched once, and sending a call elsewhere when its replica is unreachable
    (except feedback). ``timeout`` (seconds) bounds each call; ``load_timeout`` bounds how
    long :meth:`load` waits for every replica; ``probe_interval`` paces the probes of a
    replica that is down; ``tls`` and ``auth`` secure the hop (TLS, a bearer token).
    ``codec`` encodes each call and reads its answer, in the hop's protocol.
    """

    transport: ClassVar[str]
    """The ``method`` label of node-call metrics (``PlanNode.transport``)."""

    def __init__(
        self,
        name: str,
        addresses: Sequence[str],
        *,
        codec: NodeCodec[Any],
        max_message_size: int,
        timeout: float | None = None,
        load_timeout: float = 60.0,
        probe_interval: float = 0.5,
        tls: ReloadingContext | None = None,
        auth: BearerTokens | None = None,
    ) -> None:
        if not addresses:
            raise ValueError(f"node {name!r} needs at least one address")
        self.name = name
        self.addresses = tuple(addresses)
        self.codec = codec
        """The hop's protocol (:mod:`~infergraph.graph.nodes.codecs`)."""
        self.max_message_size = max_message_size
        self.timeout = timeout
        self._wire_errors = WireErrors(timeout)
        self.load_timeout = load_timeout
        self.probe_interval = probe_interval
        self.tls = tls
        """TLS of the connections to the replicas (``docs/security.md``); None: plain."""
        self.auth = auth
        """The bearer token sent on every call; None: none."""
        self._replicas: list[Replica[C]] = []
        self._next = 0
        self._metadata: dict[str, Any] | None = None
        self._metadata_error: InferGraphError | None = None
        self._closed = False

    # ---------------------------------------------------------------- what a transport adds

    @abstractmethod
    def _connect(self, address: str) -> C:
        """The handle for one replica; made on first use, inside the running loop."""

    @abstractmethod
    async def _disconnect(self, conn: C) -> None:
        """Close a replica's handle for good (at :meth:`aclose`)."""

    @abstractmethod
    async def _ping(self, replica: Replica[C], timeout: float) -> bool:
        """Wait up to ``timeout`` for the replica to answer; fetch the metadata if not yet
        known; set ``replica.up`` and return True once it answered."""

    @abstractmethod
    async def _send(self, replica: Replica[C], method: str, request: Any) -> Message:
        """One call of the codec's ``request``, inside ``self._wire_errors``:
        :class:`~infergraph.graph.nodes.wire_errors.Unreachable` when the replica cannot be
        reached."""

    def _went_down(self, replica: Replica[C]) -> None:
        """Told when a replica is marked down."""

    # ---------------------------------------------------------------- replicas and health

    def _open(self) -> list[Replica[C]]:
        if self._closed:
            raise NotReady(f"the client of node {self.name!r} is closed")
        if not self._replicas:
            self._replicas = [Replica(a, self._connect(a)) for a in self.addresses]
        return self._replicas

    async def load(self) -> None:
        """Wait until every replica answers (``load()`` of the user class runs remotely)."""
        replicas = self._open()
        answered = await asyncio.gather(*(self._ping(r, self.load_timeout) for r in replicas))
        silent = [r.address for r, ok in zip(replicas, answered, strict=True) if not ok]
        if silent:
            raise NotReady(
                f"node {self.name!r}: no answer from {', '.join(silent)} "
                f"within {self.load_timeout:g} s"
            )

    @property
    def ready(self) -> bool:
        """True while at least one replica answered its last health check."""
        return any(r.up for r in self._replicas)

    def replica_up(self, address: str) -> bool:
        return any(r.up for r in self._replicas if r.address == address)

    def down_reason(self) -> str | None:
        """Why no replica takes calls (``is restarting: its process ...``), or None: while a
        replica is up, and while none was ever marked down (the node is still loading)."""
        if self.ready:
            return None
        reasons = dict.fromkeys(r.down_reason for r in self._replicas if r.down_reason)
        return "; ".join(reasons) or None

    def mark_down(self, address: str, reason: str = "is unreachable") -> None:
        """Stop sending calls to ``address`` and probe it until it answers again.

        ``reason`` follows the node's name in the 503 of calls refused meanwhile."""
        for replica in self._replicas:
            if replica.address == address:
                replica.up = False
                replica.down_reason = reason
                self._went_down(replica)
                if not self._closed and (replica.probe is None or replica.probe.done()):
                    replica.probe = asyncio.get_running_loop().create_task(self._probe(replica))

    async def _probe(self, replica: Replica[C]) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            started = loop.time()
            if await self._ping(replica, self.probe_interval):
                replica.down_reason = ""
                return
            # an immediate "unavailable" must not turn into a busy loop
            await asyncio.sleep(max(0.0, started + self.probe_interval - loop.time()))

    def metadata(self) -> dict[str, Any]:
        """The node's metadata, fetched once at load."""
        if self._metadata_error is not None:
            raise self._metadata_error
        if self._metadata is None:
            raise NotReady(f"node {self.name!r} has not answered yet")
        return self._metadata

    def close(self) -> None:
        """Stop probing; connections close in :meth:`aclose`."""
        self._closed = True
        for replica in self._replicas:
            if replica.probe is not None:
                replica.probe.cancel()

    async def aclose(self) -> None:
        """Stop probing and close the connections (what ``close()`` cannot await)."""
        self.close()
        replicas, self._replicas = self._replicas, []
        for replica in replicas:
            if replica.probe is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await replica.probe
            await self._disconnect(replica.conn)

    # ---------------------------------------------------------------- calls

    def _pick(self, avoid: set[str]) -> Replica[C]:
        replicas = self._open()
        count = len(replicas)
        for step in range(count):
            replica = replicas[(self._next + step) % count]
            if replica.up and replica.address not in avoid:
                self._next = (self._next + step + 1) % count
                return replica
        if (reason := self.down_reason()) is not None:
            raise NotReady(f"node {self.name!r} {reason}; retry shortly", node=self.name)
        raise NotReady(
            f"node {self.name!r} is still loading: none of its replicas has answered yet",
            node=self.name,
        )

    async def _call(self, method: str, request: Any) -> Message:
        tried: set[str] = set()
        while True:
            replica = self._pick(tried)
            try:
                return await self._send(replica, method, request)
            except Unreachable as exc:
                if replica.up:  # else whoever marked it down meanwhile said why
                    self.mark_down(replica.address, f"is unreachable: {exc.error.message}")
                tried.add(replica.address)
                if method in _RETRIED and any(
                    r.up and r.address not in tried for r in self._replicas
                ):
                    continue
                raise exc.error from None

    # each call is encoded once, before a replica is chosen, so that a call sent again to
    # another replica is not encoded twice

    async def predict(self, request: Message, wire: str = "json") -> Message:
        return await self._call("predict", self.codec.call("predict", request))

    async def transform_input(self, request: Message, wire: str = "json") -> Message:
        return await self._call("transform_input", self.codec.call("transform_input", request))

    async def transform_output(self, request: Message, wire: str = "json") -> Message:
        return await self._call("transform_output", self.codec.call("transform_output", request))

    async def route(self, request: Message, wire: str = "json") -> Message:
        return await self._call("route", self.codec.call("route", request))

    async def aggregate(
        self, requests: list[Message], wire: str = "json", raw: Any = None
    ) -> Message:
        return await self._call("aggregate", self.codec.batch(requests))

    async def send_feedback(self, feedback: Feedback, wire: str = "json") -> Message:
        return await self._call("send_feedback", self.codec.feedback(feedback))
