"""The headers an outgoing node call carries besides its own: set by the caller for the call
being made now (the executor puts a trace's ``traceparent`` there), read by the node clients
in :mod:`infergraph.wire.http1.client` and :mod:`infergraph.wire.grpc.client`."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["HOP_HEADERS"]

HOP_HEADERS: ContextVar[tuple[tuple[str, str], ...]] = ContextVar(
    "infergraph_hop_headers", default=()
)
"""Headers for the hop being made now (empty outside a node call's span)."""
