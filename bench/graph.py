"""Graph benchmark: what each extra hop of an inference graph costs, in process and with
``--processes``.

``infergraph serve`` runs a single no-op MODEL (graph-1) and a chain of three (graph-3),
each in one process and with ``--processes`` (each node its own process, called over
gRPC). The difference between graph-3 and graph-1, halved, is the cost of one hop: CPU per
request under load (``wrk -c32``) and p50 latency at concurrency 1 (``wrk -c1``).
Run ``python bench/graph.py --help``; the method is described in bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import cli, report
from harness.measure import Measured, Run, Settings, log, measure_once, start
from harness.prometheus import scrape
from harness.targets import ROOT, SAMPLE_ROW, SELDON_BODY, Ports, Target, seldon_rows

GRAPHS = ROOT / "bench" / "graphs"
OWN_PACKAGES = ["infergraph", "httptools", "uvloop", "grpcio", "protobuf", "numpy"]
MAX_FOREIGN = 0.10
EXTRA_HOPS = 2  # graph-3 has two node calls more than graph-1
RESULTS_BEGIN = "<!-- graph-bench:begin -->"
RESULTS_END = "<!-- graph-bench:end -->"
OVERHEAD = "infergraph_executor_overhead_seconds"
HOPS = "infergraph_executor_hops"
DEFAULT_TARGETS = (
    "graph-1",
    "graph-3",
    "graph-1-proc",
    "graph-3-proc",
    "graph-1-proc-grpc",
    "graph-3-proc-grpc",
    "graph-1-proc-seldon",
    "graph-3-proc-seldon",
    "graph-1-proc-grpc-seldon",
    "graph-3-proc-grpc-seldon",
)
THROUGHPUT, LATENCY = "throughput", "latency"


@dataclass(frozen=True)
class Mode:
    label: str  # how the table names it
    one: str  # the single-node target
    three: str  # the three-node target
    cpu_goal_us: float  # CPU per hop, at most
    p50_goal_ms: float | None  # added p50 per hop, at most (None: no goal)


MODES = (
    Mode("in process", "graph-1", "graph-3", 20.0, None),
    Mode("--processes (binary V2, REST: default)", "graph-1-proc", "graph-3-proc", 150.0, 0.3),
    Mode("--processes (binary V2, gRPC)", "graph-1-proc-grpc", "graph-3-proc-grpc", 150.0, 0.3),
    Mode(
        "--processes --node-protocol seldon (REST)",
        "graph-1-proc-seldon",
        "graph-3-proc-seldon",
        150.0,
        0.3,
    ),
    Mode(
        "--processes --node-protocol seldon (gRPC)",
        "graph-1-proc-grpc-seldon",
        "graph-3-proc-grpc-seldon",
        150.0,
        0.3,
    ),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    return cli.parse_args(
        argv,
        __doc__.splitlines()[0],
        DEFAULT_TARGETS,
        connections_help="wrk -c of the throughput runs",
        check_help="exit 3 when a per-hop goal is not met",
        repeats_help="measured rounds",
    )


preflight = cli.preflight


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- targets


def executor_counters(port: int) -> dict[str, float]:
    """The orchestrator's overhead and hop counters, from its /metrics."""
    totals = scrape(f"http://127.0.0.1:{port}/metrics")
    names = (f"{OVERHEAD}_sum", f"{OVERHEAD}_count", f"{HOPS}_sum", f"{HOPS}_count")
    return {n: totals.get(n, 0.0) for n in names}


def graph_answer(nodes: int) -> Callable[[Any], None]:
    """The answer must be the input row, and must have passed through ``nodes`` nodes."""
    rows = seldon_rows([SAMPLE_ROW])

    def check(resp: Any) -> None:
        rows(resp)
        path = resp.get("meta", {}).get("requestPath", {})
        if len(path) != nodes:
            raise ValueError(f"expected {nodes} nodes in meta.requestPath, got {path!r}")

    return check


