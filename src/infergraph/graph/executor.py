"""Walk a compiled predictor graph for one request, with Seldon Core v1's semantics.

- MODEL: the node predicts; its output feeds its children in turn (a chain).
- TRANSFORMER: ``transform_input`` before the children; OUTPUT_TRANSFORMER:
  ``transform_output`` after them (it wraps its subtree).
- ROUTER: ``route`` picks a child: ``N`` = child N, ``-1`` = every child concurrently,
  ``-2`` = stop and return the current message. An index out of range is a clear error
  (Seldon's Go executor panicked).
- COMBINER: every child concurrently, then ``aggregate``; several children and no
  combiner: the first child's answer.
- Feedback replays ``meta.routing`` of the response it refers to: children first, then
  the node, on MODEL and ROUTER nodes and nodes with SEND_FEEDBACK. The whole path is
  checked first (routing in range, and what built-in bandits would refuse), so a refused
  feedback credits no node.

``meta.routing`` (node -> chosen child, -1 for nodes that called all their children) and
``meta.requestPath`` are always in the answer, and ``meta.puid`` is set on every message.
Every node call is measured with its node type, and every routing decision and every
feedback a router takes is counted per child (see ExecutorMetrics). With a
:class:`~infergraph.observability.recent.RecentRequests`, each prediction's path (its node
calls, with start and duration) is kept for the dashboard, and each node's recent calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from infergraph.errors import BadRequest, DeadlineExceeded, InferGraphError, UserCodeError
from infergraph.graph.feedback_checks import feedback_check
from infergraph.graph.plan import PlanNode, PredictorPlan
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.recent import Call, RecentRequests, RequestRecord
from infergraph.observability.tracing import HOP_HEADERS, Tracing, passed_on
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.status import status_label

__all__ = ["CallContext", "Executor", "PayloadSink", "node_type", "route_index"]

WIRE = "json"


class PayloadSink(Protocol):
    """Receives node payloads for logging; must never block or raise."""

    def submit(self, node: PlanNode, event: str, message: Any, ctx: CallContext) -> None: ...


@dataclass(slots=True)
class CallContext:
    """One request through the graph: its puid, the headers to forward, and timings."""

    puid: str
    headers: dict[str, str] = field(default_factory=dict)
    node_seconds: float = 0.0
    hops: int = 0
    calls: list[Call] | None = None
    """The node calls of a prediction being recorded (None: it is not)."""


def route_index(response: Message, node: str) -> int:
    """The child a router chose: the first value of its answer (``[[N]]``, ``[N]``, a tensor,
    a tftensor, or a bare JSON list), -1 when the answer is empty."""
    value: Any = response.data
    if response.kind is DataKind.NONE and isinstance(response.raw, list):
        value = response.raw
    if response.kind.is_data or isinstance(value, list):
        flat = np.asarray(value).ravel()
        if flat.size == 0:
            return -1
        first = flat[0]
        try:
            index = int(first)
        except (TypeError, ValueError):
            raise BadRequest(f"router {node!r} answered {first!r}, not a child index") from None
        if index != first:
            raise BadRequest(f"router {node!r} answered {first!r}, not an integer child index")
        return index
    raise BadRequest(f"router {node!r} answered {response.kind.value}, not a child index")


def node_type(node: PlanNode) -> str:
    """Seldon's type name for what a node does (a router that also predicts is a MODEL)."""
    if node.predict:
        return "MODEL"
    if node.route:
        return "ROUTER"
    if node.aggregate:
        return "COMBINER"
    if node.transform_input:
        return "TRANSFORMER"
    if node.transform_output:
        return "OUTPUT_TRANSFORMER"
    return "UNKNOWN_TYPE"


def _child_name(node: PlanNode, index: int) -> str:
    """The child a routing index names, for metric labels: ``*`` for all, ``-`` for none."""
    if 0 <= index < len(node.children):
        return node.children[index].name
    return "*" if index == -1 else "-"


