"""The command line both benchmarks share: run lengths, targets, cores, outputs."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path


def parser(
    description: str,
    targets: Sequence[str],
    connections_help: str,
    check_help: str,
    repeats_help: str,
) -> argparse.ArgumentParser:
    """The shared flags; a benchmark may add its own before parsing."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    p.add_argument("--repeats", type=int, default=3, help=repeats_help)
    p.add_argument("--warmup", type=int, default=2, help="seconds of warm-up load per target")
    p.add_argument(
        "--targets",
        default=",".join(targets),
        help=f"comma-separated subset of: {', '.join(targets)}",
    )
    p.add_argument("--connections", type=int, default=32, help=connections_help)
    p.add_argument("--server-cpu", type=int, default=0, help="core the servers are pinned to")
    p.add_argument("--client-cpu", type=int, default=1, help="core wrk is pinned to")
    p.add_argument("--startup-timeout", type=float, default=120.0, help="seconds per server")
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-runs allowed per measurement when other processes were busy",
    )
    p.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    p.add_argument("--json", type=Path, help="also write raw per-run results to this file")
    p.add_argument("--check", action="store_true", help=check_help)
    return p


def validate(p: argparse.ArgumentParser, args: argparse.Namespace, targets: Sequence[str]) -> None:
    """Exit with a usage error for unknown targets or run lengths out of range."""
    unknown = set(args.targets.split(",")) - set(targets)
    if unknown:
        p.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if not (1 <= args.duration <= 600 and 1 <= args.repeats <= 50 and 0 <= args.warmup <= 60):
        p.error("--duration must be 1..600, --repeats 1..50, --warmup 0..60")


def parse_args(
    argv: list[str],
    description: str,
    targets: Sequence[str],
    connections_help: str,
    check_help: str,
    repeats_help: str,
) -> argparse.Namespace:
    p = parser(description, targets, connections_help, check_help, repeats_help)
    args = p.parse_args(argv)
    validate(p, args, targets)
    return args


def preflight(args: argparse.Namespace) -> None:
    """wrk and taskset present, two distinct cores; this process stays off the server's."""
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found (scripts/peer-venvs.sh installs wrk)")
    cores = os.sched_getaffinity(0)
    if {args.server_cpu, args.client_cpu} - cores or args.server_cpu == args.client_cpu:
        sys.exit(f"error: need two distinct usable cores; have {sorted(cores)}")
    os.sched_setaffinity(0, {args.client_cpu})
