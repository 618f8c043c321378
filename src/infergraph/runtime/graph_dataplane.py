"""The transport-neutral data plane of a whole deployment.

It picks the predictor for each request by ``traffic`` weight (or sticks a client to one
by a header), mirrors each request to the ``shadow`` predictor without delaying the answer
and measures how often the shadow agrees, routes feedback back to the predictor that
answered (by the response's routing, or by the request id whose routing it remembers),
and reports readiness and metadata for every node.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import numpy as np

from infergraph.errors import BadRequest, InferGraphError, NotFound, NotReady
from infergraph.graph.executor import CallContext, Executor
from infergraph.graph.nodes import ReplicatedNodeClient
from infergraph.graph.plan import DeploymentPlan, NodeClient, PredictorPlan
from infergraph.graph.raw_input import takes_raw_request
from infergraph.observability import log_context
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.metrics import Registry
from infergraph.observability.recent import RecentRequests
from infergraph.observability.tracing import Tracing
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.runtime.feedback_ids import RoutingStore, Served, unknown_id
from infergraph.runtime.payload_logger import PayloadLogger

__all__ = ["GraphDataPlane", "agree"]

log = logging.getLogger(__name__)

SHADOW_METRIC = "infergraph_shadow_requests_total"
SHADOW_RATIO = "infergraph_shadow_agreement_ratio"
MAX_SHADOWS_IN_FLIGHT = 1000


def agree(primary: Message, shadow: Message) -> bool:
    """Whether two answers agree: same kind, and numerically close data (or equal)."""
    if primary.kind is not shadow.kind:
        return False
    if primary.kind is DataKind.V2:
        mine, theirs = primary.data.inputs, shadow.data.inputs
        return len(mine) == len(theirs) and all(
            a.name == b.name and _close(a.data, b.data) for a, b in zip(mine, theirs, strict=True)
        )
    if primary.kind.is_data:
        return _close(primary.data, shadow.data)
    return bool(primary.data == shadow.data)


def _close(first: Any, second: Any) -> bool:
    """Numerically close arrays (or equal ones, when they are not numbers)."""
    try:
        a = np.asarray(first, dtype=np.float64)
        b = np.asarray(second, dtype=np.float64)
    except (TypeError, ValueError):
        return bool(np.array_equal(np.asarray(first), np.asarray(second)))
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


class GraphDataPlane:
    """Predictors, traffic, shadow and feedback for one deployment plan."""

    def __init__(
        self,
        plan: DeploymentPlan,
        registry: Registry | None = None,
        *,
        sticky_header: str | None = None,
        seed: int | None = None,
        payload_options: dict[str, Any] | None = None,
        routings: RoutingStore | None = None,
        tracing: Tracing | None = None,
        recent: RecentRequests | None = None,
    ) -> None:
        self.plan = plan
        self.tracing = tracing
        self.recent = recent
        """Recent predictions and node calls, for the dashboard (None: not recorded)."""
        """Spans of requests and node calls (None: tracing is off); shut down by :meth:`close`."""
        self.routings = routings
        """Recent predictions' routings by request id (None: feedback by id is off)."""
        self.registry = registry or Registry()
        self.sticky_header = sticky_header.lower() if sticky_header else None
        self._rng = random.Random(seed)
        self.loggers: list[PayloadLogger] = []
        self.executors: dict[str, Executor] = {}
        for predictor in plan.predictors:
            payloads = None
            if payload_options is not None and any(n.logger_mode for n in predictor.nodes.values()):
                payloads = PayloadLogger(
                    self.registry,
                    deployment=plan.name,
                    predictor=predictor.name,
                    namespace=plan.namespace,
                    protocol=plan.protocol,
                    **payload_options,
                )
                self.loggers.append(payloads)
            metrics = ExecutorMetrics(self.registry, plan.name, predictor.name, predictor.version)
            self.executors[predictor.name] = Executor(predictor, metrics, payloads, tracing, recent)
        live = [p for p in plan.predictors if not p.shadow]
        weights = [p.traffic if len(live) > 1 else 100 for p in live]
        self._live = live
        self._cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
        self.shadow = next((p for p in plan.predictors if p.shadow), None)
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.server_metrics = self.executors[live[0].name].metrics
        self.takes_raw_request = any(takes_raw_request(p.root) for p in plan.predictors)
        """Whether a node's ``*_raw`` method gets the request as it came (see raw_input)."""
        self.loading = False
        """:meth:`load` is running (``serve`` runs it beside its listening ports)."""
        self.loaded = False
        """:meth:`load` has finished once: a node that is not ready since is restarting."""
        self.also_ready: Callable[[], bool] | None = None
        """What else :attr:`ready` (``/ready``, V2 ready) waits for beyond these nodes: the
        sibling workers of ``serve --workers``. Predictions wait only for these nodes."""

    # ---------------------------------------------------------------- lifecycle

    async def load(self) -> None:
        """Load every node (``load()`` of the user classes), then start payload loggers.

        Nodes already loaded are skipped: ``serve`` loads once its ports listen, and the
        ASGI lifespan start-up (uvicorn) does not load again while it does.
        """
        self.loading = True
        try:
            for predictor in self.plan.predictors:
                for name, node in predictor.nodes.items():
                    if node.client.ready:
                        continue
                    try:
                        await node.client.load()
                    except InferGraphError as exc:  # say which node failed to load
                        if exc.node is None:
                            exc.node = name
                            exc.message = f"node {name!r}: {exc.message}"
                        raise
            for payload_logger in self.loggers:
                await payload_logger.start()
        finally:
            self.loading = False
        self.loaded = True

    def start_loading(
        self, first: Callable[[], Awaitable[None]] | None = None
    ) -> asyncio.Task[None]:
        """:meth:`load` as a task, ``loading`` from now on; ``first`` (say, starting the
        node processes) runs before it."""

        async def run() -> None:
            try:
                if first is not None:
                    await first()
                await self.load()
            finally:
                self.loading = False

        self.loading = True
        return asyncio.get_running_loop().create_task(run())

    @property
    def ready(self) -> bool:
        """What ``/ready`` reports: every node can serve, and whatever ``also_ready`` says."""
        return self.serving and (self.also_ready is None or self.also_ready())

    @property
    def serving(self) -> bool:
        """Every node can serve a call."""
        return all(client.ready for client in self.plan.clients())

    def _not_ready(self) -> NotReady:
        """The 503 of a call the graph cannot serve yet: nodes whose processes died and are
        being restarted say so (and why); before the first load finished, the graph is
        loading; otherwise the nodes that cannot serve are named."""
        down = {
            name: reason
            for predictor in self.plan.predictors
            for name, node in predictor.nodes.items()
            if (reason := _down_reason(node.client)) is not None
        }
        if down:
            said = "; ".join(f"node {name!r} {reason}" for name, reason in down.items())
            return NotReady(
                f"{said}; retry shortly", node=next(iter(down)) if len(down) == 1 else None
            )
        waiting = sorted(
            {
                name
                for p in self.plan.predictors
                for name, n in p.nodes.items()
                if not n.client.ready
            }
        )
        nodes = ("node " if len(waiting) == 1 else "nodes ") + ", ".join(map(repr, waiting))
        if not self.loaded:
            return NotReady(
                f"the graph is loading: {nodes} not loaded yet; retry when GET /ready answers 200"
            )
        return NotReady(f"the graph is not ready: {nodes} cannot serve (restarting?)")

    def _refuse_unless_ready(self) -> None:
        """NotReady (503) naming the nodes that cannot serve yet, while some cannot."""
        if not self.serving:
            raise self._not_ready()

    async def close(self) -> None:
        for task in list(self._shadow_tasks):
            task.cancel()
        for payload_logger in self.loggers:
            await payload_logger.close()
        if self.routings is not None:
            self.routings.close()
        for client in self.plan.clients():
            aclose = getattr(client, "aclose", None)
            if aclose is not None:
                await aclose()
            else:
                client.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # exports what is left

    # ---------------------------------------------------------------- requests

    def choose(self, headers: dict[str, str]) -> PredictorPlan:
        """The predictor for a request: by traffic weight, or sticky by a header's value."""
        if len(self._live) == 1:
            return self._live[0]
        total = self._cumulative[-1]
        value = headers.get(self.sticky_header) if self.sticky_header else None
        ticket = (
            zlib.crc32(value.encode()) % total if value is not None else self._rng.randrange(total)
        )
        for predictor, bound in zip(self._live, self._cumulative, strict=True):
            if ticket < bound:
                return predictor
        return self._live[-1]

    def shadow_counts(self) -> dict[str, float]:
        """Mirrored requests by outcome (``agree``, ``disagree``, ``error``, ``dropped``)."""
        if self.shadow is None:
            return {}
        base = (("deployment_name", self.plan.name), ("predictor_name", self.shadow.name))
        return {
            o: self.registry.counters.get((SHADOW_METRIC, (*base, ("outcome", o))), 0.0)
            for o in ("agree", "disagree", "error", "dropped")
        }

    @staticmethod
    def context(headers: dict[str, str]) -> CallContext:
        puid = headers.get("seldon-puid") or str(uuid.uuid4())
        log_context.note_puid(puid)  # for the lines logged while it is answered
        return CallContext(puid, headers)

    async def predict(self, request: Message, ctx: CallContext) -> tuple[Message, str]:
        """The answer of the chosen predictor, and its name; the shadow gets a copy."""
        self._refuse_unless_ready()
        predictor = self.choose(ctx.headers)
        response = await self.executors[predictor.name].predict(request, ctx)
        if self.routings is not None:
            ids: tuple[str, ...] = (ctx.puid,)
            if request.kind is DataKind.V2 and request.data.id and request.data.id != ctx.puid:
                ids = (ctx.puid, request.data.id)
            meta = response.meta
            await self.routings.record(ids, predictor.name, meta.routing, meta.request_path)
        if self.shadow is not None:
            self._mirror(request, response, ctx)
        return response, predictor.name

    def _mirror(self, request: Message, primary: Message, ctx: CallContext) -> None:
        assert self.shadow is not None
        if len(self._shadow_tasks) >= MAX_SHADOWS_IN_FLIGHT:
            self._count_shadow("dropped")
            return
        shadow_ctx = CallContext(ctx.puid, ctx.headers)
        task = asyncio.get_running_loop().create_task(
            self._run_shadow(request, primary, shadow_ctx)
        )
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _run_shadow(self, request: Message, primary: Message, ctx: CallContext) -> None:
        assert self.shadow is not None
        try:
            answer = await self.executors[self.shadow.name].predict(request, ctx)
        except Exception as exc:  # the shadow never affects the client; it is counted
            log.debug("shadow %s failed: %s", self.shadow.name, exc)
            self._count_shadow("error", ctx.puid)
            return
        self._count_shadow("agree" if agree(primary, answer) else "disagree", ctx.puid)

    def _count_shadow(self, outcome: str, puid: str = "") -> None:
        assert self.shadow is not None
        if puid and self.recent is not None:
            self.recent.shadow_outcome(puid, outcome)
        base = (("deployment_name", self.plan.name), ("predictor_name", self.shadow.name))
        self.registry.inc(
            SHADOW_METRIC,
            (*base, ("outcome", outcome)),
            1.0,
            "Requests mirrored to the shadow predictor, by how its answer compared",
        )
        counts = {
            o: self.registry.counters.get((SHADOW_METRIC, (*base, ("outcome", o))), 0.0)
            for o in ("agree", "disagree")
        }
        compared = counts["agree"] + counts["disagree"]
        if compared:
            self.registry.set(
                SHADOW_RATIO,
                base,
                counts["agree"] / compared,
                "Share of mirrored requests whose shadow answer agreed with the primary",
            )

    async def feedback(self, feedback: Feedback, ctx: CallContext, request_id: str = "") -> Message:
        """Feedback goes to the predictor whose nodes the response's routing names.

        A feedback without routing that names a request id (``response.meta.puid``, else
        ``request_id``: the ``Seldon-Puid`` the client sent) gets the routing recorded for
        that id, as if the client had sent it; an id with no routing recorded (unknown,
        evicted or expired) is a 404 and no node sees the feedback.
        """
        if self.loading:  # no user's send_feedback before its load()
            self._refuse_unless_ready()
        response = feedback.response
        given = response.meta.puid if response is not None else ""
        request_id = given or request_id
        if self.routings is not None and request_id and not (response and response.meta.routing):
            served = await self.routings.lookup(request_id)
            if served is None:
                raise unknown_id(request_id, self.routings)
            feedback = _with_routing(feedback, request_id, served)
            ctx.puid = ctx.headers["seldon-puid"] = request_id
            predictor = next((p for p in self._live if p.name == served.predictor), None)
            if predictor is not None:
                return await self.executors[predictor.name].feedback(feedback, ctx)
        return await self.executors[self._predictor_for(feedback, ctx).name].feedback(feedback, ctx)

    def _predictor_for(self, feedback: Feedback, ctx: CallContext) -> PredictorPlan:
        meta = feedback.response.meta if feedback.response is not None else None
        routing = meta.routing if meta is not None else {}
        matches = list(self._live)
        if routing:
            matches = [p for p in self._live if set(routing) <= set(p.nodes)]
            if len(matches) > 1 and meta is not None and meta.request_path:
                # a canary usually reuses the node names with another image: tell by the images
                paths = meta.request_path
                by_image = [
                    p
                    for p in matches
                    if all(n in p.nodes and p.nodes[n].image == image for n, image in paths.items())
                ]
                matches = by_image or matches
            if len(matches) == 1:
                return matches[0]
        if len(self._live) == 1 or self.sticky_header:
            return self.choose(ctx.headers)
        if routing and len(matches) > 1:
            raise BadRequest(
                "feedback: cannot tell which predictor answered: the response's meta.routing "
                f"and meta.requestPath fit predictors {', '.join(p.name for p in matches)}; "
                "give their nodes different names or images, or configure a sticky header"
            )
        raise BadRequest(
            "feedback: cannot tell which predictor answered; send back the response's "
            "meta.routing with the feedback"
        )

    # ---------------------------------------------------------------- metadata

    def node(self, name: str) -> Any:
        for predictor in self.plan.predictors:
            if name in predictor.nodes:
                return predictor.nodes[name]
        raise NotFound(f"no node named {name!r} in deployment {self.plan.name!r}")

    def metadata(self) -> dict[str, Any]:
        """Seldon's graph metadata: every node's, and the graph's inputs and outputs."""
        predictor = self._live[0]
        models = {name: node.client.metadata() for name, node in predictor.nodes.items()}
        inputs, outputs = _edges(predictor.root, models)
        return {
            "name": predictor.name,
            "models": models,
            "graphinputs": inputs,
            "graphoutputs": outputs,
        }


def _down_reason(client: NodeClient) -> str | None:
    """Why a node served by other processes takes no calls, when it was marked down."""
    return client.down_reason() if isinstance(client, ReplicatedNodeClient) else None


def _with_routing(feedback: Feedback, request_id: str, served: Served) -> Feedback:
    """``feedback`` as if its response had carried the recorded routing and request path."""
    response = feedback.response or Message()
    meta = response.meta.copy()
    meta.puid = request_id
    meta.routing = dict(served.routing)
    meta.request_path = dict(served.request_path)
    return replace(feedback, response=replace(response, meta=meta, raw=None), raw=None)


def _edges(node: Any, models: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    """Seldon's rule for the graph's inputs and outputs, from the edge nodes."""
    own = models.get(node.name, {})
    if not node.children:
        return own.get("inputs", []), own.get("outputs", [])
    first_in, first_out = _edges(node.children[0], models)
    if node.route and not (node.predict or node.transform_input or node.aggregate):
        return first_in, first_out
    if node.aggregate or node.transform_output:
        return first_in, own.get("outputs", [])
    return own.get("inputs", []), first_out
