"""What the dashboard shows, as JSON: the graph from the plan, and the live figures beside it.

Nothing here is counted twice: the picture comes from the compiled plan; the routers'
split and rewards per child from the executor's counters (``ExecutorMetrics``); a bandit's
arms from the router object's own store (``BanditRouter.counts``/``values``); the shadow's
agreement from the data plane's counters; the replicas of a node served by other processes
from its client, and their restarts from the supervisor's counter. Only the recent
requests and the per-node windows are the dashboard's own (:mod:`~infergraph.observability.recent`).

Every figure is built when asked, never on the serving path, and a figure that cannot be
read (a Redis that does not answer) is reported as an ``error`` in its place, so the
endpoints never fail as a whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from infergraph.errors import NotFound
from infergraph.graph.executor import Executor, node_type
from infergraph.graph.nodes import ReplicatedNodeClient
from infergraph.graph.plan import PlanNode, PredictorPlan
from infergraph.observability.recent import WINDOW_S, RecentRequests, RequestRecord
from infergraph.routers.bandits import BanditRouter
from infergraph.routers.state import MemoryStore
from infergraph.runtime.graph_dataplane import GraphDataPlane

__all__ = ["RESTART_METRIC", "Dashboard"]

RESTART_METRIC = "infergraph_node_restarts_total"
"""Node processes restarted after dying, by node and predictor (``serve --processes``)."""
HISTORY = 120
"""A bandit keeps this many past values per arm, for the page's sparklines."""


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _depths(root: PlanNode) -> dict[str, int]:
    """How deep each node sits under its predictor's root (0), for indenting a path."""
    out: dict[str, int] = {}
    todo = [(root, 0)]
    while todo:
        node, depth = todo.pop()
        out.setdefault(node.name, depth)
        todo.extend((child, depth + 1) for child in node.children)
    return out


def _child(node: PlanNode, index: int) -> str:
    if 0 <= index < len(node.children):
        return node.children[index].name
    return "*" if index == -1 else "-"


