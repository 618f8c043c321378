"""Run ``infergraph serve``: the event loop, and the node processes with ``--processes``."""

from __future__ import annotations

import logging
import tempfile

from infergraph.graph.spec import Deployment
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.serving.graph_server import build_dataplane, serve_graph
from infergraph.serving.workers import fork_worker, run_loop, supervise
from infergraph.settings import GraphSettings

__all__ = ["run_graph"]

log = logging.getLogger(__name__)


def run_graph(deployment: Deployment, settings: GraphSettings) -> int:
    """Serve until SIGTERM/SIGINT; return the exit code."""
    if settings.processes:
        from infergraph.serving.processes import run_with_processes

        return run_with_processes(deployment, settings)
    if settings.workers <= 1:
        run_loop(_serve(deployment, settings, None, True))
        return 0
    _warn_of_what_workers_do_not_share(deployment, settings)
    with tempfile.TemporaryDirectory(prefix="infergraph-serve-") as run_dir:
        return supervise(
            lambda early: fork_worker(lambda: _serve(deployment, settings, run_dir, early)),
            settings.workers,
            run_dir,
        )


async def _serve(
    deployment: Deployment, settings: GraphSettings, run_dir: str | None, listen_early: bool
) -> None:
    dataplane: GraphDataPlane
    if settings.remote:
        from infergraph.serving.remote import remote_dataplane

        dataplane = remote_dataplane(deployment, settings)
    else:
        dataplane = build_dataplane(deployment, settings)
    await serve_graph(dataplane, settings, run_dir=run_dir, listen_early=listen_early)


def _warn_of_what_workers_do_not_share(deployment: Deployment, settings: GraphSettings) -> None:
    """Each worker holds its own graph: without Redis, routers that learn (bandits) learn
    apart, and a feedback by request id reaches only the worker that served the request."""
    if settings.redis_url:
        return
    log.warning(
        "%d workers without --redis-url: each keeps its own bandit state and its own record "
        "of request ids for feedback by id (a feedback carrying its response's meta.routing "
        "works anywhere); give --redis-url to share them",
        settings.workers,
    )
