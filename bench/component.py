"""Component benchmark: infergraph against seldon-core's wrapper, KServe, and a bare ASGI app.

Every server is pinned to one core and wrk to the other, so a server's throughput is what
one core of that serving stack delivers, and the load generator never competes with it.
Run ``python bench/component.py --help``; the method is described in bench/README.md.
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
import sys
import tempfile
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import cli, report
from harness.measure import Measured, Settings, log, measure_all
from harness.targets import MODELS, ROOT, SAMPLE_ROW, build_targets

OWN_PACKAGES = ["infergraph", "uvicorn", "httptools", "uvloop", "scikit-learn"]
KSERVE = ["kserve", "fastapi", "uvicorn", "scikit-learn"]
SELDON = ["seldon-core", "flask", "gunicorn", "scikit-learn"]
MAX_FOREIGN = 0.10
DEFAULT_TARGETS = (
    "infergraph",
    "infergraph-batch",
    "seldon",
    "kserve",
    "infergraph-noop",
    "bare-asgi",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    return cli.parse_args(
        argv,
        __doc__.splitlines()[0],
        DEFAULT_TARGETS,
        connections_help="wrk -c",
        check_help="exit 3 when a goal ratio is not met",
        repeats_help="measured runs per target",
    )


preflight = cli.preflight


def expected_iris_proba() -> list[list[float]]:
    """What every iris target must answer: the cached model's output, computed here."""
    sys.path.insert(0, str(MODELS))
    from iris_data import load_model

    proba = load_model().predict_proba([SAMPLE_ROW])
    return [[float(x) for x in row] for row in proba]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def render(args: argparse.Namespace, argv: list[str], measured: list[Measured]) -> tuple[str, bool]:
    venv = ROOT / ".venv" / "bin" / "python"
    command = shlex.join([".venv/bin/python", "bench/component.py", *argv])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    ratio_lines, met = report.ratios(measured)
    lines = [
        f"## Component benchmark ({now})",
        "",
        f"- command: `{command}`",
        f"- date: {now}",
        f"- CPU: {report.cpu_model()} ({os.cpu_count()} cores); "
        f"kernel {platform.release()}; Python {platform.python_version()}",
        f"- method: servers on CPU {args.server_cpu} (`taskset`), "
        f"`wrk -t1 -c{args.connections} --latency` on CPU {args.client_cpu}; "
        f"{args.repeats} interleaved rounds x {args.duration} s after a {args.warmup} s "
        "warm-up; one-row requests; medians over clean runs (no errors, cores not "
        "shared)",
        f"- project venv: {report.package_versions(venv, OWN_PACKAGES)}",
        f"- kserve venv: {report.package_versions(ROOT / '.venv-kserve/bin/python', KSERVE)}",
        f"- seldon venv: {report.package_versions(ROOT / '.venv-seldon/bin/python', SELDON)}",
        f"- load generator: {report.wrk_version()}",
        "",
        *report.table(measured),
        "",
        *ratio_lines,
        "",
        "CPU µs/req: CPU time of the server's whole process tree during a run "
        "(/proc utime+stime) divided by requests completed. server CPU / wrk CPU: share "
        "of one core each used during the run (wrk near 100% would mean the client, not "
        "the server, was the limit). core idle: share of the run the server's core was idle "
        "(/proc/stat; the rest of the core not in server CPU is mostly softirq time for "
        "loopback packets). other processes: CPU used by processes not started by the "
        "benchmark, machine-wide, as a share of one core (/proc/*/stat); runs above "
        f"{MAX_FOREIGN:.0%} are re-run and left out of the medians.",
    ]
    problems = report.errors(measured, MAX_FOREIGN)
    if problems:
        lines += [
            "",
            "**Problems** (failed, invalid and contended runs are excluded from the medians):",
            "",
            *problems,
        ]
    return "\n".join(lines) + "\n", met


def dump_json(path: Path, measured: list[Measured]) -> None:
    data = {m.target.name: report.measured_json(m) for m in measured}
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    preflight(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    proba = expected_iris_proba()
    all_targets = build_targets(proba)
    selected = [all_targets[name] for name in args.targets.split(",")]
    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=cache) as work:
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
            max_foreign=MAX_FOREIGN,
            retries=args.retries,
        )
        measured = measure_all(selected, settings)
        # Keep the server logs of this run next to the cache for post-mortems.
        logs = cache / "logs"
        logs.mkdir(exist_ok=True)
        for log_file in Path(work).glob("*.log"):
            shutil.copy(log_file, logs / log_file.name)
    text, met = render(args, argv, measured)
    print()
    print(text)
    if args.json:
        dump_json(args.json, measured)
    if args.write_results:
        report.update_results(ROOT / "bench" / "RESULTS.md", text)
        log("updated bench/RESULTS.md")
    return report.exit_status(measured, met, args.check)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\n[bench] interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
