"""``infergraph serve --processes``: every graph node in its own processes, like pods.

Each componentSpec container that implements a graph node becomes one ``infergraph
microservice`` process per replica, configured by the environment Seldon's operator gives a
container. Built-in routers and combiners stay in the orchestrator: they have no container.
The orchestrator calls the nodes over REST (:class:`RestNodeClient`, binary V2 tensors
with :class:`V2RestCodec`), or over gRPC (:class:`GrpcNodeClient` with :class:`V2GrpcCodec`)
when ``spec.transport`` is ``grpc``; with ``--node-protocol seldon``, in Seldon's protocol as
Seldon's executor calls pods (:class:`SeldonJsonCodec`, :class:`SeldonProtoCodec`). A
supervisor task restarts a process that dies on the same ports, so the clients simply
reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from infergraph.errors import LoadError
from infergraph.graph.nodes import (
    HOST,
    NodeProcess,
    ReplicatedNodeClient,
    local_factory,
    plan_processes,
)
from infergraph.graph.plan import ClientFactory, NodeClient
from infergraph.graph.spec import Deployment, PredictiveUnit, PredictorSpec
from infergraph.observability.json_logs import json_line, utc_time
from infergraph.observability.metrics import Registry
from infergraph.routers import BanditStore, RedisStore
from infergraph.runtime.dashboard import RESTART_METRIC
from infergraph.serving.graph_server import build_dataplane, model_sources, serve_graph
from infergraph.serving.hops import (
    EXTERNAL_ENV,
    NodeSecurity,
    message_limit,
    node_client,
    node_tls_env,
    uses_grpc,
)
from infergraph.serving.workers import run_loop
from infergraph.settings import GraphSettings
from infergraph.wire.tls import ReloadingContext

__all__ = ["OUTPUT_LOGGER", "RESTART_METRIC", "Supervisor", "metrics_targets", "run_with_processes"]

log = logging.getLogger(__name__)

OUTPUT_LOGGER = "infergraph.node.output"
"""The ``logger`` of a node's line that was not JSON, forwarded in JSON mode."""
START_TIMEOUT_S = 300.0
"""How long a node may take to load and answer ``/ready`` at start-up."""
STOP_GRACE_S = 10.0
"""How long a node has to stop after SIGTERM before it is killed."""
_POLL_S = 0.05
_MAX_BACKOFF_S = 30.0
_STABLE_S = 10.0
"""A process that ran this long before dying is restarted at once; sooner, with back-off."""
# Env that configures one Seldon container, never a whole graph: not inherited by the nodes.
_CONTAINER_ENV = re.compile(
    r"^(PREDICTIVE_UNIT_|PREDICTOR_|SELDON_|GUNICORN_|GRPC_WORKERS$|MODEL_NAME$|MODEL_METADATA$"
    r"|SERVICE_TYPE$|PAYLOAD_PASSTHROUGH$|INCLUDE_METRICS_IN_CLIENT_RESPONSE$)"
)
# ``python -m infergraph`` that gets SIGTERM when the orchestrator dies, even by SIGKILL
# (Linux PR_SET_PDEATHSIG): no orphan keeps serving on a port nobody watches. One line, so
# that ``ps`` stays readable.
_LAUNCH = (
    "import ctypes,os,runpy,sys;"
    "sys.platform=='linux' and ctypes.CDLL(None).prctl(1,15);"
    "os.getppid()==int(sys.argv[1]) or sys.exit(1);"
    "sys.argv[:2]=['infergraph'];"
    "runpy.run_module('infergraph',run_name='__main__')"
)


def _take_port(held: list[socket.socket], avoid: frozenset[int] = frozenset()) -> int:
    """A free port held by a bound, not listening, ``SO_REUSEPORT`` socket (kept in ``held``), so
    no other program takes it while its node restarts: only listening sockets get connections.

    ``avoid`` holds the orchestrator's own ports: they are not bound yet when the nodes' ports
    are handed out, so the kernel could hand one of them to a node.
    """
    refused: list[socket.socket] = []  # kept bound until the end, so not handed out again
    try:
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
            if port not in avoid:
                held.append(sock)
                return port
            refused.append(sock)
    finally:
        for sock in refused:
            sock.close()


@dataclass(eq=False)
class _Child:
    spec: NodeProcess
    pid: int = 0
    exited: asyncio.Task[int] | None = None
    logs: asyncio.Task[None] | None = None
    keeper: asyncio.Task[None] | None = None
    started: float = 0.0
    backoff: float = 0.0
    last_line: str = ""