class Executor:
    """Runs requests and feedback through one predictor's plan."""

    def __init__(
        self,
        plan: PredictorPlan,
        metrics: ExecutorMetrics,
        payloads: PayloadSink | None = None,
        tracing: Tracing | None = None,
        recent: RecentRequests | None = None,
    ) -> None:
        self.plan = plan
        self.metrics = metrics
        self.payloads = payloads
        self._types = {name: node_type(node) for name, node in plan.nodes.items()}
        self.tracing = tracing
        self.recent = recent
        """Where predictions are recorded for the dashboard (None: recording is off)."""
        self._windows: dict[str, deque[Call]] = (
            {n.name: recent.window(plan.name, n.name).calls for n in plan.root.walk()}
            if recent is not None
            else {}
        )
        self._checks = {
            name: check
            for name, node in plan.nodes.items()
            if node.feedback and (check := feedback_check(node.client)) is not None
        }

    # ---------------------------------------------------------------- calls

    async def _call(
        self, node: PlanNode, service: str, call: Awaitable[Message], ctx: CallContext
    ) -> Message:
        started = time.perf_counter()
        code = "200"
        if self.tracing is not None:
            call = self._traced(node, service, call, ctx)
        try:
            if node.timeout is None:
                return await call
            try:
                return await asyncio.wait_for(call, node.timeout)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"node {node.name!r}: no answer to {service} within {node.timeout * 1000:g} ms",
                    node=node.name,
                ) from None
        except InferGraphError as exc:
            code = status_label(exc)
            if exc.node is None:
                exc.node = node.name
                exc.message = f"node {node.name!r}: {exc.message}"
            raise
        except Exception as exc:  # a client bug or transport failure: still names the node
            code = "500"
            raise UserCodeError(
                f"node {node.name!r}: {type(exc).__name__}: {exc}", node=node.name
            ) from exc
        finally:
            elapsed = time.perf_counter() - started
            ctx.node_seconds += elapsed
            ctx.hops += 1
            calls = ctx.calls
            if calls is not None:  # a prediction being recorded: one tuple, kept twice
                made = (node.name, service, started, elapsed, code)
                calls.append(made)
                self._windows[node.name].append(made)
            self.metrics.client(
                node.name,
                node.image,
                service,
                node.transport,
                code,
                elapsed,
                self._types.get(node.name, ""),
            )

    async def _traced(
        self, node: PlanNode, service: str, call: Awaitable[Message], ctx: CallContext
    ) -> Message:
        """``call`` inside the node call's span (a hop's span, for a node in another process)."""
        assert self.tracing is not None
        attributes = {
            "infergraph.node.name": node.name,
            "infergraph.node.type": node_type(node),
            "infergraph.node.method": service,
            "seldon.puid": ctx.puid,
        }
        with self.tracing.node(
            f"{node.name} {service}", attributes, node.transport != "local"
        ) as span:
            try:
                answer = await call
            except Exception as exc:
                span.set_attribute("infergraph.status", status_label(exc))
                raise
            span.set_attribute("infergraph.status", "200")
            if service == "/route":
                with contextlib.suppress(InferGraphError):  # _children reports a bad answer
                    span.set_attribute("infergraph.route", route_index(answer, node.name))
            return answer

    def _log(self, node: PlanNode, event: str, message: Any, ctx: CallContext) -> None:
        if self.payloads is not None and node.logger_mode is not None:
            mode = node.logger_mode
            if event == "request" and mode in ("all", "request"):
                self.payloads.submit(node, "io.seldon.serving.inference.request", message, ctx)
            elif event == "response" and mode in ("all", "response"):
                self.payloads.submit(node, "io.seldon.serving.inference.response", message, ctx)
            elif event == "feedback" and mode in ("all", "response"):
                self.payloads.submit(node, "io.seldon.serving.feedback", message, ctx)

    # ---------------------------------------------------------------- predict

    async def predict(self, request: Message, ctx: CallContext) -> Message:
        """The graph's answer, with routing, requestPath and puid in its meta."""
        if self.tracing is not None:
            attributes = {
                "infergraph.predictor": self.plan.name,
                "seldon.puid": ctx.puid,
            }
            with self.tracing.request("predict", ctx.headers, attributes):
                return await self._predict_graph(request, ctx)
        hop = passed_on(ctx.headers)
        if not hop:
            return await self._predict_graph(request, ctx)
        token = HOP_HEADERS.set(hop)  # the caller's trace, on to the node processes
        try:
            return await self._predict_graph(request, ctx)
        finally:
            HOP_HEADERS.reset(token)

    async def _predict_graph(self, request: Message, ctx: CallContext) -> Message:
        started = time.perf_counter()
        if request.meta.puid != ctx.puid:
            request = replace(request, meta=request.meta.copy())
            request.meta.puid = ctx.puid
        routing: dict[str, int] = {}
        recent = self.recent
        if recent is None:
            response = await self._predict(self.plan.root, request, ctx, routing)
        else:  # recorded whatever the outcome
            wall, status = time.time(), "200"
            calls: list[Call] = []
            ctx.calls = calls
            try:
                response = await self._predict(self.plan.root, request, ctx, routing)
            except asyncio.CancelledError:
                status = "cancelled"
                raise
            except Exception as exc:
                status = status_label(exc)
                raise
            finally:
                seconds = time.perf_counter() - started
                record = RequestRecord(
                    ctx.puid, self.plan.name, wall, started, seconds, status, calls, routing
                )
                recent.add(record, self.plan.shadow)
        response = _finish(response, routing, ctx.puid)
        self.metrics.overhead(time.perf_counter() - started - ctx.node_seconds, ctx.hops)
        return response

    async def _predict(
        self, node: PlanNode, msg: Message, ctx: CallContext, routing: dict[str, int]
    ) -> Message:
        self._log(node, "request", msg, ctx)
        client = node.client
        if node.predict:
            msg = await self._call(node, "/predict", client.predict(msg, WIRE), ctx)
        elif node.transform_input:
            msg = await self._call(node, "/transform-input", client.transform_input(msg, WIRE), ctx)
        if node.children:
            msg = await self._children(node, msg, ctx, routing)
        else:
            routing[node.name] = -1
        if node.transform_output:
            msg = await self._call(
                node, "/transform-output", client.transform_output(msg, WIRE), ctx
            )
        self._log(node, "response", msg, ctx)
        return msg

    async def _children(
        self, node: PlanNode, msg: Message, ctx: CallContext, routing: dict[str, int]
    ) -> Message:
        index = -1
        if node.route:
            answer = await self._call(node, "/route", node.client.route(msg, WIRE), ctx)
            index = route_index(answer, node.name)
            if -2 <= index < len(node.children):  # a bad index is refused below, not counted
                self.metrics.route(node.name, index, _child_name(node, index))
        routing[node.name] = index
        children = node.children
        if index == -2:
            return msg
        if index == -1:
            if len(children) == 1:
                outputs = [await self._predict(children[0], msg, ctx, routing)]
            else:
                outputs = await self._fan_out(children, msg, ctx, routing)
        elif 0 <= index < len(children):
            outputs = [await self._predict(children[index], msg, ctx, routing)]
        else:
            raise BadRequest(
                f"node {node.name!r}: router chose child {index}, but it has {len(children)} "
                "children (valid: 0..n-1, -1 for all, -2 to stop)",
                node=node.name,
            )
        if node.aggregate:
            return await self._call(node, "/aggregate", node.client.aggregate(outputs, WIRE), ctx)
        return outputs[0]

    async def _fan_out(
        self,
        children: tuple[PlanNode, ...],
        msg: Message,
        ctx: CallContext,
        routing: dict[str, int],
    ) -> list[Message]:
        """Every child concurrently; the node time counted is the slowest branch's."""
        branches = [CallContext(ctx.puid, ctx.headers, calls=ctx.calls) for _ in children]
        results = await asyncio.gather(
            *(self._predict(c, msg, b, routing) for c, b in zip(children, branches, strict=True))
        )
        ctx.node_seconds += max(b.node_seconds for b in branches)
        ctx.hops += sum(b.hops for b in branches)
        return list(results)

    # ---------------------------------------------------------------- feedback

    async def feedback(self, feedback: Feedback, ctx: CallContext) -> Message:
        """Replay the routing of the response the feedback refers to; children first."""
        routing = feedback.response.meta.routing if feedback.response is not None else {}
        self._check(self.plan.root, feedback, routing)
        if self.tracing is not None:
            attributes = {"infergraph.predictor": self.plan.name, "seldon.puid": ctx.puid}
            with self.tracing.request("feedback", ctx.headers, attributes):
                answer = await self._feedback(self.plan.root, feedback, routing, ctx)
        else:
            answer = await self._feedback(self.plan.root, feedback, routing, ctx)
        return _finish(answer or Message(DataKind.NDARRAY, []), {}, ctx.puid)

    def _check(self, node: PlanNode, feedback: Feedback, routing: dict[str, int]) -> None:
        """Refuse, before any node is called, a feedback some node on its path would refuse."""
        index = routing.get(node.name, -1)
        children = node.children
        if children:
            if index == -1:
                for child in children:
                    self._check(child, feedback, routing)
            elif 0 <= index < len(children):
                self._check(children[index], feedback, routing)
            elif index != -2:
                raise BadRequest(
                    f"feedback: response.meta.routing[{node.name!r}] is {index}, but the node "
                    f"has {len(children)} children"
                )
        check = self._checks.get(node.name)
        if check is not None:
            try:
                check(feedback.reward, routing.get(node.name))
            except InferGraphError as exc:
                if exc.node is None:
                    exc.node = node.name
                    exc.message = f"node {node.name!r}: {exc.message}"
                raise

    async def _feedback(
        self, node: PlanNode, feedback: Feedback, routing: dict[str, int], ctx: CallContext
    ) -> Message | None:
        self._log(node, "feedback", feedback, ctx)
        index = routing.get(node.name, -1)
        children = node.children
        if children:  # the indices were checked by _check
            if index == -1:
                await asyncio.gather(*(self._feedback(c, feedback, routing, ctx) for c in children))
            elif index != -2:
                await self._feedback(children[index], feedback, routing, ctx)
        if node.feedback:
            answer = await self._call(
                node, "/send-feedback", node.client.send_feedback(feedback, WIRE), ctx
            )
            if node.route and node.name in routing:
                self.metrics.router_feedback(
                    node.name, index, _child_name(node, index), feedback.reward
                )
            return answer
        return None


def _finish(msg: Message, routing: dict[str, int], puid: str) -> Message:
    """Put routing and puid into the answer's meta (a raw dict answer is updated in a copy)."""
    meta = msg.meta.copy()
    meta.routing = {**meta.routing, **routing}
    meta.puid = puid
    if isinstance(msg.raw, dict):
        raw = dict(msg.raw)
        raw_meta = dict(raw.get("meta") or {})
        raw_meta["routing"] = {**(raw_meta.get("routing") or {}), **routing}
        raw_meta["puid"] = puid
        raw["meta"] = raw_meta
        return replace(msg, meta=meta, raw=raw)
    return replace(msg, meta=meta, raw=None if msg.kind is not DataKind.NONE else msg.raw)
