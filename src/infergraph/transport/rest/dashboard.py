"""The dashboard's routes on the orchestrator's REST port (docs/dashboard.md).

``/dashboard`` is one HTML page with its script and style inline (no build step, nothing
fetched from elsewhere); it polls ``/dashboard/api/state`` and ``/dashboard/api/requests``
every second. ``/dashboard/events`` is the same state as a server-sent event for an
``EventSource``: each response carries one event and asks the client (``retry:``) to come
back a second later, which fits the REST servers here, whose answers are whole bodies.

Bad input is a 400 and an unknown puid a 404, both as Seldon's error JSON naming what was
wrong; the routes are answered while the graph loads, and are not timed as requests.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import parse_qs, unquote

import orjson

from infergraph.errors import BadRequest
from infergraph.runtime.dashboard import Dashboard
from infergraph.transport.rest.asgi import JSON, Handler, Reply, Scope

__all__ = ["PREFIX", "DashboardRoutes"]

PREFIX = "/dashboard"
REQUEST_PREFIX = "/dashboard/api/requests/"
DEFAULT_LIMIT = 20
HTML = b"text/html; charset=utf-8"
EVENTS = b"text/event-stream"
NO_STORE = (b"cache-control", b"no-store")
PAGE_HEADERS = [
    NO_STORE,
    # the page may talk to this server only: no script, style or image from elsewhere
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        b"connect-src 'self'; img-src 'self' data:",
    ),
]
Route = tuple[Handler, tuple[str, ...], str]


def _json(value: object) -> Reply:
    return 200, orjson.dumps(value), JSON, [NO_STORE]


class DashboardRoutes:
    """``/dashboard`` and its JSON, for one :class:`~infergraph.runtime.dashboard.Dashboard`."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.page = (
            resources.files("infergraph.transport.rest").joinpath("dashboard.html").read_bytes()
        )
        get = ("GET",)
        self.routes: dict[str, Route] = {
            PREFIX: (self._page, get, "dashboard"),
            f"{PREFIX}/api/state": (self._state, get, "dashboard"),
            f"{PREFIX}/api/requests": (self._requests, get, "dashboard"),
            f"{PREFIX}/events": (self._events, get, "dashboard"),
        }
        self.prefixed: list[tuple[str, Route]] = [
            (REQUEST_PREFIX, (self._request, get, "dashboard"))
        ]

    async def _page(self, scope: Scope, body: bytes) -> Reply:
        return 200, self.page, HTML, PAGE_HEADERS

    async def _state(self, scope: Scope, body: bytes) -> Reply:
        return _json(await self.dashboard.state())

    async def _events(self, scope: Scope, body: bytes) -> Reply:
        state = orjson.dumps(await self.dashboard.state())
        event = b"retry: 1000\nevent: state\ndata: " + state + b"\n\n"
        return 200, event, EVENTS, [(b"cache-control", b"no-cache")]

    async def _requests(self, scope: Scope, body: bytes) -> Reply:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = query.get("limit", [str(DEFAULT_LIMIT)])
        try:
            limit = int(values[-1])
        except ValueError:
            limit = -1
        if limit < 1:
            raise BadRequest(
                f"limit={values[-1]!r}: give how many recent requests to list, a whole "
                f"number of at least 1 (default {DEFAULT_LIMIT})"
            )
        return _json(self.dashboard.requests(limit))

    async def _request(self, scope: Scope, body: bytes) -> Reply:
        puid = unquote(scope["path"][len(REQUEST_PREFIX) :])
        if not puid or "/" in puid:
            raise BadRequest(f"{scope['path']}: expected /dashboard/api/requests/PUID")
        return _json(self.dashboard.request(puid))