async def _http_ready(port: int, tls: ReloadingContext | None = None) -> bool:
    """GET ``/ready`` on a node's REST port (in TLS with ``tls``): 200 once its ``load()``
    has run."""
    ssl = None if tls is None else tls.fresh()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, ssl=ssl), 2.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 2.0)
        return line.split()[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _node_line(tag: str, text: str) -> tuple[str, str]:
    """A node's line as JSON (``--log-format json``) with its ``node`` tag added, and the
    message it says: a JSON object from the node's logging keeps its fields; any other
    line (a ``print``, a traceback, an error before logging started) becomes the message
    of one, at INFO, from logger ``infergraph.node.output``."""
    fields: Any = None
    if text.startswith("{"):
        with contextlib.suppress(orjson.JSONDecodeError):
            fields = orjson.loads(text)
    if not isinstance(fields, dict):
        fields = {
            "time": utc_time(time.time()),
            "level": "INFO",
            "logger": OUTPUT_LOGGER,
            "message": text,
        }
    fields["node"] = tag
    return json_line(fields), str(fields.get("message", text))


async def _forward(child: _Child, pipe: IO[bytes], as_json: bool = False) -> None:
    """Copy a node's output to ours, each line prefixed with the node's tag (``as_json``:
    each line a JSON object with a ``node`` field, :func:`_node_line`)."""
    loop, stream = asyncio.get_running_loop(), asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)
    try:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the limit is dropped
                continue
            if not line:
                return
            if not (text := line.decode(errors="replace").rstrip()):
                continue
            if as_json:
                out, child.last_line = _node_line(child.spec.tag, text)
                sys.stderr.write(out + "\n")
            else:
                child.last_line = text
                sys.stderr.write(f"{child.spec.tag} | {text}\n")
    finally:
        transport.close()


