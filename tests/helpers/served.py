"""A component and a graph served in the test's own event loop on held ports, by the same
``serve_component`` and ``serve_graph`` the command line runs (TLS, auth and all).

The ports are held (:class:`ports.HeldPorts`) rather than bound to port 0 by the servers:
``serve_graph`` binds the ports its settings name, ``serve_component`` takes sockets for REST
and metrics but not for gRPC, and :func:`_serving` takes the REST port's first accepted
connection for "the servers run", which a socket bound beforehand would give at once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from infergraph.graph.spec import load_deployments
from infergraph.serving.graph_server import build_dataplane, serve_graph
from infergraph.serving.server import serve_component
from infergraph.settings import ComponentSettings, GraphSettings
from tests.helpers.ports import HeldPorts

ECHO = "class Echo:\n    def predict(self, X, names):\n        return X\n"
"""``Echo.py``: a model that answers what it is sent."""


class Echo:
    def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
        return X


async def _serving(serve: Callable[[asyncio.Event], Awaitable[None]], port: int) -> Any:
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop))
    for _ in range(250):  # the REST port answers once the servers run
        if task.done():
            task.result()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        break
    return stop, task


async def _stopped(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await task
    gc.unfreeze()  # what the server froze once loaded stays out of other tests' way


@contextlib.asynccontextmanager
async def component(**fields: Any) -> AsyncIterator[ComponentSettings]:
    """``Echo`` served (REST, gRPC, metrics on held ports) until the block ends."""
    with HeldPorts(3) as (http, grpc_port, metrics):
        settings = ComponentSettings(
            host="127.0.0.1", http_port=http, grpc_port=grpc_port, metrics_port=metrics, **fields
        )
        stop, task = await _serving(lambda s: serve_component(Echo(), settings, stop=s), http)
        try:
            yield settings
        finally:
            await _stopped(stop, task)


def echo_graph(folder: Path, transport: str | None = None) -> Path:
    """``graph.yaml``: deployment ``echo`` in namespace ``models``, one node ``echo``
    (its hops over ``transport``: gRPC unless ``rest``)."""
    (folder / "Echo.py").write_text(ECHO)
    container = {
        "name": "echo",
        "image": "test/echo:1",
        "env": [{"name": "MODEL_NAME", "value": "Echo"}],
    }
    spec = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "echo", "namespace": "models"},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "componentSpecs": [{"spec": {"containers": [container]}}],
                    "graph": {"name": "echo", "type": "MODEL", "children": []},
                }
            ]
        },
    }
    if transport is not None:
        spec["spec"]["transport"] = transport  # type: ignore[index]
    path = folder / "graph.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@contextlib.asynccontextmanager
async def graph(folder: Path, **fields: Any) -> AsyncIterator[GraphSettings]:
    """:func:`echo_graph` served in this process until the block ends."""
    (deployment,) = load_deployments(str(echo_graph(folder)))
    with HeldPorts(2) as (http, grpc_port):
        settings = GraphSettings(
            host="127.0.0.1", http_port=http, grpc_port=grpc_port, path=str(folder), **fields
        )
        dataplane = build_dataplane(deployment, settings)
        stop, task = await _serving(lambda s: serve_graph(dataplane, settings, s), http)
        try:
            yield settings
        finally:
            await _stopped(stop, task)
