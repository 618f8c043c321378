"""Nodes served by other processes: which ones, and the client that calls them over gRPC.

:func:`plan_processes` maps a deployment onto processes as Seldon's operator maps it onto
pods: each componentSpec container that implements a graph node, once per replica, with the
env the operator gives a container. Built-ins have no container and stay in the orchestrator.

:class:`GrpcNodeClient` calls a node as Seldon's executor calls a pod (``Model/Predict``,
``Router/Route``, ``Combiner/Aggregate``...), so any Seldon-compatible microservice can be a
node; as in Seldon, ``ndarray`` numbers come back as floats. One long-lived ``grpc.aio``
channel per replica carries every call (HTTP/2 multiplexes them); calls rotate round-robin
over the replicas that answered their last health check. A replica whose process died is
marked down (by the supervisor that saw it die, or by the first call that cannot reach it)
and probed until it answers again, so a restarted process on the same address rejoins
without anyone rebuilding the client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import orjson
from google.protobuf import empty_pb2, json_format

from infergraph.errors import (
    BadMetadata,
    BadRequest,
    DeadlineExceeded,
    InferGraphError,
    NotFound,
    NotImplementedByComponent,
    NotReady,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.graph.spec import Deployment, PredictorSpec, is_prepackaged, walk_graph
from infergraph.protocol import seldon_pb
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.protocol.seldon_pb import pb
from infergraph.routers import builtin_class

__all__ = ["HOST", "GrpcNodeClient", "NodeProcess", "error_from_rpc", "plan_processes"]

HOST = "127.0.0.1"
"""Where node processes listen: the orchestrator is their only client."""

_PATHS: dict[str, tuple[str, Any]] = {
    "predict": ("/seldon.protos.Model/Predict", pb.SeldonMessage),
    "transform_input": ("/seldon.protos.Transformer/TransformInput", pb.SeldonMessage),
    "transform_output": ("/seldon.protos.OutputTransformer/TransformOutput", pb.SeldonMessage),
    "route": ("/seldon.protos.Router/Route", pb.SeldonMessage),
    "aggregate": ("/seldon.protos.Combiner/Aggregate", pb.SeldonMessage),
    "send_feedback": ("/seldon.protos.Model/SendFeedback", pb.SeldonMessage),
    "metadata": ("/seldon.protos.Model/Metadata", pb.SeldonModelMetadata),
}
_ERRORS: dict[grpc.StatusCode, type[InferGraphError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: BadRequest,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: NotReady,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: PayloadTooLarge,
    grpc.StatusCode.UNIMPLEMENTED: NotImplementedByComponent,
}
# Calls that may be sent again to another replica when the first one was unreachable.
# Feedback is not: a reward counted twice would skew a bandit.
_RETRIED = frozenset({"predict", "transform_input", "transform_output", "route", "aggregate"})
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def error_from_rpc(exc: grpc.aio.AioRpcError) -> InferGraphError:
    """The infergraph error a node's gRPC status stands for, keeping the node's message."""
    kind = _ERRORS.get(exc.code(), UserCodeError)
    return kind(exc.details() or exc.code().name)


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


@dataclass(eq=False)
class _Replica:
    address: str
    channel: grpc.aio.Channel
    calls: dict[str, grpc.aio.UnaryUnaryMultiCallable]
    up: bool = False
    probe: asyncio.Task[None] | None = field(default=None, repr=False)


class GrpcNodeClient:
    """A :class:`~infergraph.graph.plan.NodeClient` for a node served by other processes.

    ``addresses`` are ``host:port`` of the node's replicas. ``timeout`` (seconds) is the gRPC
    deadline of each call; ``load_timeout`` bounds how long :meth:`load` waits for every
    replica to answer; ``probe_interval`` paces the health probes of a replica that is down.
    """

    def __init__(
        self,
        name: str,
        addresses: Sequence[str],
        *,
        max_message_size: int,
        timeout: float | None = None,
        load_timeout: float = 60.0,
        probe_interval: float = 0.5,
    ) -> None:
        if not addresses:
            raise ValueError(f"node {name!r} needs at least one address")
        self.name = name
        self.addresses = tuple(addresses)
        self.timeout = timeout
        self.load_timeout = load_timeout
        self.probe_interval = probe_interval
        self._options = [
            ("grpc.max_send_message_length", max_message_size),
            ("grpc.max_receive_message_length", max_message_size),
            # a restarted replica must be found again in well under a second, not after
            # gRPC's default back-off (up to two minutes)
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        self._replicas: list[_Replica] = []
        self._next = 0
        self._metadata: dict[str, Any] | None = None
        self._metadata_error: InferGraphError | None = None
        self._closed = False

    # ---------------------------------------------------------------- channels and health

    def _open(self) -> list[_Replica]:
        """Channels are made on first use: ``grpc.aio`` binds them to the running loop."""
        if self._closed:
            raise NotReady(f"the client of node {self.name!r} is closed")
        if not self._replicas:
            for address in self.addresses:
                channel = grpc.aio.insecure_channel(address, options=self._options)
                calls = {
                    method: channel.unary_unary(
                        path,
                        request_serializer=_serialize,
                        response_deserializer=answer.FromString,
                    )
                    for method, (path, answer) in _PATHS.items()
                }
                self._replicas.append(_Replica(address, channel, calls))
        return self._replicas

    async def _ping(self, replica: _Replica, timeout: float) -> bool:
        """Ask for ``Model/Metadata``; any answer but "unreachable" means the replica is up."""
        try:
            answer = await replica.calls["metadata"](
                empty_pb2.Empty(), timeout=timeout, wait_for_ready=True
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UNREACHABLE:
                return False
            if self._metadata is None:  # e.g. BadMetadata: reported by metadata()
                self._metadata_error = BadMetadata(exc.details() or exc.code().name)
        else:
            if self._metadata is None:
                self._metadata, self._metadata_error = metadata_from_proto(answer), None
        replica.up = True
        return True

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

    def mark_down(self, address: str) -> None:
        """Stop sending calls to ``address`` and probe it until it answers again."""
        for replica in self._replicas:
            if replica.address == address:
                replica.up = False
                if not self._closed and (replica.probe is None or replica.probe.done()):
                    replica.probe = asyncio.get_running_loop().create_task(self._probe(replica))

    async def _probe(self, replica: _Replica) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            started = loop.time()
            if await self._ping(replica, self.probe_interval):
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
        """Stop probing; channels close in :meth:`aclose` (or when collected)."""
        self._closed = True
        for replica in self._replicas:
            if replica.probe is not None:
                replica.probe.cancel()

    async def aclose(self) -> None:
        """Stop probing and close the channels (what ``close()`` cannot await)."""
        self.close()
        replicas, self._replicas = self._replicas, []
        for replica in replicas:
            if replica.probe is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await replica.probe
            await replica.channel.close()

    # ---------------------------------------------------------------- calls

    def _pick(self, avoid: set[str]) -> _Replica:
        replicas = self._open()
        count = len(replicas)
        for step in range(count):
            replica = replicas[(self._next + step) % count]
            if replica.up and replica.address not in avoid:
                self._next = (self._next + step + 1) % count
                return replica
        raise NotReady(f"no replica of node {self.name!r} is reachable (restarting?)")

    async def _call(self, method: str, request: Any) -> Message:
        tried: set[str] = set()
        while True:
            replica = self._pick(tried)
            try:
                return _answer(await replica.calls[method](request, timeout=self.timeout))
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code is grpc.StatusCode.UNAVAILABLE:
                    self.mark_down(replica.address)
                    tried.add(replica.address)
                    if method in _RETRIED and any(
                        r.up and r.address not in tried for r in self._replicas
                    ):
                        continue
                raise error_from_rpc(exc) from None

    async def predict(self, request: Message, wire: str = "json") -> Message:
        return await self._call("predict", _message_proto(request))

    async def transform_input(self, request: Message, wire: str = "json") -> Message:
        return await self._call("transform_input", _message_proto(request))

    async def transform_output(self, request: Message, wire: str = "json") -> Message:
        return await self._call("transform_output", _message_proto(request))

    async def route(self, request: Message, wire: str = "json") -> Message:
        return await self._call("route", _message_proto(request))

    async def aggregate(
        self, requests: list[Message], wire: str = "json", raw: Any = None
    ) -> Message:
        batch = pb.SeldonMessageList(seldonMessages=[_message_proto(m) for m in requests])
        return await self._call("aggregate", batch)

    async def send_feedback(self, feedback: Feedback, wire: str = "json") -> Message:
        return await self._call("send_feedback", _feedback_proto(feedback))


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


# ---------------------------------------------------------------- which nodes run where


@dataclass(frozen=True)
class NodeProcess:
    """One process to run: a replica of the container that implements a node."""

    predictor: str
    node: str
    image: str
    env: dict[str, str]
    """The container's env and what Seldon's operator adds (MODEL_NAME, PREDICTIVE_UNIT_ID...)."""
    http_port: int
    grpc_port: int
    metrics_port: int
    tag: str
    """How logs and errors name it: ``node-replica`` (``predictor/node-replica`` if needed)."""

    @property
    def address(self) -> str:
        return f"{HOST}:{self.grpc_port}"


def replicas_of(deployment: Deployment, predictor: PredictorSpec, index: int) -> int:
    """Seldon's precedence; an autoscaler's minimum when the componentSpec has one."""
    component = predictor.component_specs[index]
    if component.keda_spec is not None:
        return max(1, component.keda_spec.min_replica_count or 1)
    if component.hpa_spec is not None:
        return max(1, component.hpa_spec.min_replicas or 1)
    for value in (component.replicas, predictor.replicas, deployment.spec.replicas):
        if value is not None:
            return max(1, value)  # 0 (scaled to zero) still runs one here
    return 1


def plan_processes(deployment: Deployment, port: Callable[[], int]) -> list[NodeProcess]:
    """Every node process of the deployment; ``port()`` hands out a free port.

    Nodes left out (built-ins, and nodes that cannot be served) go to the local factory,
    which serves or refuses them exactly as it does without ``--processes``."""
    several = len(deployment.spec.predictors) > 1
    out = []
    for predictor in deployment.spec.predictors:
        for _, node in walk_graph(predictor.graph, "graph"):
            implementation = node.implementation or ""
            if builtin_class(implementation) or is_prepackaged(implementation):
                continue
            found = next(((i, c) for i, c in predictor.containers() if c.name == node.name), None)
            env = {e.name: e.value for e in found[1].env if e.value is not None} if found else {}
            if found is None or not env.get("MODEL_NAME"):
                continue
            index, container = found
            image = container.image or env["MODEL_NAME"]
            params = [
                {"name": p.name, "value": p.value, "type": str(p.type)} for p in node.parameters
            ]
            env |= {
                "PREDICTIVE_UNIT_ID": node.name,
                "PREDICTIVE_UNIT_IMAGE": image,
                "PREDICTIVE_UNIT_PARAMETERS": orjson.dumps(params).decode(),
                "PREDICTOR_ID": predictor.name,
                "PREDICTOR_LABELS": orjson.dumps(predictor.labels).decode(),
                "SELDON_DEPLOYMENT_ID": deployment.metadata.name,
            }
            for replica in range(replicas_of(deployment, predictor, index)):
                tag = f"{predictor.name}/" * several + f"{node.name}-{replica}"
                ports = (port(), port(), port())
                out.append(NodeProcess(predictor.name, node.name, image, env, *ports, tag))
    return out