async def _exit_code(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` without a thread: its pidfd becomes readable when it exits."""
    if not hasattr(os, "pidfd_open"):  # not Linux
        return await asyncio.to_thread(process.wait)
    loop, exited = asyncio.get_running_loop(), asyncio.Event()
    fd = os.pidfd_open(process.pid)
    loop.add_reader(fd, exited.set)
    try:
        await exited.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return process.wait()


def _ended(code: int) -> str:
    """How a process ended, from its exit status (negative: the signal that killed it)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {-code} ({signal.Signals(-code).name})"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _kill_group(pgid: int, sig: int) -> None:
    """Signal a node's process group; 0 (never started) must not become our own group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid > 0:
            os.killpg(pgid, sig)


@dataclass(eq=False)
class Supervisor:
    """Starts the node processes, restarts those that die, and stops them all."""

    children: list[_Child]
    command: Callable[[NodeProcess], list[str]]
    env: dict[str, str]
    """Inherited by every process, under its own container's env."""
    cwd: str
    registry: Registry
    stop: asyncio.Event
    on_down: Callable[[NodeProcess, str], None]
    """Told at once when a process dies, so no call is sent to it while it restarts; the
    text (``is restarting: its process ...``) is what calls refused meanwhile answer."""
    json_logs: bool = False
    """The nodes log JSON (``--log-format json``): their lines are forwarded as JSON."""
    tls: ReloadingContext | None = None
    """The nodes serve TLS (node TLS is on): their readiness is asked in TLS too."""
    stopping: bool = False

    def _spawn(self, child: _Child) -> None:
        spec, loop = child.spec, asyncio.get_running_loop()
        child.pid, child.started = 0, loop.time()
        # subprocess (vfork, then exec) rather than the loop's fork: a fork of a process whose
        # gRPC threads are busy can crash before it execs
        process = subprocess.Popen(
            self.command(spec),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**self.env, **spec.env},
            cwd=spec.folder or self.cwd,
            start_new_session=True,  # its own group: its worker processes stop with it
        )
        assert process.stdout is not None
        child.pid = process.pid
        child.exited = loop.create_task(_exit_code(process))
        child.logs = loop.create_task(_forward(child, process.stdout, self.json_logs))
        ports = f"REST {spec.http_address}, gRPC {spec.address}"
        log.info("node %s: started pid %d (%s)", spec.tag, process.pid, ports)

    async def _wait_ready(self, child: _Child, timeout: float) -> None:
        """Poll ``/ready`` until 200; a process that exits first is a start-up failure."""
        assert child.exited is not None and child.logs is not None
        spec, loop = child.spec, asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await _http_ready(spec.http_port, self.tls) and not self.stop.is_set():
            problem = f"was not ready after {timeout:g} s" if loop.time() > deadline else ""
            if child.exited.done():
                await child.logs  # its last words are what the error reports
                problem = f"{_ended(child.exited.result())} during start-up"
                problem += f": {child.last_line}" if child.last_line else ""
            if problem:
                raise LoadError(f"node {spec.node!r} ({spec.tag}) {problem}", node=spec.node)
            await asyncio.sleep(_POLL_S)

    async def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every process, wait until each is ready (or ``stop`` is set), then watch."""
        loop = asyncio.get_running_loop()
        for child in self.children:
            labels = (("node", child.spec.node), ("predictor_name", child.spec.predictor))
            self.registry.inc(RESTART_METRIC, labels, 0.0, "Node processes restarted after dying")
            self._spawn(child)
        try:  # the first that fails cancels the others' waits
            async with asyncio.TaskGroup() as group:
                for child in self.children:
                    group.create_task(self._wait_ready(child, timeout))
        except* LoadError as failed:
            raise failed.exceptions[0] from None
        for child in self.children:  # from now on, a process that dies is restarted
            child.keeper = loop.create_task(self._keep_alive(child))

    async def _keep_alive(self, child: _Child) -> None:
        spec, loop = child.spec, asyncio.get_running_loop()
        while child.exited is not None:
            # shielded: cancelling this watch (shutdown) must not cancel the exit's own task,
            # which shutdown waits on to give the process its grace period
            code = await asyncio.shield(child.exited)
            if self.stopping:
                return
            # at once, unless it keeps dying young: then 0.5 s, 1 s, 2 s... (a crash loop)
            if loop.time() - child.started > _STABLE_S:
                child.backoff = 0.0
            delay, child.backoff = child.backoff, min(_MAX_BACKOFF_S, max(0.5, child.backoff * 2))
            when = f" in {delay:g} s" if delay else ""
            self.on_down(spec, f"is restarting{when}: its process {_ended(code)}")
            _kill_group(child.pid, signal.SIGKILL)  # workers it forked, if any
            labels = (("node", spec.node), ("predictor_name", spec.predictor))
            self.registry.inc(RESTART_METRIC, labels, 1.0)
            log.warning("node %s: pid %d %s; restarting%s", spec.tag, child.pid, _ended(code), when)
            with contextlib.suppress(TimeoutError):  # the back-off is cut short by stop
                await asyncio.wait_for(self.stop.wait(), delay)
            if self.stop.is_set() or self.stopping:
                return
            try:
                self._spawn(child)
            except OSError as exc:  # out of memory or descriptors: counted, tried again
                log.error("node %s: cannot restart: %s", spec.tag, exc)

    async def shutdown(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM every process, SIGKILL those still running after ``grace``."""
        self.stopping = True
        keepers = [c.keeper for c in self.children if c.keeper is not None]
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        live = {c.exited: c for c in self.children if c.exited and not c.exited.done()}
        for child in live.values():
            _kill_group(child.pid, signal.SIGTERM)
        if live:
            _, late = await asyncio.wait(live, timeout=grace)
            for task in late:
                log.warning("node %s: still running after SIGTERM; killed", live[task].spec.tag)
                _kill_group(live[task].pid, signal.SIGKILL)
        for child in self.children:
            _kill_group(child.pid, signal.SIGKILL)  # strays of its group
            tasks = [t for t in (child.exited, child.logs) if t is not None]
            await asyncio.gather(*tasks, return_exceptions=True)


Clients = dict[tuple[str, str], ReplicatedNodeClient[Any]]
"""The client of each node run as processes, by predictor and node name."""


def _factory(
    specs: list[NodeProcess],
    local: ClientFactory,
    limit: int,
    clients: Clients,
    protocol: str = "v2",
    security: NodeSecurity | None = None,
) -> ClientFactory:
    """Remote clients for the nodes that run as processes; the others in this process.

    The transport is REST unless the deployment's ``spec.transport`` says ``grpc``, as in
    Seldon's executor and on Kubernetes: a REST hop costs less CPU
    and adds about half the latency of a gRPC hop (bench/RESULTS.md)."""
    groups: dict[tuple[str, str], list[NodeProcess]] = {}
    for spec in specs:
        groups.setdefault((spec.predictor, spec.node), []).append(spec)

    def build(
        deployment: Deployment, predictor: PredictorSpec, node: PredictiveUnit
    ) -> tuple[NodeClient, str]:
        key = (predictor.name, node.name)
        if key not in groups:
            return local(deployment, predictor, node)
        grpc = uses_grpc(deployment)
        addresses = [spec.address if grpc else spec.http_address for spec in groups[key]]
        client = node_client(deployment, node.name, addresses, limit, protocol, security)
        clients[key] = client
        return client, groups[key][0].image

    return build


def metrics_targets(specs: list[NodeProcess]) -> list[dict[str, Any]]:
    """The node processes' metrics ports as Prometheus HTTP service discovery answers them
    (``http_sd_configs``, served at the orchestrator's ``/metrics/targets``): one target
    group per process, labelled with its ``node`` and ``replica``, so that Prometheus
    scrapes each process as it scrapes each pod on Kubernetes."""
    replicas: dict[tuple[str, str], int] = {}
    groups = []
    for spec in specs:
        replica = replicas[(spec.predictor, spec.node)] = (
            replicas.get((spec.predictor, spec.node), -1) + 1
        )
        groups.append(
            {
                "targets": [f"{HOST}:{spec.metrics_port}"],
                "labels": {"node": spec.node, "replica": str(replica)},
            }
        )
    return groups


def _mark_down(client: ReplicatedNodeClient[Any], spec: NodeProcess, reason: str) -> None:
    """Tell ``client`` that the process ``spec`` died, by the port the client calls."""
    client.mark_down(spec.address if client.transport == "grpc" else spec.http_address, reason)


def _command(settings: GraphSettings, limit: int) -> Callable[[NodeProcess], list[str]]:
    path = str(Path(settings.path).resolve())
    level = settings.log_level.upper()
    flags = ["--log-level", level] if level in ("DEBUG", "INFO", "WARNING", "ERROR") else []
    if settings.tracing.enabled:  # on by the flag too, not only by the env the nodes inherit
        flags += ["--tracing", "1"]
    if settings.log_format != "text":
        flags += ["--log-format", settings.log_format]
    if settings.access_log:  # GUNICORN_ACCESS_LOG configures one container: not inherited
        flags += ["--access-log"]

    def command(spec: NodeProcess) -> list[str]:
        return [
            *(sys.executable, "-c", _LAUNCH, str(os.getpid()), "microservice"),
            *(spec.env["MODEL_NAME"], "--path", spec.folder or path, "--host", HOST, *flags),
            *("--http-port", str(spec.http_port), "--grpc-port", str(spec.grpc_port)),
            *("--metrics-port", str(spec.metrics_port), "--max-message-size", str(limit)),
        ]

    return command


async def _serve(deployment: Deployment, settings: GraphSettings) -> None:
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    held: list[socket.socket] = []
    registry = Registry()
    limit = message_limit(deployment, settings.max_message_size)
    clients: Clients = {}
    supervisor: Supervisor | None = None
    try:
        sources = model_sources(settings)
        own = frozenset((settings.http_port, settings.grpc_port, settings.metrics_port))
        specs = plan_processes(deployment, lambda: _take_port(held, own), sources)
        store: BanditStore | None = RedisStore(settings.redis_url) if settings.redis_url else None
        local = local_factory(sources=sources, registry=registry, store=store)
        # compiled first: a graph that cannot be served fails before any process starts
        security = NodeSecurity.of(settings)
        factory = _factory(specs, local, limit, clients, settings.node_protocol, security)
        dataplane = build_dataplane(deployment, settings, registry=registry, factory=factory)
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not _CONTAINER_ENV.match(k) and not EXTERNAL_ENV.match(k)
        }
        supervisor = Supervisor(
            [_Child(spec) for spec in specs],
            _command(settings, limit),
            {
                **inherited,
                **node_tls_env(settings),
                "PYTHONUNBUFFERED": "1",
                "INFERGRAPH_GRPC_SERVER": settings.grpc_server,
            },
            str(Path(settings.path).resolve()),
            registry,
            stop,
            lambda spec, reason: _mark_down(clients[(spec.predictor, spec.node)], spec, reason),
            json_logs=settings.log_format == "json",
            tls=security.rest_tls,
        )
        await serve_graph(
            dataplane,
            settings,
            stop,
            first=supervisor.start,
            metrics_targets=metrics_targets(specs),
        )
    finally:
        if supervisor is not None:
            await supervisor.shutdown()
        for client in clients.values():
            await client.aclose()
        for sock in held:
            sock.close()


def run_with_processes(deployment: Deployment, settings: GraphSettings) -> int:
    """Serve ``deployment`` with a process per node replica until SIGTERM/SIGINT."""
    run_loop(_serve(deployment, settings))
    return 0
