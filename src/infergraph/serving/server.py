"""Serve one component in this process: REST, gRPC and metrics on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.observability.tracing import start_tracing
from infergraph.serving.memory import freeze_loaded_objects
from infergraph.serving.peers import PeerMetrics
from infergraph.serving.security import ServerTls, log_security
from infergraph.serving.worker_marks import AllStarted, mark_started
from infergraph.settings import ComponentSettings
from infergraph.transport.auth import RequireToken
from infergraph.transport.grpc.component import build_grpc_server
from infergraph.transport.grpc.server import Server as GrpcServer
from infergraph.transport.rest.component import RestApp
from infergraph.transport.rest.server import HttpServer
from infergraph.wire.http1.server import Responder
from infergraph.wire.tokens import BearerTokens

__all__ = [
    "BindError",
    "MetricsApp",
    "bind_grpc",
    "bind_socket",
    "refuse_taken_ports",
    "run_servers",
    "serve_component",
]

log = logging.getLogger(__name__)


class BindError(OSError):
    """A port cannot be bound (in use, or not available): a start-up error, not a bug."""


def refuse_taken_ports(host: str, ports: dict[str, int]) -> None:
    """Raise BindError when another process already listens on one of ``ports``.

    The ports are bound with SO_REUSEPORT so that a server's own workers share them; the
    kernel would then let a second server bind them too, and split the traffic between the
    two without a word. So before binding, a server checks that nobody answers there.
    """
    target = "::1" if ":" in host else ("127.0.0.1" if host in ("", "0.0.0.0") else host)
    for name, port in ports.items():
        if port <= 0:
            continue
        try:
            with socket.create_connection((target, port), timeout=0.5):
                pass
        except OSError:
            continue  # nobody listens (refused, unreachable): free to bind
        raise BindError(
            errno.EADDRINUSE,
            f"cannot serve {name} on {host}:{port}: the port is in use by another process "
            "(stop it, or choose another port)",
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that other worker processes may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BindError(exc.errno, f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class MetricsApp:
    """The metrics port: Prometheus text at the configured path (and /metrics)."""

    def __init__(self, peers: PeerMetrics, path: str) -> None:
        self.peers = peers
        self.paths = {path, "/metrics"}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] in self.paths:
            status, body = 200, (await self.peers.text()).encode()
            ctype = b"text/plain; version=0.0.4; charset=utf-8"
        else:
            status, body, ctype = 404, b"not found", b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the serving loop owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: Any, settings: Any, access_log: bool, tls: Any = None) -> uvicorn.Server:
    # uvicorn's own handlers write text; in JSON its lines go through the process's handler
    own_handlers = getattr(settings, "log_format", "text") != "json"
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        lifespan="on",
        log_config=LOGGING_CONFIG if own_handlers else None,
        log_level=settings.log_level.lower(),
        access_log=access_log,
        timeout_keep_alive=65,
        server_header=False,
        date_header=False,
    )
    if tls is not None:  # our context, which reloads its files, rather than uvicorn's own
        config.load()
        config.ssl = tls
    return _Server(config)


def _uvicorn_access_log(apps: list[tuple[Any, socket.socket]], settings: Any) -> bool:
    """Whether uvicorn logs requests: one switch (its ``uvicorn.access`` logger) for all its
    servers in this process. Scrapes of the metrics port stay out of the access log, as
    Seldon's default FILTER_METRICS_ACCESS_LOGS keeps them out of gunicorn's, unless uvicorn
    serves REST too (``--http-server uvicorn``)."""
    return bool(settings.access_log) and any(not isinstance(a, MetricsApp) for a, _ in apps)


def bind_grpc(server: GrpcServer, host: str, port: int, tls: ServerTls | None = None) -> int:
    """Bind the gRPC port (with ``tls``, in TLS), or raise BindError naming it."""
    address = f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = tls.add_grpc_port(server, address)
    except RuntimeError:  # grpc.aio raises where grpc returned 0
        bound = 0
    if bound == 0:
        raise BindError(
            errno.EADDRINUSE, f"cannot bind gRPC {address}: address in use or unavailable"
        )
    return bound


async def run_servers(
    http: list[tuple[Any, socket.socket]],
    grpc_server: GrpcServer | None,
    settings: ComponentSettings | Any,
    stop: asyncio.Event | None = None,
    loading: asyncio.Future[None] | None = None,
    tls: ServerTls | None = None,
) -> None:
    """Serve ASGI apps on their sockets and a started gRPC server until ``stop`` is set
    (or SIGTERM/SIGINT), then shut everything down gracefully. With ``tls``, every app but
    the metrics port's is served in TLS, and new certificate files are loaded meanwhile.

    ``loading`` is the models' load running beside the servers, which answer "loading"
    meanwhile: when it fails the servers stop and its error is raised; when they stop
    first it is cancelled.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    own = [
        (HttpServer(app, access_log=settings.access_log, limits=settings.wire.http1), sock)
        for app, sock in http
        if isinstance(app, Responder) and settings.http_server == "infergraph"
    ]
    by_uvicorn = [(app, sock) for app, sock in http if not any(s is sock for _, s in own)]
    access_log = _uvicorn_access_log(by_uvicorn, settings)

    def ssl(app: Any) -> Any:
        return None if tls is None or isinstance(app, MetricsApp) else tls.rest.context

    servers = [_uvicorn(app, settings, access_log, ssl(app)) for app, _ in by_uvicorn]
    sockets = [sock for _, sock in by_uvicorn]
    for server_, sock in own:
        await server_.start(sock, ssl(server_.app))
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers, sockets, strict=True)
    ]
    waiter = asyncio.create_task(stop.wait())
    reloads = asyncio.create_task(tls.watch()) if tls is not None else None
    watched: set[asyncio.Future[Any]] = {waiter, *tasks}
    if loading is not None:
        watched.add(loading)
    ended: set[asyncio.Future[Any]] = set()
    while not ended:  # a stop, a server that ended, or a load that failed
        done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        ended = {task for task in done if task is not loading or _failed(task)}
    for server in servers:
        server.should_exit = True
    for server_, _ in own:
        await server_.stop()
    if grpc_server is not None:
        await grpc_server.stop(grace=5)
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    if reloads is not None:
        reloads.cancel()
        await asyncio.gather(reloads, return_exceptions=True)
    if loading is not None and not loading.done():
        loading.cancel()  # stopped while loading: a sync load() thread is left to die
        await asyncio.gather(loading, return_exceptions=True)
    for task in ended:
        if task is not waiter and _failed(task):
            raise task.exception()  # type: ignore[misc]


