"""A chain of no-op MODEL nodes and the CPU a request through it costs, for the benchmarks
that time the executor alone (``bench/tracing.py``, ``bench/dashboard.py``)."""

from __future__ import annotations

import asyncio
import time

from infergraph.graph.executor import CallContext, Executor
from infergraph.graph.plan import PlanNode
from infergraph.protocol.message import DataKind, Message


class NoOp:
    async def predict(self, msg: Message, wire: str) -> Message:
        return msg


def chain(length: int) -> PlanNode:
    """``m0 -> m1 -> ... -> m<length-1>``, each a no-op MODEL."""
    node = PlanNode(f"m{length - 1}", NoOp(), "", predict=True)  # type: ignore[arg-type]
    for i in range(length - 2, -1, -1):
        node = PlanNode(f"m{i}", NoOp(), "", predict=True, children=(node,))  # type: ignore[arg-type]
    return node


def cpu_per_request(
    executor: Executor, requests: int, headers: dict[str, str] | None = None
) -> float:
    """CPU seconds per request (``time.process_time``) of ``requests`` one-row predictions
    one after the other, after as many to warm up."""
    request = Message(DataKind.NDARRAY, [[1.0, 2.0]])

    async def run() -> None:
        for i in range(requests):
            ctx = CallContext(f"p{i}") if headers is None else CallContext(f"p{i}", headers)
            await executor.predict(request, ctx)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())  # warm-up
        started = time.process_time()
        loop.run_until_complete(run())
        return (time.process_time() - started) / requests
    finally:
        loop.close()
