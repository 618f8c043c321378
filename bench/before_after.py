"""Before and after: two source trees' infergraph targets, measured in one interleaved run.

The targets are those of the component, graph and V2 benchmarks; each figure gets an after /
before ratio. On a shared, noisy machine two runs one after the other differ by more than a
change that should cost nothing (a move of code between packages), so both trees are measured
in the same run: every target is started twice from the same ``.venv``, as ``env
PYTHONPATH=<tree> <command>`` (the venv's editable install is only a ``.pth`` path, which
comes after ``PYTHONPATH``; each tree is checked to be the one imported), and the suite's
interleaved rounds run both copies in every round. A figure whose after median is worse than
the before median by more than 5 % is flagged; ``--check`` makes that exit status 3.
Run ``python bench/before_after.py --help``; bench/README.md has the commands.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import component
import graph
import v2
from harness import cli, compare, report
from harness.measure import Measured, Run, Settings, log, measure_all
from harness.procs import free_port
from harness.targets import ROOT, Ports, Target, build_targets, server_env
from v2_loads import LATENCY, THROUGHPUT
from v2_loads import measure as measure_v2

RESULTS_BEGIN = "<!-- before-after-bench:begin -->"
RESULTS_END = "<!-- before-after-bench:end -->"
SIDES = ("before", "after")
SUITES: dict[str, tuple[str, ...]] = {
    "component": ("infergraph", "infergraph-batch", "infergraph-noop"),
    "graph": graph.DEFAULT_TARGETS,
    "v2": (
        "infergraph-rest",
        "infergraph-grpc",
        "infergraph-rest-batch",
        "infergraph-grpc-batch",
        "infergraph-rest-binary",
        *v2.BIG_TARGETS,
    ),
}
YARDSTICKS = ("kserve", "seldon")  # component-suite peers, run once (one tree is theirs)
Results = dict[str, dict[str, Measured]]  # load -> target name -> runs


def parse_args(argv: list[str]) -> argparse.Namespace:
    every = [name for names in SUITES.values() for name in names]
    p = cli.parser(
        __doc__.splitlines()[0],
        every,
        connections_help="concurrent requests of the throughput runs",
        check_help="exit 3 when a figure is worse after than before by more than 5%%",
        repeats_help="measured rounds",
    )
    p.add_argument("--before", type=Path, required=True, help="the src folder of the other tree")
    p.add_argument("--after", type=Path, default=ROOT / "src", help="default: this tree's src")
    p.add_argument("--suites", default=",".join(SUITES), help="comma list of: component,graph,v2")
    p.add_argument(
        "--yardstick",
        default="kserve",
        choices=(*YARDSTICKS, "none"),
        help="a peer run once in the component suite, to show the machine's drift",
    )
    p.add_argument(
        "--max-foreign",
        type=float,
        default=0.10,
        help="share of a core other processes may use during a run before it is re-run and "
        "left out (default 0.10; on a machine that is never quiet, a higher bound keeps the "
        "runs: both trees share the noise round by round)",
    )
    args = p.parse_args(argv)
    cli.validate(p, args, every)
    unknown = set(args.suites.split(",")) - set(SUITES)
    if unknown:
        p.error(f"unknown suites: {', '.join(sorted(unknown))}")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- trees


def interpreter() -> Path:
    """The python of the ``infergraph`` console script the targets start (its shebang)."""
    script = ROOT / ".venv" / "bin" / "infergraph"
    return Path(script.read_text().splitlines()[0].removeprefix("#!").strip())


def imported_from(src: Path) -> Path:
    """Where the servers' python imports infergraph from under ``PYTHONPATH=src``, with the
    script folder first on ``sys.path`` as for a console script; exits unless inside ``src``."""
    python = interpreter()
    code = f"import sys; sys.path[0] = {str(python.parent)!r}; import infergraph; "
    code += "print(infergraph.__file__)"
    done = subprocess.run(
        ["env", f"PYTHONPATH={src}", str(python), "-c", code],
        env=server_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = Path(done.stdout.strip()).resolve() if done.returncode == 0 else None
    if found is None or not found.is_relative_to(src.resolve()):
        sys.exit(f"error: PYTHONPATH={src} imports infergraph from {found}: {done.stderr[-500:]}")
    return found


def describe_tree(src: Path) -> str:
    def git(*words: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(src), *words], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h (%cs)")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--untracked-files=no", ".")
    return f"{commit}{', with uncommitted changes' if dirty else ''}"


def on_tree(target: Target, side: str, src: Path) -> Target:
    """``target`` served from ``src``: the same command under ``env PYTHONPATH=src``."""
    base = target.command
    return replace(
        target,
        name=f"{target.name}@{side}",
        command=lambda p: ["env", f"PYTHONPATH={src}", *base(p)],
    )


REST_MANIFESTS = {
    str(graph.GRAPHS / f"graph-{n}.yaml"): str(graph.GRAPHS / f"graph-{n}-rest.yaml")
    for n in (1, 3)
}


def pin_rest(target: Target) -> Target:
    """A ``--processes`` graph on the default node transport, pinned to REST (today's
    default), so that a tree from before stop 19, whose default was gRPC, makes the same hop."""
    base = target.command
    return replace(target, command=lambda p: [REST_MANIFESTS.get(a, a) for a in base(p)])


# ---------------------------------------------------------------- suites


def run_suite(
    suite: str, names: list[str], trees: dict[str, Path], settings: Settings, yardstick: str
) -> Results:
    """Start both trees' copies of ``names`` (and, for the component suite, the yardstick),
    then run the suite's interleaved rounds over all of them."""
    loads = {THROUGHPUT: settings, LATENCY: replace(settings, connections=1)}
    if suite == "v2":
        found = v2.build_targets(settings.work_dir)
    elif suite == "graph":
        found = {n: pin_rest(t) for n, t in graph.build_targets().items()}
    else:
        found = build_targets(component.expected_iris_proba())
    twins = [on_tree(found[name], side, trees[side]) for name in names for side in SIDES]
    if suite == "v2":
        ports = lambda: Ports(free_port(), free_port(), free_port())  # noqa: E731
        return dict(measure_v2(twins, loads, ports).by_load)  # type: ignore[arg-type]
    if suite == "graph":
        return graph.measure(twins, loads)
    peers = [found[yardstick]] if yardstick in found else []
    if peers and not peers[0].executable.exists():
        log(f"yardstick {yardstick} skipped: {peers[0].install_hint}")
        peers = []
    return {THROUGHPUT: {m.target.name: m for m in measure_all(twins + peers, settings)}}


