"""``infergraph describe NAME``: what is wrong with a deployment on Kubernetes, in plain words.

It reads the GraphDeployment (or SeldonDeployment), its Deployments, ReplicaSets, pods,
Services, endpoints, autoscalers and events, and the last log lines of every failing
container, and says which node of which component fails, why, and what to do. Exit status:
0 nothing wrong, 1 problems found, 2 no cluster, no such deployment, or a refused call.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infergraph.cli.cluster_options import add_cluster_options, with_cluster
from infergraph.kube.api import Api
from infergraph.kube.diagnose import diagnose, report
from infergraph.kube.gather import snapshot

__all__ = ["add_parser", "run"]

HEALTHY, PROBLEMS, NOT_FOUND = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "describe",
        help="say what is wrong with a deployment on a cluster, and what to do",
        description="Read a GraphDeployment or SeldonDeployment and everything it runs "
        "(Deployments, ReplicaSets, pods, Services, endpoints, HPAs, events, the last log "
        "lines of failing containers) and say in plain words which node fails, why, and "
        "what to do. Exit status 0: nothing wrong; 1: problems found; 2: no cluster, no "
        "such deployment, or the API refused a call.",
        epilog="Example:\n  infergraph describe iris -n models",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the GraphDeployment or SeldonDeployment")
    p.add_argument(
        "--kind",
        choices=("GraphDeployment", "SeldonDeployment"),
        default=None,
        help="which kind NAME is (default: a GraphDeployment, else a SeldonDeployment)",
    )
    add_cluster_options(p)
    p.set_defaults(command=run)
    return p


def run(args: argparse.Namespace) -> int:
    def body(api: Api, namespace: str) -> int:
        seen = snapshot(api, namespace, args.name, args.kind)
        findings = diagnose(seen)
        text = report(seen, findings)
        if seen.resource is None:
            print(text, file=sys.stderr)
            return NOT_FOUND
        print(text)
        return PROBLEMS if any(f.severity == "error" for f in findings) else HEALTHY

    return with_cluster("describe", args, body)
