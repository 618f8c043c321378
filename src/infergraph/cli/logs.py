"""``infergraph logs NAME``: every container's log of a graph, labelled by node, in time order.

Where ``kubectl logs`` shows one container of one pod, a graph runs in several pods with
several containers each (the orchestrator, each node, the model-download init containers).
This reads them all, labels each line with its node (and the pod, when a node has replicas)
and merges them by the kubelet's timestamps, so one request can be followed through the graph.
Exit status: 0, or 2 for no cluster, no such deployment, a bad option or a refused call.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from infergraph.cli.cluster_options import add_cluster_options, with_cluster
from infergraph.kube.api import Api
from infergraph.kube.gather import find_resource, pods_of
from infergraph.kube.log_merge import LogLine, format_line
from infergraph.kube.logs import LogRequest, follow, node_of_label, parse_since, read, streams

__all__ = ["add_parser", "run"]

FAILED = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "logs",
        help="the logs of every container of a deployment, labelled by node, merged by time",
        description="Print the logs of every container (the orchestrator, each node, the "
        "model-download init containers) of every pod of a GraphDeployment or "
        "SeldonDeployment, each line labelled with its node, merged by time.",
        epilog="Examples:\n  infergraph logs iris -n models --since 10m\n"
        "  infergraph logs iris --node classifier --follow",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the GraphDeployment or SeldonDeployment")
    p.add_argument("--node", default=None, metavar="N", help="only the containers of node N")
    p.add_argument("--predictor", default=None, metavar="P", help="only predictor P's pods")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "--since", default=None, metavar="D", help="only lines newer than D (30s, 10m, 2h, 1d)"
    )
    p.add_argument(
        "--tail",
        type=int,
        default=None,
        metavar="N",
        help="only the last N lines of each container",
    )
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
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"infergraph logs: {exc}", file=sys.stderr)
        return FAILED
    want = LogRequest(args.node, args.predictor, since, args.tail)

    def body(api: Api, namespace: str) -> int:
        kind, resource = find_resource(api, namespace, args.name, args.kind)
        if resource is None:
            print(
                f"infergraph logs: no {kind} or SeldonDeployment named '{args.name}' in "
                f"namespace '{namespace}' (list them: kubectl get graphdeployments,"
                f"seldondeployments -n {namespace})",
                file=sys.stderr,
            )
            return FAILED
        pods = pods_of(api, namespace, args.name)
        selected = streams(pods, want)
        if not selected:
            print(_nothing(args, pods), file=sys.stderr)
            return FAILED
        width = max(len(label) for label in selected.values())

        def emit(line: LogLine) -> None:
            print(format_line(line, width), flush=args.follow)

        def note(text: str) -> None:
            print(f"infergraph logs: {text}", file=sys.stderr)

        if args.follow:
            with contextlib.suppress(KeyboardInterrupt):
                follow(api, namespace, selected, want, emit, note)
            return 0
        lines, notes = read(api, namespace, selected, want)
        for text in notes:
            note(text)
        for line in lines:
            emit(line)
        return 0

    return with_cluster("logs", args, body)


def _nothing(args: argparse.Namespace, pods: list[dict[str, Any]]) -> str:
    if not pods:
        return (
            f"infergraph logs: '{args.name}' has no pods yet; "
            f"`infergraph describe {args.name}` says why"
        )
    nodes = sorted({node_of_label(label) for label in streams(pods, LogRequest()).values()})
    what = f"node '{args.node}'" if args.node else f"predictor '{args.predictor}'"
    return f"infergraph logs: no {what} in '{args.name}'; its nodes: {', '.join(nodes)}"