def rps(r: Run) -> float:
    return r.wrk.rps


def cpu_us(r: Run) -> float:
    return r.cpu_us_per_request


def p50_ms(r: Run) -> float:
    return r.wrk.p50_ms


def figures(connections: int) -> dict[str, list[tuple[compare.Figure, Callable[[Run], float]]]]:
    return {
        THROUGHPUT: [
            (compare.Figure(f"CPU µs/req (c{connections})", True), cpu_us),
            (compare.Figure(f"req/s (c{connections})", False), rps),
        ],
        LATENCY: [(compare.Figure("p50 ms (c1)", True, ".3f"), p50_ms)],
    }


def comparisons(results: Results, names: list[str], connections: int) -> list[compare.Comparison]:
    def series(m: Measured | None, metric: Callable[[Run], float]) -> list[tuple[int, float]]:
        return [(r.round, metric(r)) for r in m.clean_runs] if m is not None else []

    out = []
    for name in names:
        for load, wanted in figures(connections).items():
            before, after = (results.get(load, {}).get(f"{name}@{s}") for s in SIDES)
            if before is None and after is None:
                continue  # a load this target does not take
            for figure, metric in wanted:
                out.append(
                    compare.Comparison(name, figure, series(before, metric), series(after, metric))
                )
    return out


# ---------------------------------------------------------------- report


def noise(every: list[Measured], yardstick: Measured | None, max_foreign: float) -> list[str]:
    """What the machine did meanwhile: re-runs for busy neighbours, the yardstick's drift."""
    clean = [r for m in every for r in m.clean_runs]
    left_out = sum(len(m.valid_runs) - len(m.clean_runs) for m in every)
    rerun = sum(len(m.contended) for m in every)
    busy = sorted(r.foreign_share for r in clean)
    lines = [
        f"- noise: {rerun} runs were re-run and {left_out} left out because other processes "
        f"used more than {max_foreign:.0%} of a core meanwhile; in the {len(clean)} runs kept "
        f"they used {statistics.median(busy) if busy else 0:.0%} of a core (median), "
        f"{busy[-1] if busy else 0:.0%} at most"
    ]
    if yardstick is not None and yardstick.clean_runs:
        values = [rps(r) for r in yardstick.clean_runs]
        lines.append(
            f"- yardstick `{yardstick.target.name}` (one tree only, runs in every round): "
            f"{report.median_of(yardstick, rps):,.0f} req/s, rounds {min(values):,.0f} to "
            f"{max(values):,.0f} ({max(values) / min(values) - 1:.1%} apart)"
        )
    return lines


