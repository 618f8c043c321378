"""Serve a whole deployment on this machine: ``infergraph serve FILE.yaml``.

By default every node runs in this process and a hop between nodes is a function call.
The orchestrator's REST and gRPC APIs are Seldon's executor's (ports 8000 and 5001), also
under the gateway's ``/seldon/<namespace>/<deployment>/`` prefix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from infergraph.graph.nodes import local_factory
from infergraph.graph.plan import ClientFactory, DeploymentPlan, compile_deployment
from infergraph.graph.spec import Deployment
from infergraph.graph.spec.model_sources import ModelSources
from infergraph.observability.metrics import Registry
from infergraph.observability.payload_logger import logger_options
from infergraph.observability.recent import RecentRequests
from infergraph.observability.tracing import start_tracing
from infergraph.routers import RedisStore
from infergraph.runtime.feedback_ids import MemoryRoutingStore, RedisRoutingStore, RoutingStore
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.serving.memory import freeze_loaded_objects
from infergraph.serving.peers import PeerMetrics
from infergraph.serving.security import ServerTls, log_security
from infergraph.serving.server import MetricsApp, bind_grpc, bind_socket, run_servers
from infergraph.serving.worker_marks import AllStarted, mark_started
from infergraph.settings import GraphSettings
from infergraph.transport.auth import RequireToken
from infergraph.transport.grpc.graph import build_graph_grpc_server
from infergraph.transport.ingress import IngressPaths, SeldonIngress
from infergraph.transport.rest.graph import GraphRestApp
from infergraph.wire.tokens import BearerTokens

__all__ = ["build_dataplane", "model_sources", "routing_store", "serve_graph"]

log = logging.getLogger(__name__)


def model_sources(settings: GraphSettings) -> ModelSources:
    """The containers' source folders: ``--path``, and ``--image`` per image."""
    return ModelSources.of(settings.path, settings.images)


def build_dataplane(
    deployment: Deployment,
    settings: GraphSettings,
    *,
    registry: Registry | None = None,
    factory: ClientFactory | None = None,
) -> GraphDataPlane:
    """Compile the deployment and bind its nodes (in this process unless ``factory``)."""
    registry = registry or Registry()
    store = RedisStore(settings.redis_url) if settings.redis_url else None
    plan: DeploymentPlan = compile_deployment(
        deployment,
        factory or local_factory(sources=model_sources(settings), registry=registry, store=store),
    )
    annotations = dict(plan.annotations)
    options: dict[str, Any] = {
        "hostname": settings.hostname,
        "http_port": settings.http_port,
        "default_endpoint": settings.request_logger_default_endpoint,
        **logger_options(annotations, {}),
    }
    return GraphDataPlane(
        plan,
        registry,
        sticky_header=settings.sticky_header or annotations.get("infergraph.io/sticky-header"),
        seed=settings.seed,
        payload_options=options,
        routings=routing_store(settings, plan.name, store),
        tracing=start_tracing(settings.tracing, plan.name),
        recent=RecentRequests(settings.dashboard_requests) if settings.dashboard else None,
    )


def routing_store(
    settings: GraphSettings, deployment: str, redis: RedisStore | None
) -> RoutingStore | None:
    """Where predictions' routings are kept for feedback by request id: in Redis when the
    bandits' state is (any replica can resolve the id), else in memory; None when off."""
    if settings.feedback_id_capacity <= 0 or settings.feedback_id_ttl <= 0:
        return None
    if redis is not None:
        return RedisRoutingStore(
            redis.client, deployment=deployment, ttl_s=settings.feedback_id_ttl, url=redis.url
        )
    return MemoryRoutingStore(settings.feedback_id_capacity, settings.feedback_id_ttl)


