"""Build the ASGI application of one component, for embedding and for tests."""

from __future__ import annotations

from typing import Any

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.settings import ComponentSettings
from infergraph.transport.rest.component import RestApp

__all__ = ["component_app"]


def component_app(user_object: Any, **options: Any) -> RestApp:
    """The ASGI app serving ``user_object``'s Seldon REST endpoints.

    ``options`` are :class:`~infergraph.settings.ComponentSettings` fields, e.g.
    ``unit_id="classifier"``, ``max_message_size=1_000_000``. The user's ``load()``
    runs at ASGI lifespan start-up, or before the first request otherwise.
    """
    settings = ComponentSettings(**options)
    return RestApp(
        ComponentDataPlane(user_object, settings), metrics_path=settings.metrics_endpoint
    )