def build_targets() -> dict[str, Target]:
    infergraph = ROOT / ".venv" / "bin" / "infergraph"

    def serve(manifest: str, extra: list[str]) -> Callable[[Ports], list[str]]:
        return lambda p: [
            str(infergraph),
            "serve",
            str(GRAPHS / manifest),
            "--path",
            str(GRAPHS),
            "--host",
            "127.0.0.1",
            "--http-port",
            str(p.http),
            "--grpc-port",
            str(p.grpc),
            "--log-level",
            "WARNING",
            *extra,
        ]

    variants = (
        ("", "", [], "in one process"),
        ("-proc", "", ["--processes"], "each node its own process, binary V2 over REST"),
        ("-proc-grpc", "-grpc", ["--processes"], "each node its own process, binary V2 over gRPC"),
        (
            "-proc-seldon",
            "",
            ["--processes", "--node-protocol", "seldon"],
            "each node its own process, Seldon JSON over REST",
        ),
        (
            "-proc-grpc-seldon",
            "-grpc",
            ["--processes", "--node-protocol", "seldon"],
            "each node its own process, Seldon protobuf over gRPC",
        ),
    )
    targets = []
    for nodes in (1, 3):
        for suffix, manifest_suffix, extra, how in variants:
            manifest = f"graph-{nodes}{manifest_suffix}.yaml"
            targets.append(
                Target(
                    name=f"graph-{nodes}{suffix}",
                    description=f"infergraph serve {manifest} {' '.join(extra)}: {how}",
                    executable=infergraph,
                    install_hint="make venv",
                    cwd=ROOT,
                    path="/api/v1.0/predictions",
                    body=SELDON_BODY,
                    validate=graph_answer(nodes),
                    command=serve(manifest, extra),
                    counters=executor_counters,
                )
            )
    return {t.name: t for t in targets}


# ---------------------------------------------------------------- measuring


def measure(targets: list[Target], loads: dict[str, Settings]) -> dict[str, dict[str, Measured]]:
    """Start every target once, then run interleaved rounds: in each round every target
    gets one run per load (throughput at -c32, then latency at -c1), the target order
    rotating from round to round. Always stops the servers."""
    first = next(iter(loads.values()))
    started: list[Measured] = []
    by_load: dict[str, dict[str, Measured]] = {load: {} for load in loads}
    try:
        for target in targets:
            m = start(target, first)
            started.append(m)
            for load in loads:
                by_load[load][target.name] = (
                    m if load == THROUGHPUT else replace(m, runs=[], contended=[])
                )
        live = [m.target.name for m in started if m.failure is None]
        for round_no in range(1, first.repeats + 1):
            shift = (round_no - 1) % max(len(live), 1)
            for name in live[shift:] + live[:shift]:
                for load, settings in loads.items():
                    m = by_load[load][name]
                    if any(by_load[other][name].failure for other in loads):
                        break
                    try:
                        measure_once(m, round_no, settings)
                    except (RuntimeError, OSError, ValueError) as err:
                        m.failure = f"measurement failed: {err}"
                        log(f"{name} ({load}): FAILED: {m.failure}")
    finally:
        for m in started:
            if m.server is not None:
                m.server.stop()
    return by_load


# ---------------------------------------------------------------- figures


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def cpu_us(r: Run) -> float:
    return r.cpu_us_per_request


def p50_ms(r: Run) -> float:
    return r.wrk.p50_ms


def overhead_us_per_request(r: Run) -> float:
    count = r.counters.get(f"{OVERHEAD}_count", 0.0)
    return r.counters.get(f"{OVERHEAD}_sum", 0.0) * 1e6 / count if count else math.nan


def overhead_us_per_hop(r: Run) -> float:
    hops = r.counters.get(f"{HOPS}_sum", 0.0)
    return r.counters.get(f"{OVERHEAD}_sum", 0.0) * 1e6 / hops if hops else math.nan


def hops_per_request(r: Run) -> float:
    count = r.counters.get(f"{HOPS}_count", 0.0)
    return r.counters.get(f"{HOPS}_sum", 0.0) / count if count else math.nan


def median_of(m: Measured | None, metric: Callable[[Run], float]) -> float:
    return _median([metric(r) for r in m.clean_runs]) if m is not None else math.nan


def per_hop(
    one: Measured | None, three: Measured | None, metric: Callable[[Run], float]
) -> tuple[float, list[float]]:
    """The cost of one hop, and the same figure round by round.

    Each round gives (three - one) / EXTRA_HOPS from the two targets' runs in that round,
    which ran minutes apart at most; the figure is the median over rounds. Without a round
    where both have a clean run, it falls back to the difference of the two medians."""
    if one is None or three is None or not one.clean_runs or not three.clean_runs:
        return math.nan, []
    base = {r.round: metric(r) for r in one.clean_runs}
    rounds = [(metric(r) - base[r.round]) / EXTRA_HOPS for r in three.clean_runs if r.round in base]
    if rounds:
        return _median(rounds), rounds
    return (median_of(three, metric) - median_of(one, metric)) / EXTRA_HOPS, rounds


