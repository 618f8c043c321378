"""Summarise runs as medians, compute the goal ratios, and render markdown.

Medians (not means) because the machine is shared and noisy: one disturbed run should
not move the headline. Ratios are medians of one target over medians of another from the
same invocation; the per-round ratio range is shown too, so a reader can see how stable
the ratio was across interleaved rounds.
"""

from __future__ import annotations

import math
import platform
import re
import statistics
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.measure import Measured, Run, log

RESULTS_BEGIN = "<!-- component-bench:begin -->"
RESULTS_END = "<!-- component-bench:end -->"


@dataclass(frozen=True)
class Goal:
    label: str
    numerator: str
    denominator: str
    metric: str  # "rps" or "cpu"
    op: str  # ">=" or "<="
    bound: float


GOALS = (
    Goal("infergraph / kserve req/s", "infergraph", "kserve", "rps", ">=", 3.0),
    Goal("infergraph / seldon req/s", "infergraph", "seldon", "rps", ">=", 6.0),
    Goal("infergraph-batch / kserve req/s", "infergraph-batch", "kserve", "rps", ">=", 3.0),
    Goal("infergraph-batch / seldon req/s", "infergraph-batch", "seldon", "rps", ">=", 6.0),
    Goal(
        "infergraph-noop / bare-asgi CPU per request",
        "infergraph-noop",
        "bare-asgi",
        "cpu",
        "<=",
        2.0,
    ),
)

_METRICS: dict[str, Callable[[Run], float]] = {
    "rps": lambda r: r.wrk.rps,
    "cpu": lambda r: r.cpu_us_per_request,
}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def median_of(m: Measured, metric: Callable[[Run], float]) -> float:
    return _median([metric(r) for r in m.clean_runs])


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "unknown"


def package_versions(python: Path, names: list[str]) -> str:
    """``name==version`` for packages in another virtualenv (we cannot import them here)."""
    if not python.exists():
        return "not installed"
    code = (
        "import sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "for n in sys.argv[1:]:\n"
        "    try: print(f'{n}=={version(n)}')\n"
        "    except PackageNotFoundError: print(f'{n}: missing')\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, timeout=60, check=False
    )
    return ", ".join(done.stdout.split()) if done.returncode == 0 else "unknown"


def wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    first = (done.stdout or done.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def table(measured: list[Measured]) -> list[str]:
    lines = [
        "| target | req/s | p50 ms | p99 ms | CPU µs/req | server CPU | core idle | wrk CPU "
        "| other processes | clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        name = m.target.name
        if not m.clean_runs:
            reason = (m.failure or "no clean run").splitlines()[0]
            lines.append(f"| {name} | FAILED: {reason} | | | | | | | | 0/{len(m.runs)} |")
            continue
        server_util = median_of(m, lambda r: r.server_cpu_s / r.wall_s)
        client_util = median_of(m, lambda r: r.wrk.client_cpu_s / r.wall_s)
        others = median_of(m, lambda r: r.foreign_share)
        idle = median_of(m, lambda r: r.core_idle_s / r.wall_s)
        lines.append(
            f"| {name} | {_fmt(median_of(m, _METRICS['rps']), ',.0f')} "
            f"| {_fmt(median_of(m, lambda r: r.wrk.p50_ms), '.2f')} "
            f"| {_fmt(median_of(m, lambda r: r.wrk.p99_ms), '.2f')} "
            f"| {_fmt(median_of(m, _METRICS['cpu']), ',.0f')} "
            f"| {server_util:.0%} | {idle:.0%} | {client_util:.0%} "
            f"| {others:.0%} "
            f"| {len(m.clean_runs)}/{len(m.runs)} |"
        )
    return lines


def _per_round(num: Measured, den: Measured, metric: Callable[[Run], float]) -> list[float]:
    by_round = {r.round: metric(r) for r in den.clean_runs}
    return [metric(r) / by_round[r.round] for r in num.clean_runs if r.round in by_round]


def ratios(measured: list[Measured]) -> tuple[list[str], bool]:
    """Markdown lines for each goal ratio, and whether every computable goal was met."""
    by_name = {m.target.name: m for m in measured}
    lines = ["| ratio | value | per-round range | goal | verdict |", "|---|---:|---:|---:|---|"]
    all_met = True
    for goal in GOALS:
        num, den = by_name.get(goal.numerator), by_name.get(goal.denominator)
        if num is None or den is None or not num.clean_runs or not den.clean_runs:
            lines.append(f"| {goal.label} | n/a | | {goal.op} {goal.bound:g} | not measured |")
            continue
        metric = _METRICS[goal.metric]
        value = median_of(num, metric) / median_of(den, metric)
        rounds = _per_round(num, den, metric)
        spread = f"{min(rounds):.2f} to {max(rounds):.2f}" if rounds else ""
        met = value >= goal.bound if goal.op == ">=" else value <= goal.bound
        all_met &= met
        verdict = "met" if met else "**NOT met**"
        lines.append(
            f"| {goal.label} | {value:.2f} | {spread} | {goal.op} {goal.bound:g} | {verdict} |"
        )
    return lines, all_met


def errors(measured: list[Measured], max_foreign: float) -> list[str]:
    """Every failure, invalid or contended run, spelled out: nothing is dropped silently."""
    out: list[str] = []
    for m in measured:
        if m.failure:
            out.append(f"- **{m.target.name}**: {m.failure.splitlines()[0]}")
        for r in m.contended:
            out.append(
                f"- {m.target.name} round {r.round}: discarded and re-run, "
                f"{r.describe_foreign()} ({r.wrk.rps:,.0f} req/s)"
            )
        for r in m.runs:
            if r.valid and r.foreign_share > max_foreign:
                out.append(
                    f"- **{m.target.name}** round {r.round}: still contended after all re-runs "
                    f"({r.describe_foreign()}); excluded from the medians"
                )
        for r in m.runs:
            if not r.valid:
                out.append(
                    f"- **{m.target.name}** round {r.round}: INVALID, excluded "
                    f"({r.wrk.requests} requests, errors: {r.wrk.describe_errors()})"
                )
    return out


def update_results(
    path: Path, section: str, begin: str = RESULTS_BEGIN, end: str = RESULTS_END
) -> None:
    """Replace the section of RESULTS.md between ``begin`` and ``end`` (by default the
    component benchmark's), or append it; other sections are kept as they are."""
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    if path.exists():
        text = path.read_text()
    else:
        text = (
            "# Benchmark results\n\nWritten by `bench/component.py --write-results`; "
            "see `bench/README.md` for the method.\n\n"
        )
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def exit_status(measured: Iterable[Measured], met: bool, check: bool) -> int:
    """A benchmark's exit code: 1 (logged) when a target failed, had invalid runs or no
    uncontended one; 3 when ``check`` and a goal was not met; else 0."""
    every = list(measured)
    broken = [m.target.name for m in every if m.failure or len(m.valid_runs) < len(m.runs)]
    if broken:
        names = ", ".join(sorted(set(broken)))
        log(f"ERROR: invalid or failed targets: {names} (see Problems above)")
        return 1
    unmeasured = [m.target.name for m in every if not m.clean_runs]
    if unmeasured:
        names = ", ".join(sorted(set(unmeasured)))
        log(f"ERROR: no uncontended run for: {names} (machine too busy)")
        return 1
    return 3 if check and not met else 0


def measured_json(m: Measured) -> dict[str, Any]:
    """One target's runs as plain data, for ``--json``."""
    return {
        "failure": m.failure,
        "runs": [
            {
                "round": r.round,
                "valid": r.valid,
                "clean": r in m.clean_runs,
                "requests": r.wrk.requests,
                "rps": r.wrk.rps,
                "p50_ms": r.wrk.p50_ms,
                "p99_ms": r.wrk.p99_ms,
                "errors": r.wrk.errors,
                "non_2xx": r.wrk.non_2xx,
                "server_cpu_s": r.server_cpu_s,
                "cpu_us_per_request": r.cpu_us_per_request,
                "wrk_cpu_s": r.wrk.client_cpu_s,
                "wall_s": r.wall_s,
                "foreign_cpu_s": r.foreign_cpu_s,
                "core_idle_s": r.core_idle_s,
                "counters": r.counters,
            }
            for r in m.runs
        ],
    }
