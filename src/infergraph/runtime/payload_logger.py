"""Payload logging of the graph: every logged node's request, response and feedback.

The executor hands each payload of a node whose ``logger.mode`` asks for it to
:meth:`PayloadLogger.submit`. Sending is transport-neutral and lives below, in
:class:`~infergraph.observability.payload_logger.PayloadSender` (the bounded queue, the
CloudEvents post, the metrics); what is graph-specific stays here, where the codecs may be
imported: which node, and the body a message is logged as (Seldon JSON, or V2's JSON for a
V2 message), encoded in the sender's workers, off the request path.
"""

from __future__ import annotations

from typing import Any

from infergraph.graph.executor import CallContext
from infergraph.graph.plan import PlanNode
from infergraph.observability.payload_logger import PayloadSender
from infergraph.protocol import v2_rest
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.protocol.seldon_json import dumps, encode_feedback, encode_message

__all__ = ["PayloadLogger"]


class PayloadLogger(PayloadSender):
    """The executor's :class:`~infergraph.graph.executor.PayloadSink` for one predictor.

    One instance per predictor, since ``Ce-Endpoint`` and the metric labels name it.
    ``start()`` must run inside the serving event loop; ``close()`` before it stops.
    """

    def submit(
        self, node: PlanNode, event: str, message: Message | Feedback, ctx: CallContext
    ) -> None:
        """Queue one payload; never waits and never raises (a full queue drops it)."""
        self.put(node.name, node.logger_url, event, message, ctx.puid, ctx.headers)

    def encode(self, payload: Any) -> bytes:
        """A message or feedback as its Seldon JSON (V2's JSON for a V2 message)."""
        if isinstance(payload, Feedback):
            return dumps(encode_feedback(payload))
        if isinstance(payload, Message) and payload.kind is DataKind.V2:
            body, _ = v2_rest.encode_request(payload.data)  # the V2 JSON form
            return body
        if isinstance(payload, Message):
            return dumps(encode_message(payload))
        if isinstance(payload, bytes):
            return payload
        return dumps(payload)
