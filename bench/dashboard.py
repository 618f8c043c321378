"""Dashboard benchmark: the CPU a request costs the executor with the request record off and on.

As ``bench/tracing.py``: a chain of ``--nodes`` no-op MODEL nodes in process (no transport:
what is measured is the executor's own path, where the record hooks in), ``--requests``
requests one after the other; the median CPU per request over ``--repeats`` is printed for

- ``off``: no record (the executor holds ``None``: ``infergraph serve --no-dashboard``);
- ``on``: a :class:`~infergraph.observability.recent.RecentRequests` of 100 (the default of
  ``infergraph serve``);
- ``other``: with ``--other SRC``, ``off`` of another checkout (``/work/main/src``), in a
  subprocess, measured in turn with the two above so that all three see the same machine.

Usage: ``PYTHONPATH=src python bench/dashboard.py --other ../main/src``
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys

from noop_chain import chain, cpu_per_request

from infergraph.graph.executor import Executor
from infergraph.graph.plan import PredictorPlan
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.metrics import Registry


def executor(nodes: int, recorded: bool) -> Executor:
    root = chain(nodes)
    plan = PredictorPlan("default", root, 100, False, "", {n.name: n for n in root.walk()})
    metrics = ExecutorMetrics(Registry(), "bench", "default", "")
    if not recorded:
        return Executor(plan, metrics)
    from infergraph.observability.recent import RecentRequests

    return Executor(plan, metrics, recent=RecentRequests(100))


def other(src: str, nodes: int, requests: int) -> float:
    """``off`` of the checkout at ``src``, measured in a subprocess."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((src, os.path.dirname(__file__)))}
    code = (
        "import json, sys; sys.argv = ['x']; "
        "import importlib.util as u; "
        f"spec = u.spec_from_file_location('b', {__file__!r}); m = u.module_from_spec(spec); "
        "spec.loader.exec_module(m); "
        f"print(json.dumps(m.cpu_per_request(m.executor({nodes}, False), {requests})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--other", metavar="SRC", help="also measure this checkout's src (off)")
    args = parser.parse_args()
    if "recent" not in inspect.signature(Executor).parameters:
        sys.exit("this checkout has no request record; run it with PYTHONPATH=<this tree>/src")
    runs: dict[str, list[float]] = {"off": [], "on": [], "other": []}
    for _ in range(args.repeats):  # interleaved: each mode sees the same machine
        runs["off"].append(cpu_per_request(executor(args.nodes, False), args.requests))
        runs["on"].append(cpu_per_request(executor(args.nodes, True), args.requests))
        if args.other:
            runs["other"].append(other(args.other, args.nodes, args.requests))
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    print(f"off:   {off * 1e6:.1f} µs CPU/request ({args.nodes} nodes in process)")
    print(
        f"on:    {on * 1e6:.1f} µs CPU/request, {(on - off) * 1e6 / args.nodes:.2f} µs a node "
        f"call; on/off {on / off:.2f}x"
    )
    if args.other:
        base = statistics.median(runs["other"])
        print(
            f"other: {base * 1e6:.1f} µs CPU/request ({args.other}, off); "
            f"off/other {off / base:.2f}x, on/other {on / base:.2f}x"
        )


if __name__ == "__main__":
    main()
