"""``infergraph serve FILE.yaml``: a whole GraphDeployment or SeldonDeployment on this machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infergraph.cli.server_process import start_server_process
from infergraph.errors import InferGraphError
from infergraph.settings import GRPC_SERVERS, GraphSettings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="serve a GraphDeployment or SeldonDeployment file on this machine",
        description="Serve every node of a deployment in this process (or, with --processes, "
        "each componentSpec as its own processes) behind Seldon's orchestrator API.",
    )
    p.add_argument("file", help="YAML file with a GraphDeployment or SeldonDeployment")
    p.add_argument("--deployment", help="which deployment, when the file holds several")
    p.add_argument("--http-port", type=int, default=None, help="orchestrator REST (8000)")
    p.add_argument("--grpc-port", type=int, default=None, help="orchestrator gRPC (5001)")
    p.add_argument("--host", default=None, help="address to bind (default 0.0.0.0)")
    p.add_argument(
        "--path", default=None, help="folder the nodes' classes (env MODEL_NAME) are imported from"
    )
    p.add_argument(
        "--processes",
        action="store_true",
        default=None,
        help="run each componentSpec container as its own processes (replicas honoured), "
        "called over gRPC (or REST with spec.transport: rest)",
    )
    p.add_argument(
        "--node-protocol",
        choices=["v2", "seldon"],
        default=None,
        help="with --processes: call nodes with binary V2 tensors (default) or Seldon messages",
    )
    p.add_argument(
        "--grpc-server",
        choices=list(GRPC_SERVERS),
        default=None,
        help="gRPC server of the orchestrator and its node processes: infergraph's own "
        "HTTP/2 server (native, default), grpcio's thread pool (threads) or grpc.aio (asyncio)",
    )
    p.add_argument("--redis-url", default=None, help="share bandit state through this Redis")
    p.add_argument(
        "--sticky-header", default=None, help="pin clients to a predictor by this header's value"
    )
    p.add_argument("--seed", type=int, default=None, help="seed traffic splitting (tests, demos)")
    p.add_argument(
        "--log-level", type=str.upper, default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    p.set_defaults(command=run)
    return p


FLAG_FIELDS = (
    "http_port",
    "grpc_port",
    "host",
    "path",
    "processes",
    "node_protocol",
    "grpc_server",
    "redis_url",
    "sticky_header",
    "seed",
    "log_level",
)


def settings_from_args(args: argparse.Namespace) -> GraphSettings:
    changes = {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name) is not None}
    return GraphSettings.from_env().replace(**changes)


def run(args: argparse.Namespace) -> int:
    from infergraph.graph.load import load_deployments
    from infergraph.graph.spec_problems import SpecError

    settings = settings_from_args(args)
    start_server_process(settings.log_level, settings.malloc_tuning)
    try:
        deployments = load_deployments(args.file)
    except SpecError as exc:
        print(f"infergraph serve: {exc}", file=sys.stderr)
        return 1
    names = [d.metadata.name for d in deployments]
    if args.deployment:
        chosen = [d for d in deployments if d.metadata.name == args.deployment]
        if not chosen:
            print(
                f"infergraph serve: no deployment {args.deployment!r} in {args.file} "
                f"(it has {', '.join(names)})",
                file=sys.stderr,
            )
            return 2
        deployment = chosen[0]
    elif len(deployments) > 1:
        print(
            f"infergraph serve: {args.file} holds {len(deployments)} deployments "
            f"({', '.join(names)}); choose one with --deployment",
            file=sys.stderr,
        )
        return 2
    else:
        deployment = deployments[0]
    from infergraph.serving.graph_runner import run_graph
    from infergraph.serving.server import refuse_taken_ports

    try:
        refuse_taken_ports(settings.host, {"REST": settings.http_port, "gRPC": settings.grpc_port})
        return run_graph(deployment, settings)
    except (InferGraphError, OSError) as exc:
        print(f"infergraph serve: error: {exc}", file=sys.stderr)
        return 1
