"""The REST client of a node served by other processes: Seldon's default node transport.

Seldon's executor calls each node over REST unless ``spec.transport`` is ``grpc``: a
Seldon JSON body POSTed to ``/predict``, ``/transform-input``, ``/transform-output``,
``/route``, ``/aggregate`` (a JSON list of SeldonMessages) or ``/send-feedback``. So does
:class:`RestNodeClient`, and any Seldon-compatible microservice can be a node. Over REST,
``ndarray`` integers stay integers (gRPC's protobuf turns them into floats), and a list a
node answers stays the list it is, as Seldon's executor passes it on.

Why REST and not gRPC between processes: Python's gRPC costs about 0.5 ms a hop, mostly in
the node's gRPC server; the node's httptools server answers REST in about a tenth of that,
and :class:`~infergraph.wire.http1.client.HttpPool` keeps the client's side as small.

A node's non-2xx answer keeps its HTTP status and its Seldon error (``status.info``,
``status.reason``), as Seldon's executor passes a node's status and body through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from infergraph.errors import (
    BadMetadata,
    BadRequest,
    InferGraphError,
    MicroserviceError,
    PayloadTooLarge,
    UserCodeError,
)
from infergraph.graph.nodes.replicated import Replica, ReplicatedNodeClient
from infergraph.graph.nodes.wire_errors import HTTP_FAILURES
from infergraph.protocol import seldon_json
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.status import ERROR_BY_HTTP
from infergraph.wire.http1.client import HttpPool
from infergraph.wire.tls import ReloadingContext
from infergraph.wire.tokens import BearerTokens

__all__ = ["RestNodeClient", "error_from_status"]

_PATHS = {
    "predict": "/predict",
    "transform_input": "/transform-input",
    "transform_output": "/transform-output",
    "route": "/route",
    "aggregate": "/aggregate",
    "send_feedback": "/send-feedback",
}
_JSON = {"content-type": "application/json"}
_PAYLOADS = ("data", "strData", "binData", "jsonData", "status")
_POLL_S = 0.05
"""How often a replica that is not ready yet is asked again, within one probe."""


def _seldon_error(status: int, body: bytes) -> tuple[str, str | None, dict[str, Any] | None]:
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
    info, reason, obj = _seldon_error(status, body)
    kind = ERROR_BY_HTTP.get(status)
    if kind is not None:
        return kind(info, reason=reason)
    payload = {k: v for k, v in obj.items() if k != "status"} if obj else None
    if reason is None:
        reason = "MICROSERVICE_INTERNAL_ERROR" if status >= 500 else "MICROSERVICE_BAD_DATA"
    return MicroserviceError(info, status_code=status, payload=payload or None, reason=reason)


def _answer(body: bytes) -> Message:
    """Decode a node's answer; one without a payload (a bare ``meta``) is still an answer."""
    try:
        obj = seldon_json.loads(body)
        if isinstance(obj, list):  # a router's bare JSON list, which Seldon's executor reads
            return Message(DataKind.NONE, None, [], raw=obj)
        if isinstance(obj, dict) and not any(key in obj for key in _PAYLOADS):
            return Message(DataKind.NONE, None, [], seldon_json.decode_meta(obj.get("meta")))
        return seldon_json.decode_message(obj, "response", lists=True)
    except BadRequest as exc:  # the node's fault, not the caller's
        raise UserCodeError(f"invalid answer: {exc}") from None


def _fields(msg: Message) -> dict[str, Any]:
    # the fields are authoritative: ``raw`` may be the wire form of an earlier hop whose
    # meta (puid, requestPath) the executor has since changed
    return seldon_json.encode_message(replace(msg, raw=None) if msg.raw is not None else msg)


class RestNodeClient(ReplicatedNodeClient[HttpPool]):
    """Calls a node's REST API as Seldon's executor does (``spec.transport: rest``).

    Each replica has a pool of keep-alive connections. Calls larger than
    ``max_message_size`` are refused here, answers larger than it are not read: the node
    process has the same limit. ``connect_timeout`` bounds opening a connection.
    """

    transport = "rest"

    def __init__(
        self,
        name: str,
        addresses: Sequence[str],
        *,
        max_message_size: int,
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
                self._metadata_error = BadMetadata(_seldon_error(status, body)[0])
        return True

    async def _send(self, replica: Replica[HttpPool], method: str, request: Any) -> Message:
        with self._wire_errors:
            status, body = await replica.conn.request(
                "POST",
                _PATHS[method],
                request,
                _JSON,
                timeout=self.timeout,
                idempotent=method != "send_feedback",
            )
        if 200 <= status < 300:
            return _answer(body)
        raise error_from_status(status, body)

    def _body(self, obj: Any) -> bytes:
        body = seldon_json.dumps(obj)
        if len(body) > self.max_message_size:
            raise PayloadTooLarge(
                f"a request of {len(body)} bytes exceeds the limit of {self.max_message_size} "
                "bytes (the message size limit)"
            )
        return body

    def _message(self, msg: Message) -> bytes:
        return self._body(_fields(msg))

    def _batch(self, msgs: list[Message]) -> bytes:
        return self._body([_fields(m) for m in msgs])

    def _feedback(self, feedback: Feedback) -> bytes:
        out: dict[str, Any] = {"reward": feedback.reward}
        for part in ("request", "response", "truth"):
            value = getattr(feedback, part)
            if value is not None:
                out[part] = _fields(value)
        return self._body(out)
