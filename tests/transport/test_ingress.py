"""The ingress layer alone: the gateway's prefix stripped for the app behind it, over ASGI and
over ``respond`` (infergraph's own HTTP server), and the gRPC routing metadata."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from infergraph.errors import NotFound
from infergraph.transport.ingress import IngressPaths, SeldonIngress
from infergraph.transport.rest.asgi import JSON, Reply, Scope, SeldonApp
from infergraph.wire.http1.server import Responder

INGRESS = SeldonIngress("models", ("iris",))


class EchoApp(SeldonApp):
    """Answers with the path and root_path it was given."""

    def __init__(self) -> None:
        self.max_body_size = 1 << 20
        self.routes = {
            "/api/v1.0/predictions": (self._echo, ("POST",), "predictions"),
            "/v2/models/iris/infer": (self._echo, ("POST",), "infer"),
        }

    async def _echo(self, scope: Scope, body: bytes) -> Reply:
        seen = {"path": scope["path"], "root_path": scope.get("root_path", ""), "body": body}
        return 200, orjson.dumps(seen, default=bytes.decode), JSON


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = IngressPaths(EchoApp(), INGRESS)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize(
    ("path", "seen", "root"),
    [
        pytest.param(
            "/seldon/models/iris/api/v1.0/predictions", "/api/v1.0/predictions",
            "/seldon/models/iris", id="istio",
        ),
        pytest.param(
            "/seldon/iris/api/v1.0/predictions", "/api/v1.0/predictions", "/seldon/iris",
            id="ambassador-one-namespace",
        ),
        pytest.param(
            "/seldon/models/iris/v2/models/iris/infer", "/v2/models/iris/infer",
            "/seldon/models/iris", id="v2",
        ),
        pytest.param("/api/v1.0/predictions", "/api/v1.0/predictions", "", id="no-prefix"),
    ],
)  # fmt: skip
async def test_the_app_sees_the_path_the_gateway_hands_on(
    client: httpx.AsyncClient, path: str, seen: str, root: str
) -> None:
    async with client:
        answer = await client.post(path, content=b'{"data":{}}')
    assert answer.status_code == 200
    assert answer.json() == {"path": seen, "root_path": root, "body": '{"data":{}}'}


async def test_a_prefix_for_another_deployment_is_a_seldon_404(client: httpx.AsyncClient) -> None:
    async with client:
        answer = await client.post("/seldon/default/iris/api/v1.0/predictions")
    assert answer.status_code == 404
    assert answer.headers["access-control-allow-origin"] == "*"
    status = answer.json()["status"]  # Seldon's error JSON, as for any unknown path
    assert status["info"] == (
        "Not Found: no deployment at /seldon/default/iris/; this server serves deployment "
        "'iris' in namespace 'models', at /seldon/models/iris/ (or /seldon/iris/, or without "
        "a prefix)"
    )


async def test_a_wrong_prefix_on_a_v2_path_is_a_v2_404(client: httpx.AsyncClient) -> None:
    async with client:
        answer = await client.post("/seldon/models/setosa/v2/models/iris/infer")
    assert answer.status_code == 404
    assert "deployment 'iris' in namespace 'models'" in answer.json()["error"]


async def test_respond_strips_the_prefix_for_infergraph_own_server() -> None:
    layer = IngressPaths(EchoApp(), INGRESS)
    assert isinstance(layer, Responder)
    assert layer.max_body_size == 1 << 20
    scope: dict[str, Any] = {
        "type": "http", "method": "POST", "path": "/seldon/models/iris/api/v1.0/predictions",
        "query_string": b"", "headers": [],
    }  # fmt: skip
    status, _, out = await layer.respond(scope, b"{}")
    assert status == 200
    assert orjson.loads(out)["path"] == "/api/v1.0/predictions"
    status, headers, out = await layer.respond({**scope, "path": "/seldon/x/y/z"}, b"")
    assert status == 404
    assert (b"content-length", str(len(out)).encode()) in headers


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/seldon/models/iris/", ("/seldon/models/iris", "/"), id="root"),
        pytest.param("/seldon/models/iris", ("/seldon/models/iris", "/"), id="no-slash"),
        pytest.param("/seldon/iris/live", ("/seldon/iris", "/live"), id="one-namespace"),
    ],
)
def test_split_prefix(path: str, expected: tuple[str, str]) -> None:
    assert INGRESS.split_prefix(path) == expected


def test_the_ambassador_service_name_annotation_is_a_second_name() -> None:
    class Plan:
        name, namespace = "iris", ""
        annotations = {"seldon.io/ambassador-service-name": "flowers"}

    ingress = SeldonIngress.of(Plan())  # type: ignore[arg-type]
    assert ingress == SeldonIngress("default", ("iris", "flowers"))
    assert ingress.split_prefix("/seldon/default/flowers/ready") == (
        "/seldon/default/flowers",
        "/ready",
    )
    ingress.check_metadata({"seldon": "flowers", "namespace": "default"})


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"seldon": "iris", "namespace": "models"}, id="istio"),
        pytest.param({"seldon": "iris"}, id="ambassador-one-namespace"),
        pytest.param({}, id="none"),
    ],
)
def test_routing_metadata_naming_this_deployment_is_accepted(headers: dict[str, str]) -> None:
    INGRESS.check_metadata(headers)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        pytest.param({"seldon": "setosa"}, "seldon: 'setosa' names another deployment", id="name"),
        pytest.param(
            {"seldon": "iris", "namespace": "default"}, "namespace: 'default' is another", id="ns"
        ),
    ],
)
def test_routing_metadata_naming_another_deployment_is_refused(
    headers: dict[str, str], words: str
) -> None:
    with pytest.raises(NotFound, match="serves deployment 'iris' in namespace 'models'") as caught:
        INGRESS.check_metadata(headers)
    assert words in caught.value.message