class Dashboard:
    """The dashboard's JSON for one data plane that records requests."""

    def __init__(self, dataplane: GraphDataPlane) -> None:
        if dataplane.recent is None:
            raise ValueError("the dashboard needs a data plane that records requests")
        self.dataplane = dataplane
        self.recent: RecentRequests = dataplane.recent
        self._history: dict[tuple[str, str], deque[tuple[float, list[float]]]] = {}

    # ---------------------------------------------------------------- the graph and its figures

    async def state(self) -> dict[str, Any]:
        """The deployment's picture and every live figure (``GET /dashboard/api/state``)."""
        plan = self.dataplane.plan
        now = time.perf_counter()
        predictors = []
        for predictor in plan.predictors:
            executor = self.dataplane.executors[predictor.name]
            predictors.append(await self._predictor(predictor, executor, now))
        return {
            "deployment": plan.name,
            "namespace": plan.namespace,
            "time": time.time(),
            "window_s": WINDOW_S,
            "ready": self.dataplane.ready,
            "recording": {"capacity": self.recent.capacity, "held": len(self.recent)},
            "predictors": predictors,
            "shadow": self._shadow(),
        }

    async def _predictor(
        self, predictor: PredictorPlan, executor: Executor, now: float
    ) -> dict[str, Any]:
        nodes = [self._node(predictor, executor, node, now) for node in predictor.root.walk()]
        edges = [
            {"from": node.name, "to": child.name, "branch": i}
            for node in predictor.root.walk()
            for i, child in enumerate(node.children)
        ]
        routers = [
            await self._router(predictor, executor, node)
            for node in predictor.root.walk()
            if node.route
        ]
        live = [p for p in self.dataplane.plan.predictors if not p.shadow]
        return {
            "name": predictor.name,
            "version": predictor.version,
            "traffic": 0 if predictor.shadow else (predictor.traffic if len(live) > 1 else 100),
            "shadow": predictor.shadow,
            "root": predictor.root.name,
            "nodes": nodes,
            "edges": edges,
            "routers": routers,
        }

    def _node(
        self, predictor: PredictorPlan, executor: Executor, node: PlanNode, now: float
    ) -> dict[str, Any]:
        live = self.recent.window(predictor.name, node.name).summary(now)
        calls, errors = executor.metrics.node_calls(node.name)
        out: dict[str, Any] = {
            "name": node.name,
            "type": node_type(node),
            "image": node.image,
            "transport": node.transport,
            "remote": node.transport != "local",
            "children": [c.name for c in node.children],
            "calls_total": calls,
            "errors_total": errors,
            "live": {
                "calls": live.calls,
                "rps": round(live.rps, 3),
                "error_rate": round(live.error_rate, 4),
                "p50_ms": _ms(live.p50_s),
                "p99_ms": _ms(live.p99_s),
            },
            "replicas": None,
        }
        client = node.client
        if isinstance(client, ReplicatedNodeClient):
            labels = (("node", node.name), ("predictor_name", predictor.name))
            restarts = self.dataplane.registry.counters.get((RESTART_METRIC, labels), 0.0)
            out["replicas"] = {
                "count": len(client.addresses),
                "up": sum(1 for a in client.addresses if client.replica_up(a)),
                "down_reason": client.down_reason(),
                "restarts": int(restarts),
            }
        return out

    async def _router(
        self, predictor: PredictorPlan, executor: Executor, node: PlanNode
    ) -> dict[str, Any]:
        counts = executor.metrics.router_counts(node.name)
        chosen = sum(c[1] for c in counts.values())
        children = []
        for branch, child in enumerate(node.children):
            _, routes, feedback, reward = counts.get(branch, (child.name, 0.0, 0.0, 0.0))
            children.append(
                {
                    "branch": branch,
                    "child": child.name,
                    "routes": int(routes),
                    "share": round(routes / chosen, 4) if chosen else 0.0,
                    "feedback": int(feedback),
                    "reward": reward,
                }
            )
        return {
            "node": node.name,
            "routes": int(chosen),
            "children": children,
            "all": int(counts.get(-1, ("*", 0.0))[1]),
            "stop": int(counts.get(-2, ("-", 0.0))[1]),
            "bandit": await self._bandit(predictor, node, children),
        }

    async def _bandit(
        self, predictor: PredictorPlan, node: PlanNode, children: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """A built-in bandit's arms, when the router runs in this process."""
        user = getattr(getattr(node.client, "component", None), "user", None)
        if not isinstance(user, BanditRouter):
            return None
        out: dict[str, Any] = {"algorithm": type(user).__name__, "arms": [], "history": []}
        epsilon = getattr(user, "epsilon", None)
        if isinstance(epsilon, float):
            out["epsilon"] = epsilon
        try:
            if isinstance(user.store, MemoryStore):
                counts = user.counts()
            else:  # Redis: network I/O, off the event loop
                counts = await asyncio.wait_for(asyncio.to_thread(user.counts), 2.0)
            values = user.values(counts)
        except Exception as exc:  # the figure is missing, never the page
            out["error"] = f"cannot read the bandit's state: {type(exc).__name__}: {exc}"
            return out
        tries = counts.tries
        for branch, value in enumerate(values):
            routed = children[branch] if branch < len(children) else {}
            out["arms"].append(
                {
                    "branch": branch,
                    "child": routed.get("child", str(branch)),
                    "pulls": routed.get("routes", 0),
                    "feedback": routed.get("feedback", 0),
                    "reward": routed.get("reward", 0.0),
                    "successes": counts.successes[branch],
                    "tries": tries[branch],
                    "value": round(value, 6),
                }
            )
        history = self._history.setdefault((predictor.name, node.name), deque(maxlen=HISTORY))
        rounded = [round(v, 6) for v in values]
        if not history or history[-1][1] != rounded:
            history.append((round(time.time(), 3), rounded))
        out["history"] = [{"time": t, "values": v} for t, v in history]
        return out

    def _shadow(self) -> dict[str, Any] | None:
        shadow = self.dataplane.shadow
        if shadow is None:
            return None
        counts = self.dataplane.shadow_counts()
        compared = counts["agree"] + counts["disagree"]
        return {
            "predictor": shadow.name,
            **{outcome: int(n) for outcome, n in counts.items()},
            "agreement": round(counts["agree"] / compared, 4) if compared else None,
        }

    # ---------------------------------------------------------------- requests

    def requests(self, limit: int) -> dict[str, Any]:
        """The ``limit`` newest predictions, newest first (``GET /dashboard/api/requests``)."""
        return {
            "capacity": self.recent.capacity,
            "held": len(self.recent),
            "requests": [self._record(r) for r in self.recent.latest(limit)],
        }

    def request(self, puid: str) -> dict[str, Any]:
        """One prediction's record (``GET /dashboard/api/requests/{puid}``); NotFound if none."""
        record = self.recent.get(puid)
        if record is None:
            raise NotFound(
                f"no request with puid {puid!r} among the last {len(self.recent)} recorded "
                f"(the dashboard keeps {self.recent.capacity}; set --dashboard-requests to "
                "keep more)"
            )
        return self._record(record)

    def _record(self, record: RequestRecord, shadow: bool = False) -> dict[str, Any]:
        predictor = next(
            (p for p in self.dataplane.plan.predictors if p.name == record.predictor), None
        )
        nodes = predictor.nodes if predictor is not None else {}
        depths = _depths(predictor.root) if predictor is not None else {}
        calls: list[dict[str, Any]] = []
        for name, method, started, seconds, status in sorted(record.calls, key=lambda c: c[2]):
            node = nodes.get(name)
            remote = node is not None and node.transport != "local"
            calls.append(
                {
                    "node": name,
                    "type": node_type(node) if node is not None else "",
                    "method": method,
                    "depth": depths.get(name, 0),
                    "start_ms": _ms(max(started - record.started, 0.0)),
                    "ms": _ms(seconds),
                    "status": status,
                    "transport": node.transport if node is not None else "",
                    "remote": remote,
                    "in_node_ms": None if remote else _ms(seconds),
                }
            )
        routes = {
            name: {"branch": index, "child": _child(nodes[name], index)}
            for name, index in record.routing.items()
            if name in nodes and nodes[name].route
        }
        path = list(dict.fromkeys(call[0] for call in sorted(record.calls, key=lambda c: c[2])))
        out: dict[str, Any] = {
            "puid": record.puid,
            "predictor": record.predictor,
            "time": round(record.time, 6),
            "at": datetime.fromtimestamp(record.time, UTC).isoformat(timespec="milliseconds"),
            "status": record.status,
            "ms": _ms(record.seconds),
            "path": path,
            "routes": routes,
            "calls": calls,
        }
        if not shadow:
            out["shadowed"] = self.dataplane.shadow is not None
            out["shadow"] = (
                None
                if record.shadow is None
                else {**self._record(record.shadow, True), "outcome": record.shadow_outcome}
            )
        return out
