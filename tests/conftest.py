"""Shared fixtures: serve a user object in-process over the real ASGI app; hold ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

import httpx
import pytest

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.settings import ComponentSettings
from infergraph.transport.rest.component import RestApp
from tests.helpers.ports import HeldPorts, HoldPorts


class ClientFactory(Protocol):
    def __call__(self, user: Any, /, **settings: Any) -> httpx.AsyncClient: ...


@pytest.fixture
async def asgi_client() -> AsyncIterator[ClientFactory]:
    """``asgi_client(user, **ComponentSettings kwargs)`` -> an httpx client on ``RestApp``.

    The app is reachable as ``client.app`` for tests that need to look inside it.
    """
    made: list[tuple[httpx.AsyncClient, RestApp]] = []

    def make(user: Any, /, **settings: Any) -> httpx.AsyncClient:
        app = RestApp(ComponentDataPlane(user, ComponentSettings(**settings)))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        client.app = app  # type: ignore[attr-defined]
        made.append((client, app))
        return client

    yield make
    for client, app in made:
        await client.aclose()
        app.dataplane.close()


def check_seldon_error(
    response: httpx.Response, status: int, reason: str, *info_parts: str
) -> dict[str, Any]:
    """Assert Seldon's error JSON: the HTTP status, the reason and words of the info."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status"}, body
    block = body["status"]
    assert block["status"] == 1
    assert block["code"] == -1
    assert block["reason"] == reason
    for part in info_parts:
        assert part in block["info"], (part, block["info"])
    return block


@pytest.fixture
def seldon_error() -> Callable[..., dict[str, Any]]:
    """``seldon_error(response, status, reason, *words_in_info)``."""
    return check_seldon_error


@pytest.fixture
def held_ports() -> Iterator[HoldPorts]:
    """``held_ports(n)`` -> ``n`` ports held (:class:`ports.HeldPorts`) until the test ends:
    for a server of ours the test starts, or a port where nothing listens."""
    held: list[HeldPorts] = []

    def take(n: int) -> list[int]:
        held.append(HeldPorts(n))
        return held[-1].ports

    yield take
    for ports in held:
        ports.close()