def table(by_load: dict[str, dict[str, Measured]], names: list[str]) -> list[str]:
    tp, lat = by_load[THROUGHPUT], by_load[LATENCY]
    lines = [
        "| target | req/s (c32) | CPU µs/req (c32) | server CPU (c32) | core idle (c32) "
        "| wrk CPU (c32) | p50 ms (c1) | p99 ms (c1) | req/s (c1) | CPU µs/req (c1) "
        "| executor overhead µs/req (c1) | hops/req | other processes | clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        t, la = tp[name], lat[name]
        if not t.clean_runs or not la.clean_runs:
            reason = (t.failure or la.failure or "no clean run").splitlines()[0]
            lines.append(f"| {name} | FAILED: {reason} |" + " |" * 12)
            continue
        others = _median([r.foreign_share for r in t.clean_runs + la.clean_runs])
        lines.append(
            f"| {name} | {median_of(t, lambda r: r.wrk.rps):,.0f} "
            f"| {median_of(t, cpu_us):,.0f} "
            f"| {median_of(t, lambda r: r.server_cpu_s / r.wall_s):.0%} "
            f"| {median_of(t, lambda r: r.core_idle_s / r.wall_s):.0%} "
            f"| {median_of(t, lambda r: r.wrk.client_cpu_s / r.wall_s):.0%} "
            f"| {median_of(la, p50_ms):.3f} | {median_of(la, lambda r: r.wrk.p99_ms):.3f} "
            f"| {median_of(la, lambda r: r.wrk.rps):,.0f} | {median_of(la, cpu_us):,.0f} "
            f"| {_fmt(median_of(la, overhead_us_per_request), '.1f')} "
            f"| {_fmt(median_of(la, hops_per_request), '.0f')} "
            f"| {others:.0%} | {len(t.clean_runs)}/{len(t.runs)} + "
            f"{len(la.clean_runs)}/{len(la.runs)} |"
        )
    return lines


def hop_figures(by_load: dict[str, dict[str, Measured]]) -> tuple[list[str], bool]:
    """The per-hop table, and whether every measured goal was met."""
    tp, lat = by_load[THROUGHPUT], by_load[LATENCY]
    lines = [
        "| mode | figure | per hop | per-round range | goal | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    all_met = True

    def row(
        mode: Mode,
        figure: str,
        value: float,
        rounds: list[float],
        unit: str,
        spec: str,
        goal: float | None,
    ) -> None:
        nonlocal all_met
        spread = f"{format(min(rounds), spec)} to {format(max(rounds), spec)}" if rounds else ""
        if math.isnan(value):
            verdict = "not measured"
        elif goal is None:
            verdict = ""
        elif value <= goal:
            verdict = "met"
        else:
            verdict = "**NOT met**"
            all_met = False
        goal_text = f"≤ {goal:g} {unit}" if goal is not None else "none"
        lines.append(
            f"| {mode.label} | {figure} | {_fmt(value, spec)} {unit} | {spread} | {goal_text} "
            f"| {verdict} |"
        )

    for mode in MODES:
        if mode.one not in tp and mode.three not in tp:
            continue
        value, rounds = per_hop(tp.get(mode.one), tp.get(mode.three), cpu_us)
        row(mode, "CPU per hop (c32)", value, rounds, "µs", ".1f", mode.cpu_goal_us)
        value, rounds = per_hop(lat.get(mode.one), lat.get(mode.three), p50_ms)
        row(mode, "added p50 per hop (c1)", value, rounds, "ms", ".3f", mode.p50_goal_ms)
        three = lat.get(mode.three)
        if three is not None and three.clean_runs:
            runs = three.clean_runs
            row(
                mode,
                f"{mode.three}: executor overhead / hops (server's view, c1)",
                _median([overhead_us_per_hop(r) for r in runs]),
                [overhead_us_per_hop(r) for r in runs],
                "µs",
                ".1f",
                None,
            )
    return lines, all_met


def problems(by_load: dict[str, dict[str, Measured]]) -> list[str]:
    out: list[str] = []
    for load, measured in by_load.items():
        tagged = [
            replace(m, target=replace(m.target, name=f"{name} ({load})"))
            for name, m in measured.items()
        ]
        out += report.errors(tagged, MAX_FOREIGN)
    return list(dict.fromkeys(out))  # a start-up failure is shared by both loads


def render(
    args: argparse.Namespace, argv: list[str], by_load: dict[str, dict[str, Measured]]
) -> tuple[str, bool]:
    venv = ROOT / ".venv" / "bin" / "python"
    command = shlex.join([".venv/bin/python", "bench/graph.py", *argv])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    names = list(by_load[THROUGHPUT])
    hop_lines, met = hop_figures(by_load)
    lines = [
        f"## Graph hop cost ({now})",
        "",
        f"- command: `{command}`",
        f"- date: {now}",
        f"- CPU: {report.cpu_model()} ({os.cpu_count()} cores); "
        f"kernel {platform.release()}; Python {platform.python_version()}",
        f"- method: `infergraph serve` on CPU {args.server_cpu} (`taskset`; with "
        "`--processes` the node processes inherit it and their CPU is counted with the "
        f"server's), wrk on CPU {args.client_cpu}; {args.repeats} interleaved rounds, each "
        f"running every target for {args.duration} s at `wrk -t1 -c{args.connections}` "
        f"(throughput, CPU) and {args.duration} s at `wrk -t1 -c1` (latency), after a "
        f"{args.warmup} s warm-up; one-row Seldon JSON requests; medians over clean runs",
        "- graphs: `bench/graphs/graph-1.yaml` (one no-op MODEL), `graph-3.yaml` (chain "
        "m1 → m2 → m3 of the same no-op MODEL: 2 more hops); `-proc`: `--processes` with "
        "the default node transport (REST); `-proc-grpc`: `--processes` with "
        "`spec.transport: grpc` (`graph-1-grpc.yaml`, `graph-3-grpc.yaml`)",
        f"- project venv: {report.package_versions(venv, OWN_PACKAGES)}",
        f"- load generator: {report.wrk_version()}",
        "",
        *table(by_load, names),
        "",
        *hop_lines,
        "",
        f"Per hop = (graph-3 - graph-1) / {EXTRA_HOPS}, computed for each round from the "
        "two targets' clean runs in that round (rounds where either has none are skipped); "
        "the value is the median over rounds, the range their spread. CPU per "
        "hop comes from the throughput runs (CPU time of the serve process and all its "
        "children, /proc utime+stime, over requests completed); added p50 per hop from the "
        "latency runs at concurrency 1, where no request waits behind another. Executor "
        f"overhead: `{OVERHEAD}` sum / `{HOPS}` sum over the runs (scraped from `/metrics` "
        "before and after each), the orchestrator's own measure: a request's wall time "
        "minus the time inside its node calls, per node call (graph-3 makes 3), from the "
        "latency runs; with `--processes` a node call's time includes its round trip to the "
        "node, so the transport is not in this figure. core idle: share of the run CPU "
        f"{args.server_cpu} sat idle; other processes: CPU of processes not started by the "
        "benchmark, machine-wide, as a share of one core; runs above "
        f"{MAX_FOREIGN:.0%} are re-run and left out of the medians. clean runs: "
        "throughput + latency.",
    ]
    found = problems(by_load)
    if found:
        lines += [
            "",
            "**Problems** (failed, invalid and contended runs are excluded from the medians):",
            "",
            *found,
        ]
    return "\n".join(lines) + "\n", met


def dump_json(path: Path, by_load: dict[str, dict[str, Measured]]) -> None:
    data = {
        load: {name: report.measured_json(m) for name, m in measured.items()}
        for load, measured in by_load.items()
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    preflight(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    all_targets = build_targets()
    selected = [all_targets[name] for name in args.targets.split(",")]
    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graph-", dir=cache) as work:
        throughput = Settings(
            duration_s=args.duration,
            repeats=args.repeats,
            warmup_s=args.warmup,
            connections=args.connections,
            threads=1,
            server_cpu=args.server_cpu,
            client_cpu=args.client_cpu,
            startup_timeout_s=args.startup_timeout,
            work_dir=Path(work),
            max_foreign=MAX_FOREIGN,
            retries=args.retries,
        )
        loads = {THROUGHPUT: throughput, LATENCY: replace(throughput, connections=1)}
        by_load = measure(selected, loads)
        logs = cache / "logs"
        logs.mkdir(exist_ok=True)
        for log_file in Path(work).glob("*.log"):
            shutil.copy(log_file, logs / log_file.name)
    text, met = render(args, argv, by_load)
    print()
    print(text)
    if args.json:
        dump_json(args.json, by_load)
    if args.write_results:
        report.update_results(ROOT / "bench" / "RESULTS.md", text, RESULTS_BEGIN, RESULTS_END)
        log("updated bench/RESULTS.md")
    every = [m for measured in by_load.values() for m in measured.values()]
    return report.exit_status(every, met, args.check)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\n[bench] interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
