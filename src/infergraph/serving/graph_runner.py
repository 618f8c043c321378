"""Run ``infergraph serve``: the event loop, and the node processes with ``--processes``."""

from __future__ import annotations

from infergraph.graph.spec import Deployment
from infergraph.serving.graph_server import build_dataplane, serve_graph
from infergraph.serving.workers import run_loop
from infergraph.settings import GraphSettings

__all__ = ["run_graph"]


def run_graph(deployment: Deployment, settings: GraphSettings) -> int:
    """Serve until SIGTERM/SIGINT; return the exit code."""
    if settings.processes:
        from infergraph.serving.processes import run_with_processes

        return run_with_processes(deployment, settings)

    async def main() -> None:
        if settings.remote:
            from infergraph.serving.remote import remote_dataplane

            dataplane = remote_dataplane(deployment, settings)
        else:
            dataplane = build_dataplane(deployment, settings)
        await serve_graph(dataplane, settings)

    run_loop(main())
    return 0