def _failed(task: asyncio.Future[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


async def serve_component(
    user: Any,
    settings: ComponentSettings,
    *,
    sockets: dict[str, socket.socket] | None = None,
    run_dir: str | Path | None = None,
    stop: asyncio.Event | None = None,
    listen_early: bool = True,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT). ``load()`` runs here, once.

    The ports listen from the start and ``load()`` runs beside them: ``/live`` answers
    200 at once, ``/ready`` 503 and other calls 503 "loading" until it has finished, so
    probes never meet a refused connection. Without ``listen_early`` (a worker replacing
    one that died, while its siblings serve) it loads first and then listens, so it is
    never handed a call it would refuse.

    With a ``run_dir`` (several workers), the worker marks itself there once it has
    loaded and listens on every port: the supervisor tells a worker that failed to start
    from one that died while serving by that mark, and a worker that listened early
    reports ready once every worker has a mark.
    """
    siblings = None
    if run_dir is not None and listen_early and settings.workers > 1:
        siblings = AllStarted(run_dir, settings.workers)
    tracing = start_tracing(settings.tracing, settings.unit_id or settings.interface_name)
    dataplane = ComponentDataPlane(user, settings, also_ready=siblings, tracing=tracing)
    peers = PeerMetrics(dataplane.registry, run_dir)
    rest = RestApp(dataplane, metrics_text=peers.text, metrics_path=settings.metrics_endpoint)
    token_file = settings.node_auth_token_file
    auth = BearerTokens(token_file) if token_file else None  # chosen once: off costs nothing
    http_app: RestApp | RequireToken = rest if auth is None else RequireToken(rest, auth)
    if not listen_early:
        await dataplane.ensure_loaded()
        freeze_loaded_objects()
    sockets = sockets or {}
    http_sock = sockets.get("http") or bind_socket(settings.host, settings.http_port)
    metrics_sock = sockets.get("metrics") or bind_socket(settings.host, settings.metrics_port)
    grpc_server = None
    tls = ServerTls(settings.tls) if settings.tls is not None else None
    if settings.grpc_workers > 0:
        grpc_server = build_grpc_server(
            dataplane,
            max_message_size=settings.grpc_message_limit,
            kind=settings.grpc_server,
            auth=auth,
            limits=settings.wire.http2,
        )
        bind_grpc(grpc_server, settings.host, settings.grpc_port, tls)
        await grpc_server.start()
    await peers.start()
    log.info(
        "serving %s: REST on %s:%d, gRPC on %s, metrics on %d%s%s",
        dataplane.name,
        settings.host,
        http_sock.getsockname()[1],
        f"{settings.grpc_port}" if grpc_server else "off",
        metrics_sock.getsockname()[1],
        settings.metrics_endpoint,
        "" if dataplane.loaded else "; loading the model",
    )
    log_security(tls, auth)
    loading = None
    if listen_early:  # started now, so that a lifespan start-up sees it running
        loading = asyncio.ensure_future(_when_loaded(dataplane.start_loading(), run_dir))
    elif run_dir is not None:
        mark_started(run_dir)
    try:
        await run_servers(
            [(http_app, http_sock), (MetricsApp(peers, settings.metrics_endpoint), metrics_sock)],
            grpc_server,
            settings,
            stop,
            loading,
            tls,
        )
    finally:
        await peers.stop()
        dataplane.close()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)  # exports what is left


async def _when_loaded(loading: asyncio.Task[None], run_dir: str | Path | None) -> None:
    """Once ``load()`` has finished: keep what it loaded out of the collector's scans, and
    mark the worker started."""
    await loading
    freeze_loaded_objects()
    if run_dir is not None:
        mark_started(run_dir)