async def serve_graph(
    dataplane: GraphDataPlane,
    settings: GraphSettings,
    stop: asyncio.Event | None = None,
    *,
    first: Callable[[], Awaitable[None]] | None = None,
    run_dir: str | None = None,
    listen_early: bool = True,
    metrics_targets: list[dict[str, Any]] | None = None,
) -> None:
    """Serve REST and gRPC until stopped, and load every node beside them.

    The ports listen from the start: ``/live`` answers 200 at once, ``/ready`` and V2
    ready 503 and predictions 503 "loading" until every node has loaded. ``first`` (the
    node processes starting, with ``--processes``) runs before the nodes load; a node
    that cannot load stops the servers with its error. ``metrics_targets`` (the node
    processes' metrics ports) are what ``/metrics/targets`` answers Prometheus.

    With a ``run_dir`` this is one of ``serve --workers``: ``/ready`` waits for every
    worker to have loaded, the metrics are merged across them, and a worker that replaces
    one that died (not ``listen_early``) loads before it listens.
    """
    if run_dir is not None and listen_early and settings.workers > 1:
        dataplane.also_ready = AllStarted(run_dir, settings.workers)
    if not listen_early:
        await dataplane.start_loading(first)
        freeze_loaded_objects()
    peers = PeerMetrics(dataplane.registry, run_dir)
    ingress = SeldonIngress.of(dataplane.plan)
    rest_app = GraphRestApp(
        dataplane,
        max_body_size=settings.max_message_size,
        metrics_text=peers.text,
        metrics_targets=metrics_targets,
    )
    auth = BearerTokens(settings.auth_token_file) if settings.auth_token_file else None
    rest = IngressPaths(rest_app if auth is None else RequireToken(rest_app, auth), ingress)
    tls = ServerTls(settings.tls) if settings.tls is not None else None
    http_sock = bind_socket(settings.host, settings.http_port)
    http: list[tuple[Any, Any]] = [(rest, http_sock)]
    if settings.metrics_port:
        metrics_sock = bind_socket(settings.host, settings.metrics_port)
        http.append((MetricsApp(peers, "/prometheus"), metrics_sock))
    grpc_server = build_graph_grpc_server(
        dataplane,
        max_message_size=settings.max_message_size,
        kind=settings.grpc_server,
        ingress=ingress,
        auth=auth,
        limits=settings.wire.http2,
    )
    bind_grpc(grpc_server, settings.host, settings.grpc_port, tls)
    await grpc_server.start()
    await peers.start()
    plan = dataplane.plan
    log.info(
        "serving %s (%d predictor%s, %d nodes): REST on %s:%d, gRPC on %d%s%s",
        plan.name,
        len(plan.predictors),
        "" if len(plan.predictors) == 1 else "s",
        len(plan.clients()),
        settings.host,
        http_sock.getsockname()[1],
        settings.grpc_port,
        f", metrics on {settings.metrics_port}" if settings.metrics_port else "",
        "; loading the nodes" if listen_early else "",
    )
    if rest_app.dashboard is not None:
        log.info(
            "dashboard: %s://%s:%d/dashboard%s",
            "http" if tls is None else "https",
            "localhost" if settings.host in ("0.0.0.0", "::") else settings.host,
            http_sock.getsockname()[1],
            "" if auth is None else "#token=<token>",
        )
    log_security(tls, auth)
    loading = None
    if listen_early:
        loading = asyncio.ensure_future(
            _when_loaded(dataplane, dataplane.start_loading(first), run_dir)
        )
    elif run_dir is not None:
        mark_started(run_dir)
    try:
        await run_servers(http, grpc_server, settings, stop, loading, tls)
    finally:
        await peers.stop()
        await dataplane.close()


async def _when_loaded(
    dataplane: GraphDataPlane, loading: asyncio.Task[None], run_dir: str | None
) -> None:
    started = time.monotonic()
    await loading
    freeze_loaded_objects()
    if run_dir is not None:
        mark_started(run_dir)
    log.info(
        "%s is ready: every node loaded in %.2f s", dataplane.plan.name, time.monotonic() - started
    )
