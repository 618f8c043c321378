"""``infergraph microservice``: the flags, environment and defaults of seldon-core-microservice."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from infergraph.cli.security_options import add_tls_options, check_files, tls_from_args
from infergraph.cli.server_process import report, start_server_process
from infergraph.errors import InferGraphError
from infergraph.settings import (
    GRPC_SERVERS,
    LOG_FORMATS,
    SERVICE_TYPES,
    ComponentSettings,
    TracingSettings,
)

__all__ = ["add_parser", "run"]

LEGACY_API_TYPES = {"REST", "GRPC", "FBS"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "microservice",
        help="serve one Python class over REST and gRPC (seldon-core-microservice drop-in)",
        description="Serve one Seldon-style Python class over REST, gRPC and Prometheus metrics. "
        "Flags, environment variables and defaults are those of seldon-core-microservice.",
        epilog="Example:\n  infergraph microservice MyModel --service-type MODEL   # REST :9000, "
        "gRPC :5000, metrics :6000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compat = p.add_argument_group(
        "accepted for compatibility",
        "seldon-core-microservice flags infergraph takes and ignores, so its command lines run "
        "unchanged",
    )
    p.add_argument(
        "interface_name",
        nargs="?",
        help="MODULE (class of the same name) or MODULE.Class; default: $MODEL_NAME",
    )
    p.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    p.add_argument(
        "--service-type",
        type=str.upper,
        choices=SERVICE_TYPES,
        default=None,
        help="informational; every endpoint is served (default MODEL, or $SERVICE_TYPE)",
    )
    compat.add_argument(
        "--persistence", type=int, default=None, help="ignored (deprecated in Seldon too)"
    )
    p.add_argument(
        "--parameters",
        default=None,
        help="JSON list of {name, value, type} (default $PREDICTIVE_UNIT_PARAMETERS)",
    )
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=None,
        help="what is logged to stderr (default INFO, or $SELDON_LOG_LEVEL)",
    )
    compat.add_argument(
        "--debug", action="store_true", help="ignored: the same server runs either way"
    )
    p.add_argument(
        "--tracing",
        type=int,
        default=None,
        help="1: OpenTelemetry tracing, OTLP to OTEL_EXPORTER_OTLP_ENDPOINT or JAEGER_AGENT_HOST "
        "(default $TRACING; on as well when OTEL_* names an exporter or endpoint)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the ports (default 1, or $GUNICORN_WORKERS)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per worker for sync methods (default 1, or $GUNICORN_THREADS)",
    )
    compat.add_argument(
        "--max-requests", type=int, default=None, help="ignored: workers are never recycled"
    )
    compat.add_argument(
        "--max-requests-jitter", type=int, default=None, help="ignored, as --max-requests"
    )
    compat.add_argument(
        "--keepalive", type=int, default=None, help="ignored: connections are kept alive"
    )
    p.add_argument(
        "--access-log",
        action="store_true",
        default=None,
        help="log one line per REST request to stderr: method, path, status, duration, puid "
        "and trace id (default off, or $GUNICORN_ACCESS_LOG)",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="text lines (default, or $INFERGRAPH_LOG_FORMAT) or json: one object a line "
        "with time, level, logger, message and the request's puid and trace ids",
    )
    p.add_argument("--single-threaded", type=int, default=None, help="force one thread per worker")
    p.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="default 9000 or $PREDICTIVE_UNIT_HTTP_SERVICE_PORT",
    )
    p.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="default 5000 or $PREDICTIVE_UNIT_GRPC_SERVICE_PORT",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="default 6000 or $PREDICTIVE_UNIT_METRICS_SERVICE_PORT",
    )
    p.add_argument("--pidfile", default=None, help="write the server's pid here")
    p.add_argument(
        "--grpc-workers",
        type=int,
        default=None,
        help="0 disables gRPC (default 1, or $GRPC_WORKERS)",
    )
    compat.add_argument(
        "--grpc-threads", type=int, default=None, help="ignored: gRPC runs on the event loop"
    )
    p.add_argument("--host", default=None, help="address to bind (default 0.0.0.0)")
    p.add_argument("--path", default=None, help="folder to import the class from (default: .)")
    p.add_argument(
        "--max-message-size",
        type=int,
        default=None,
        help="largest REST body / gRPC message in bytes (default 100 MiB)",
    )
    p.add_argument(
        "--sync-mode",
        choices=["auto", "inline", "thread"],
        default=None,
        help="where sync methods run: auto (the thread pool until timed fast, then inline "
        "while fast; default), inline (the event loop) or thread (the pool)",
    )
    p.add_argument(
        "--http-server",
        choices=["infergraph", "uvicorn"],
        default=None,
        help="HTTP server: infergraph's own httptools server (default) or uvicorn",
    )
    p.add_argument(
        "--grpc-server",
        choices=list(GRPC_SERVERS),
        default=None,
        help="gRPC server: infergraph's own HTTP/2 server (native, default), grpcio's thread "
        "pool bridged to the event loop (threads) or grpc.aio (asyncio)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="adaptive batching: stack up to N concurrent predict requests into one call "
        "(default 1: off; only for models that treat rows independently)",
    )
    p.add_argument(
        "--max-batch-time",
        type=float,
        default=None,
        help="seconds a batch may wait for more requests (default 0: only what is queued)",
    )
    add_tls_options(p)
    p.set_defaults(command=run)
    return p


FLAG_FIELDS = (
    "interface_name",
    "service_type",
    "parameters",
    "workers",
    "threads",
    "http_port",
    "grpc_port",
    "metrics_port",
    "grpc_workers",
    "host",
    "path",
    "max_message_size",
    "access_log",
    "log_format",
    "sync_mode",
    "max_batch_size",
    "max_batch_time",
    "http_server",
    "grpc_server",
)


def settings_from_args(
    args: argparse.Namespace, env: dict[str, str] | None = None
) -> ComponentSettings:
    """Defaults < environment < flags (except SELDON_LOG_LEVEL, which wins as in Seldon)."""
    env = dict(os.environ) if env is None else env
    base = ComponentSettings.from_env(env)
    changes: dict[str, Any] = {}
    for name in FLAG_FIELDS:  # each flag sets the ComponentSettings field of its name
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.parameters is not None:
        changes["parameters_source"] = "--parameters"
    if args.log_level and not env.get("SELDON_LOG_LEVEL"):
        changes["log_level"] = args.log_level
    level = str(changes.get("log_level", base.log_level)).strip().upper()
    level = LOG_LEVEL_ALIASES.get(level, level)
    if level not in LOG_LEVELS:
        raise ValueError(
            f"SELDON_LOG_LEVEL={env.get('SELDON_LOG_LEVEL')!r} is not a log level; "
            f"use one of {', '.join(LOG_LEVELS)}"
        )
    changes["log_level"] = level
    if args.single_threaded:
        changes["threads"] = 1
    if args.tracing is not None:
        changes["tracing"] = TracingSettings.from_env(env, args.tracing)
    changes["tls"] = tls_from_args(args, base.tls)
    return base.replace(**changes)


def run(args: argparse.Namespace) -> int:
    if args.extra:
        legacy = [a for a in args.extra if a.upper() in LEGACY_API_TYPES]
        hint = (
            " (since Seldon 1.5 the API type REST/GRPC is no longer a positional argument: "
            "both are always served)"
            if legacy
            else ""
        )
        print(
            f"infergraph microservice: error: unexpected arguments {args.extra}{hint}",
            file=sys.stderr,
        )
        return 2
    try:
        settings = settings_from_args(args)
        token_file = {"INFERGRAPH_NODE_AUTH_TOKEN_FILE": settings.node_auth_token_file}
        check_files(settings.tls, token_file)
    except ValueError as exc:
        print(f"infergraph microservice: error: {exc}", file=sys.stderr)
        return 2
    log_format = settings.log_format
    start_server_process(
        settings.log_level, settings.malloc_tuning, settings.access_log, log_format
    )
    if args.persistence:
        logging.getLogger(__name__).error("--persistence is deprecated and ignored")
    if args.pidfile:
        with open(args.pidfile, "w") as fh:
            fh.write(str(os.getpid()))
    from infergraph.components.dataplane import ComponentDataPlane, build_user_object
    from infergraph.serving.workers import run_component

    try:
        user = build_user_object(settings)
        ComponentDataPlane(user, settings).close()  # checks the class once, before forking
    except InferGraphError as exc:
        report("infergraph microservice", f"error: {exc}", log_format)
        return 1
    try:
        return run_component(user, settings)
    except (OSError, InferGraphError) as exc:
        report("infergraph microservice", f"error: {exc}", log_format)
        return 1
