"""A chain of no-op MODEL nodes, for the benchmarks that time the executor alone
(``bench/tracing.py``, ``bench/dashboard.py``)."""

from __future__ import annotations

from infergraph.graph.plan import PlanNode
from infergraph.protocol.message import Message


class NoOp:
    async def predict(self, msg: Message, wire: str) -> Message:
        return msg


def chain(length: int) -> PlanNode:
    """``m0 -> m1 -> ... -> m<length-1>``, each a no-op MODEL."""
    node = PlanNode(f"m{length - 1}", NoOp(), "", predict=True)  # type: ignore[arg-type]
    for i in range(length - 2, -1, -1):
        node = PlanNode(f"m{i}", NoOp(), "", predict=True, children=(node,))  # type: ignore[arg-type]
    return node