def render(
    args: argparse.Namespace,
    argv: list[str],
    trees: dict[str, Path],
    imported: dict[str, Path],
    by_suite: dict[str, tuple[list[str], Results]],
) -> tuple[str, bool]:
    command = shlex.join([".venv/bin/python", "bench/before_after.py", *argv])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    every = [m for _, results in by_suite.values() for ms in results.values() for m in ms.values()]
    component_runs = by_suite.get("component", ([], {}))[1].get(THROUGHPUT, {})
    lines = [
        f"## Before and after ({now})",
        "",
        f"- command: `{command}`",
        *(
            f"- {side}: `{trees[side]}`: {describe_tree(trees[side])}; infergraph imported "
            f"from `{imported[side]}`"
            for side in SIDES
        ),
        f"- CPU: {report.cpu_model()} ({os.cpu_count()} cores); "
        f"kernel {platform.release()}; Python {platform.python_version()}",
        f"- method: every target started twice from the same `.venv`, as `env "
        "PYTHONPATH=<tree> <its command>`; servers on CPU "
        f"{args.server_cpu}, wrk/h2load on CPU {args.client_cpu}; per suite, both trees' "
        f"servers started first, then {args.repeats} interleaved rounds (rotating order) of "
        f"{args.duration} s runs at c{args.connections} (and c1 where the suite measures "
        f"p50), after a {args.warmup} s warm-up; medians over clean runs; `--processes` "
        "graphs on the default transport pinned to REST (`graph-N-rest.yaml`)",
        *noise(every, component_runs.get(args.yardstick), args.max_foreign),
        "",
    ]
    flagged = []
    for suite, (names, results) in by_suite.items():
        found = comparisons(results, names, args.connections)
        flagged += [c for c in found if c.flagged]
        lines += [f"### {suite}", "", *compare.table(found), ""]
    lines.append(
        "after / before: the after median over the before median; per-round range: the same "
        "ratio from the two trees' runs of one round. Flagged when worse by more than "
        f"{compare.TOLERANCE:.0%}: CPU and p50 up, or req/s down."
    )
    problems = []
    for results in (r for _, r in by_suite.values()):
        for load, measured in results.items():
            tagged = [
                replace(m, target=replace(m.target, name=f"{name} ({load})"))
                for name, m in measured.items()
            ]
            problems += report.errors(tagged, args.max_foreign)
    if problems:
        lines += ["", "**Problems** (excluded from the medians):", "", *dict.fromkeys(problems)]
    return "\n".join(lines) + "\n", not flagged


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    suites = args.suites.split(",")
    (v2.preflight if "v2" in suites else cli.preflight)(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    imported = {side: imported_from(src) for side, src in trees.items()}
    if imported["before"] == imported["after"]:
        sys.exit(f"error: both trees import {imported['before']}")
    for side in SIDES:
        log(f"{side}: {trees[side]} imports {imported[side]}")
    wanted = set(args.targets.split(","))
    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    by_suite: dict[str, tuple[list[str], Results]] = {}
    for suite in suites:
        names = [n for n in SUITES[suite] if n in wanted]
        if not names:
            continue
        with tempfile.TemporaryDirectory(prefix=f"ba-{suite}-", dir=cache) as work:
            settings = Settings(
                duration_s=args.duration,
                repeats=args.repeats,
                warmup_s=args.warmup,
                connections=args.connections,
                threads=1,
                server_cpu=args.server_cpu,
                client_cpu=args.client_cpu,
                startup_timeout_s=args.startup_timeout,
                work_dir=Path(work),
                max_foreign=args.max_foreign,
                retries=args.retries,
            )
            log(f"suite {suite}: {', '.join(names)}, on both trees")
            by_suite[suite] = (names, run_suite(suite, names, trees, settings, args.yardstick))
            logs = cache / "logs"
            logs.mkdir(exist_ok=True)
            for log_file in Path(work).glob("*.log"):
                shutil.copy(log_file, logs / f"before-after-{log_file.name}")
    text, met = render(args, argv, trees, imported, by_suite)
    print()
    print(text)
    if args.json:
        data = {
            suite: {
                load: {name: report.measured_json(m) for name, m in measured.items()}
                for load, measured in results.items()
            }
            for suite, (_, results) in by_suite.items()
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    if args.write_results:
        report.update_results(ROOT / "bench" / "RESULTS.md", text, RESULTS_BEGIN, RESULTS_END)
        log("updated bench/RESULTS.md")
    every = [m for _, results in by_suite.values() for ms in results.values() for m in ms.values()]
    return report.exit_status(every, met, args.check)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\n[bench] interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
