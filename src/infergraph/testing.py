"""Serve a component in-process, for tests and for embedding infergraph in other programs.

:func:`serve_grpc` runs the Seldon gRPC services of one user object on a private
asyncio event loop in a background thread, bound to ``127.0.0.1`` on a free port,
and yields its address for an ordinary (synchronous) gRPC client::

    import grpc
    from infergraph.protocol.proto import prediction_pb2, prediction_pb2_grpc
    from infergraph.testing import serve_grpc

    with serve_grpc(MyModel(), unit_id="m") as address:
        with grpc.insecure_channel(address) as channel:
            stub = prediction_pb2_grpc.ModelStub(channel)
            response = stub.Predict(prediction_pb2.SeldonMessage(strData="hi"))

The user's ``load()`` has run and the server is accepting calls when the ``with``
block starts; the server, its loop and its thread are stopped when it ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.observability.metrics import Registry
from infergraph.settings import ComponentSettings
from infergraph.transport.grpc.component import build_grpc_server

__all__ = ["serve_grpc"]

_START_TIMEOUT_S = 60.0


@contextmanager
def serve_grpc(
    user_object: Any, *, registry: Registry | None = None, **options: Any
) -> Iterator[str]:
    """Serve ``user_object`` over gRPC in the background; yield ``"127.0.0.1:<port>"``.

    ``options`` are :class:`~infergraph.settings.ComponentSettings` fields, e.g.
    ``unit_id="m"``, ``max_message_size=1024`` or
    ``include_metrics_in_client_response=False``. Pass ``registry`` to read the
    metrics the component records (custom metrics, per-request latency).
    """
    settings = ComponentSettings(**options)
    started: Future[str] = Future()
    stopping: Future[None] = Future()

    async def serve() -> None:
        dataplane = ComponentDataPlane(user_object, settings, registry)
        try:
            await dataplane.load()
            server = build_grpc_server(dataplane, max_message_size=settings.grpc_message_limit)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                started.set_result(f"127.0.0.1:{port}")
                await asyncio.wrap_future(stopping)
            finally:
                await server.stop(0)
        finally:
            dataplane.close()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            else:
                raise

    thread = threading.Thread(target=run, name="infergraph-serve-grpc", daemon=True)
    thread.start()
    try:
        address = started.result(timeout=_START_TIMEOUT_S)
        yield address
    finally:
        stopping.set_result(None)
        thread.join()
