"""``infergraph serve FILE.yaml``: a whole GraphDeployment or SeldonDeployment on this machine."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from infergraph.cli.security_options import (
    add_auth_option,
    add_tls_options,
    check_files,
    tls_from_args,
)
from infergraph.cli.server_process import report, start_server_process
from infergraph.cli.source_options import add_image_option
from infergraph.errors import InferGraphError
from infergraph.settings import GRPC_SERVERS, LOG_FORMATS, GraphSettings, TracingSettings

if TYPE_CHECKING:
    from infergraph.graph.spec import Deployment

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="serve a GraphDeployment or SeldonDeployment file on this machine",
        description="Serve every node of a deployment in this process (or, with --processes, "
        "each componentSpec as its own processes) behind Seldon's orchestrator API, at / and "
        "under the gateway's /seldon/<namespace>/<deployment>/ prefix (gRPC: the metadata "
        "keys seldon and namespace are accepted). A container runs the Python class its env "
        "MODEL_NAME names, else the MODEL_NAME of its source folder's .s2i/environment, as "
        "Seldon's s2i images do: the folder is --path, or --image's for its image.",
        epilog="Example:\n"
        "  infergraph serve examples/bandit/deployment.yaml --path examples/bandit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="YAML file with a GraphDeployment or SeldonDeployment")
    p.add_argument("--deployment", help="which deployment, when the file holds several")
    p.add_argument(
        "--skip-other-kinds",
        action="store_true",
        help="ignore documents of other kinds (a Service, a Secret) instead of refusing the file",
    )
    p.add_argument("--http-port", type=int, default=None, help="orchestrator REST (8000)")
    p.add_argument("--grpc-port", type=int, default=None, help="orchestrator gRPC (5001)")
    p.add_argument("--host", default=None, help="address to bind (default 0.0.0.0)")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="also serve Prometheus metrics (/metrics, /prometheus) on a port of their own; "
        "the REST port's /prometheus answers either way",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="orchestrator processes sharing the ports (default 1), each serving the whole "
        "graph; metrics are merged across them. Give --redis-url too, so that bandits learn "
        "together and a feedback by request id reaches the worker that served it",
    )
    p.add_argument(
        "--path",
        default=None,
        metavar="DIR",
        help="folder the nodes' classes (env MODEL_NAME) are imported from (default .); its "
        ".s2i/environment gives MODEL_NAME to containers that set none",
    )
    add_image_option(p)
    p.add_argument(
        "--processes",
        action="store_true",
        default=None,
        help="run each componentSpec container as its own processes (replicas honoured), "
        "called over gRPC (or REST with spec.transport: rest)",
    )
    p.add_argument(
        "--remote",
        action="append",
        default=None,
        metavar="NODE=HOST:PORT",
        help="call NODE (or PREDICTOR/NODE) at HOST:PORT, where another process or container "
        "serves it, instead of serving it here: gRPC, or REST with spec.transport: rest; "
        "several addresses separated by commas are replicas (repeatable)",
    )
    p.add_argument(
        "--node-protocol",
        choices=["v2", "seldon"],
        default=None,
        help="with --processes or --remote: call nodes with binary V2 tensors (default) or "
        "Seldon messages",
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
        "--tracing",
        action="store_true",
        default=None,
        help="OpenTelemetry tracing of requests and node calls, OTLP to "
        "OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4317); on as well when OTEL_* names "
        "an exporter or endpoint",
    )
    p.add_argument(
        "--no-dashboard",
        dest="dashboard",
        action="store_false",
        default=None,
        help="neither serve the live dashboard at /dashboard nor record recent requests for it "
        "and `infergraph trace` (default on; env INFERGRAPH_DASHBOARD=0)",
    )
    p.add_argument(
        "--dashboard-requests",
        type=int,
        default=None,
        metavar="N",
        help="how many recent predictions the dashboard keeps (default 100; env "
        "INFERGRAPH_DASHBOARD_REQUESTS)",
    )
    p.add_argument(
        "--log-level",
        type=str.upper,
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="what is logged to stderr (default INFO, or $SELDON_LOG_LEVEL)",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="text lines (default, or $INFERGRAPH_LOG_FORMAT) or json: one object a line "
        "with time, level, logger, message and the request's puid and trace ids; node "
        "processes of --processes log the same way",
    )
    p.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log one line per REST request to stderr: method, path, status, duration, puid "
        "and trace id (default off, or $GUNICORN_ACCESS_LOG); node processes of --processes "
        "log theirs too",
    )
    add_auth_option(p)
    add_tls_options(p)
    p.set_defaults(command=run)
    return p


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


FLAG_FIELDS = (
    "http_port",
    "grpc_port",
    "host",
    "metrics_port",
    "workers",
    "path",
    "images",
    "processes",
    "node_protocol",
    "grpc_server",
    "redis_url",
    "sticky_header",
    "seed",
    "log_level",
    "log_format",
    "access_log",
    "dashboard",
    "dashboard_requests",
    "auth_token_file",
)


def parse_remote(values: list[str] | None) -> dict[str, tuple[str, ...]]:
    """``--remote NODE=HOST:PORT[,HOST:PORT...]`` options as a mapping; ValueError if bad."""
    out: dict[str, tuple[str, ...]] = {}
    for value in values or ():
        node, sep, rest = value.partition("=")
        addresses = tuple(a.strip() for a in rest.split(",") if a.strip())
        bad = [a for a in addresses if not a.rpartition(":")[2].isdigit() or a.startswith(":")]
        if not sep or not node.strip() or not addresses or bad:
            raise ValueError(
                f"--remote {value!r}: expected NODE=HOST:PORT (e.g. classifier=127.0.0.1:9500)"
            )
        out[node.strip()] = addresses
    return out


def settings_from_args(args: argparse.Namespace) -> GraphSettings:
    changes = {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name) is not None}
    if getattr(args, "remote", None):
        changes["remote"] = parse_remote(args.remote)
    if getattr(args, "tracing", None):
        changes["tracing"] = TracingSettings.from_env(flag=1)
    base = GraphSettings.from_env()
    return base.replace(**changes, tls=tls_from_args(args, base.tls))


def run(args: argparse.Namespace) -> int:
    from infergraph.graph.spec import SpecError, load_deployments

    try:
        settings = settings_from_args(args)
        tokens = {
            "--auth-token-file": settings.auth_token_file,
            "INFERGRAPH_NODE_AUTH_TOKEN_FILE": settings.node_auth_token_file,
        }
        check_files(settings.tls, tokens, settings.node_tls)
    except ValueError as exc:
        print(f"infergraph serve: {exc}", file=sys.stderr)
        return 2
    if settings.processes and settings.node_tls and not settings.tls:
        print(
            "infergraph serve: node TLS with --processes: the node processes serve the "
            "orchestrator's certificate; give --tls-cert-file and --tls-key-file too (a "
            "certificate valid for 127.0.0.1)",
            file=sys.stderr,
        )
        return 2
    if settings.dashboard and settings.dashboard_requests < 1:
        print(
            f"infergraph serve: --dashboard-requests must be at least 1, not "
            f"{settings.dashboard_requests} (--no-dashboard turns the dashboard off)",
            file=sys.stderr,
        )
        return 2
    if settings.remote and settings.processes:
        print("infergraph serve: --remote and --processes cannot be combined", file=sys.stderr)
        return 2
    if settings.workers > 1 and settings.processes:
        print(
            "infergraph serve: --workers and --processes cannot be combined: with --processes "
            "the nodes do the work in processes of their own; scale a node with its "
            "componentSpec's replicas",
            file=sys.stderr,
        )
        return 2
    log_format = settings.log_format
    start_server_process(
        settings.log_level, settings.malloc_tuning, settings.access_log, log_format
    )
    command = "infergraph serve"
    try:
        deployments = load_deployments(args.file, skip_other_kinds=args.skip_other_kinds)
    except SpecError as exc:
        report(command, str(exc), log_format)
        return 1
    names = [d.metadata.name for d in deployments]
    if args.deployment:
        chosen = [d for d in deployments if d.metadata.name == args.deployment]
        if not chosen:
            report(
                command,
                f"no deployment {args.deployment!r} in {args.file} (it has {', '.join(names)})",
                log_format,
            )
            return 2
        deployment = chosen[0]
    elif len(deployments) > 1:
        report(
            command,
            f"{args.file} holds {len(deployments)} deployments ({', '.join(names)}); "
            "choose one with --deployment",
            log_format,
        )
        return 2
    else:
        deployment = deployments[0]
    if not _can_serve(args.file, deployment, settings):
        return 1
    from infergraph.serving.graph_runner import run_graph
    from infergraph.serving.server import refuse_taken_ports

    try:
        ports = {"REST": settings.http_port, "gRPC": settings.grpc_port}
        refuse_taken_ports(settings.host, {**ports, "metrics": settings.metrics_port})
        return run_graph(deployment, settings)
    except (InferGraphError, OSError) as exc:
        report(command, f"error: {exc}", log_format)
        return 1


def _can_serve(file: str, deployment: Deployment, settings: GraphSettings) -> bool:
    """Print every problem that stops ``deployment`` from running here; False if any."""
    from infergraph.graph.spec.serve_checks import check_serve
    from infergraph.serving.graph_server import model_sources
    from infergraph.serving.remote import unknown_nodes

    command, log_format = "infergraph serve", settings.log_format
    unknown = unknown_nodes(deployment, settings.remote)
    for key in unknown:
        report(
            command,
            f"--remote {key}: deployment {deployment.metadata.name!r} has no such node "
            "(give NODE or PREDICTOR/NODE)",
            log_format,
        )
    sources = model_sources(settings)
    problems = check_serve(deployment, sources, remote=settings.remote)
    for problem in problems:
        report(command, f"{file}: {problem}", log_format)
    images = {c.image for p in deployment.spec.predictors for _, c in p.containers() if c.image}
    for image in sources.unused(images):
        report(
            command,
            f"warning: --image {image} matches no container of deployment "
            f"{deployment.metadata.name!r} (its images: {', '.join(sorted(images)) or 'none'})",
            log_format,
            logging.WARNING,
        )
    return not problems and not unknown
