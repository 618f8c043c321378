"""The registry: a histogram shared under a second name counts once and renders twice."""

from __future__ import annotations

from infergraph.observability.metrics import Registry, merge_snapshots, render
from tests.helpers.procs import metric_sum, parse_metrics


def test_shared_histogram_is_one_observation_under_two_names() -> None:
    registry = Registry()
    child = registry.histogram("seldon_x_seconds", (("model_name", "a"),), (0.1, 1.0), "x")
    registry.share("infergraph_x_seconds", (("node", "a"), ("node_type", "MODEL")), child, "y")
    child.observe(0.05)
    child.observe(0.5)
    samples = parse_metrics(render(registry))
    for name, labels in (("seldon_x_seconds", {"model_name": "a"}), ("infergraph_x_seconds", {})):
        assert metric_sum(samples, f"{name}_count", **labels) == 2
        assert metric_sum(samples, f"{name}_bucket", le="0.1", **labels) == 1
    assert "# TYPE infergraph_x_seconds histogram" in render(registry)


def test_shared_histogram_adds_up_across_workers() -> None:
    snapshots = []
    for _ in range(2):
        registry = Registry()
        child = registry.histogram("seldon_x_seconds", (), (1.0,))
        registry.share("infergraph_x_seconds", (("node", "a"),), child)
        child.observe(0.5)
        snapshots.append(registry.snapshot())
    samples = parse_metrics(render(merge_snapshots(snapshots)))
    assert metric_sum(samples, "seldon_x_seconds_count") == 2
    assert metric_sum(samples, "infergraph_x_seconds_count", node="a") == 2
