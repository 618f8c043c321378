"""Tracing benchmark: the CPU a request costs the executor with tracing off and on.

A chain of ``--nodes`` no-op MODEL nodes runs in process (no transport: what is measured is
the executor's own path, where tracing hooks in), ``--requests`` requests one after the
other, ``--repeats`` times; the median CPU per request (``time.process_time``, which counts
the span processor's export thread too) is printed for each mode, with the ratio on/off.

- ``off``: no tracing (the serving path holds ``None``);
- ``on``: OpenTelemetry with the real ``BatchSpanProcessor`` and an exporter that only
  counts what it is handed (no network), and a ``traceparent`` on every request.

Run it against another checkout to compare (``off`` only, when that checkout has no
tracing): ``PYTHONPATH=/path/to/other/src python bench/tracing.py``.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
from collections.abc import Sequence
from typing import Any

from noop_chain import chain, cpu_per_request

from infergraph.graph.executor import Executor
from infergraph.graph.plan import PredictorPlan
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.metrics import Registry

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def counting_tracing() -> tuple[Any, list[int]]:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from infergraph.observability.otel_tracing import OtelTracing
    from infergraph.settings import TracingSettings

    exported = [0]

    class Counting(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            exported[0] += len(spans)
            return SpanExportResult.SUCCESS

    return OtelTracing(TracingSettings(enabled=True), "bench", Counting()), exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    plan = PredictorPlan("default", chain(args.nodes), 100, False, "")
    metrics = ExecutorMetrics(Registry(), "bench", "default", "")
    has_tracing = "tracing" in inspect.signature(Executor).parameters
    off = statistics.median(
        cpu_per_request(Executor(plan, metrics), args.requests, {"traceparent": TRACEPARENT})
        for _ in range(args.repeats)
    )
    print(f"off: {off * 1e6:.1f} µs CPU/request ({args.nodes} nodes in process)")
    if not has_tracing:
        print("on: this checkout has no tracing")
        return
    tracing, exported = counting_tracing()
    traced = Executor(plan, metrics, None, tracing)
    on = statistics.median(
        cpu_per_request(traced, args.requests, {"traceparent": TRACEPARENT})
        for _ in range(args.repeats)
    )
    tracing.shutdown()
    runs = args.repeats * 2 * args.requests  # each repeat: warm-up and measured
    print(
        f"on: {on * 1e6:.1f} µs CPU/request, {exported[0] / runs:.1f} spans/request, "
        f"{(on - off) * 1e6 / (args.nodes + 1):.1f} µs a span; on/off {on / off:.2f}x"
    )


if __name__ == "__main__":
    main()
