"""The orchestrator's metrics, with the Seldon executor's names, buckets and labels, plus
the overhead the graph adds on top of the time spent inside its nodes, every node's calls
by node type, and what each router chose and was rewarded for, per child.

Every series is listed in docs/graph.md (Metrics), which the Grafana dashboard in
deploy/grafana/ is built on. Label tuples are built once per key and kept, so a request
costs a dictionary lookup and an addition per series; the per-node histogram is Seldon's
client histogram exposed a second time, at no cost per call.
"""

from __future__ import annotations

from infergraph.observability.metrics import EXECUTOR_BUCKETS, Histogram, Labels, Registry

__all__ = ["ExecutorMetrics"]

SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
OVERHEAD = "infergraph_executor_overhead_seconds"
HOPS = "infergraph_executor_hops"
NODE = "infergraph_node_request_duration_seconds"
ROUTES = "infergraph_router_routes_total"
FEEDBACK = "infergraph_router_feedback_total"
REWARD = "infergraph_router_reward_total"
OVERHEAD_BUCKETS = (
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1,
)  # fmt: skip
HOP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50)


def _image_parts(image: str) -> tuple[str, str]:
    name, _, version = image.rpartition(":") if ":" in image else (image, "", "")
    return name, version


class ExecutorMetrics:
    """Per predictor: server requests, node (client) calls, and the graph's own overhead."""

    def __init__(
        self, registry: Registry, deployment: str, predictor: str, predictor_version: str = ""
    ) -> None:
        self.registry = registry
        self._base: Labels = (
            ("deployment_name", deployment),
            ("predictor_name", predictor),
            ("predictor_version", predictor_version),
        )
        self._server: dict[tuple[str, str, str], Histogram] = {}
        self._client: dict[tuple[str, str, str, str, str], Histogram] = {}
        self._branches: dict[tuple[str, int], Labels] = {}
        self._overhead = registry.histogram(
            OVERHEAD,
            self._base,
            OVERHEAD_BUCKETS,
            "End-to-end time of a graph request minus the time spent inside its nodes",
        )
        self._hops = registry.histogram(
            HOPS, self._base, HOP_BUCKETS, "Node calls made per graph request"
        )

    def server(self, service: str, method: str, code: str, seconds: float) -> None:
        key = (service, method, code)
        hist = self._server.get(key)
        if hist is None:
            labels = (*self._base, ("service", service), ("method", method), ("code", code))
            hist = self._server[key] = self.registry.histogram(
                SERVER, labels, EXECUTOR_BUCKETS, "Requests the orchestrator served"
            )
        hist.observe(seconds)

    def client(
        self,
        node: str,
        image: str,
        service: str,
        method: str,
        code: str,
        seconds: float,
        node_type: str = "",
    ) -> None:
        """One call to a node: Seldon's client histogram, and ours with the node's type."""
        key = (node, image, service, method, code)
        hist = self._client.get(key)
        if hist is None:
            name, version = _image_parts(image)
            labels = (
                *self._base,
                ("service", service),
                ("method", method),
                ("code", code),
                ("model_name", node),
                ("model_image", name),
                ("model_version", version),
            )
            hist = self._client[key] = self.registry.histogram(
                CLIENT, labels, EXECUTOR_BUCKETS, "Calls the orchestrator made to graph nodes"
            )
            # a node's image and transport are fixed: the same observations, our names
            ours = (
                *self._base,
                ("node", node),
                ("node_type", node_type),
                ("service", service),
                ("code", code),
            )
            self.registry.share(NODE, ours, hist, "Calls to each graph node, by node type")
        hist.observe(seconds)

    def _branch(self, router: str, branch: int, child: str) -> Labels:
        labels = self._branches.get((router, branch))
        if labels is None:
            labels = self._branches[(router, branch)] = (
                *self._base,
                ("router", router),
                ("branch", str(branch)),
                ("child", child),
            )
        return labels

    def route(self, router: str, branch: int, child: str) -> None:
        """A router chose ``branch`` (``child``; -1 is every child, -2 none)."""
        labels = self._branch(router, branch, child)
        self.registry.inc(ROUTES, labels, 1.0, "Routing decisions of each router, per child")

    def router_feedback(self, router: str, branch: int, child: str, reward: float) -> None:
        """A router took a feedback for the request it sent to ``branch``."""
        labels = self._branch(router, branch, child)
        self.registry.inc(FEEDBACK, labels, 1.0, "Feedback each router took, per child")
        self.registry.inc(REWARD, labels, reward, "Sum of the rewards each router took, per child")

    def node_calls(self, node: str) -> tuple[int, int]:
        """(calls, failed calls) made to ``node`` so far, feedback left out, read from the
        client histograms above."""
        calls = failed = 0
        for (name, _, service, _, code), hist in list(self._client.items()):
            if name == node and service != "/send-feedback":
                calls += hist.count
                if code != "200":
                    failed += hist.count
        return calls, failed

    def router_counts(self, router: str) -> dict[int, tuple[str, float, float, float]]:
        """What ``router`` chose so far, by branch: (child, routes, feedback, reward sum),
        read from the counters above (the serving path counts nothing twice)."""
        counters = self.registry.counters
        out = {}
        for (name, branch), labels in list(self._branches.items()):
            if name == router:
                out[branch] = (
                    labels[-1][1],
                    counters.get((ROUTES, labels), 0.0),
                    counters.get((FEEDBACK, labels), 0.0),
                    counters.get((REWARD, labels), 0.0),
                )
        return out

    def overhead(self, seconds: float, hops: int) -> None:
        self._overhead.observe(max(seconds, 0.0))
        self._hops.observe(hops)
