"""What a component adds around its methods: health, class names, metadata, tags, sdk stubs."""

from __future__ import annotations

import pytest

from infergraph.sdk import Model, SeldonNotImplementedError, SeldonResponse, Transformer

ROWS = {"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}


# ---------------------------------------------------------------- health, class names, metadata


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param(
            lambda self: [1, 2],
            {"meta": {}, "data": {"names": [], "tensor": {"shape": [2], "values": [1, 2]}}},
            id="array",
        ),
        pytest.param(lambda self: {"ok": True}, {"meta": {}, "jsonData": {"ok": True}}, id="dict"),
        pytest.param(lambda self: "fine", {"meta": {}, "strData": "fine"}, id="str"),
        pytest.param(None, {"meta": {}, "strData": "healthy"}, id="missing"),
    ],
)
async def test_health_status(asgi_client, method, expected):
    attrs = {"predict": lambda self, X, names: X}
    if method is not None:
        attrs["health_status"] = method
    user = type("Health", (), attrs)()
    response = await asgi_client(user).get("/health/status")
    assert response.status_code == 200
    assert response.json() == expected


async def test_health_status_not_implemented(asgi_client):
    class Unsure(Model):
        def predict(self, X, names):
            return X

        def health_status(self):
            raise SeldonNotImplementedError("no idea")

    response = await asgi_client(Unsure()).get("/health/status")
    assert response.json() == {"meta": {}, "strData": "not implemented - assuming healthy"}


class NamedByMethod:
    def predict(self, X, names):
        return X

    def class_names(self):
        return ["cat", "dog"]


class NamedByAttribute:
    class_names = ["cat", "dog"]

    def predict(self, X, names):
        return X


@pytest.mark.parametrize("user_cls", [NamedByMethod, NamedByAttribute])
@pytest.mark.parametrize(
    ("data", "expected_names"),
    [
        pytest.param({"ndarray": [[0.1, 0.9]]}, ["cat", "dog"], id="2d"),
        pytest.param(
            {"tensor": {"shape": [1, 2], "values": [0.1, 0.9]}}, ["cat", "dog"], id="2d-tensor"
        ),
        pytest.param({"ndarray": [0.1, 0.9]}, [], id="1d"),
    ],
)
async def test_class_names(asgi_client, user_cls, data, expected_names):
    response = await asgi_client(user_cls()).post("/predict", json={"data": data})
    assert response.json()["data"]["names"] == expected_names


class WithMetadata:
    def predict(self, X, names):
        return X

    def init_metadata(self):
        return {
            "name": "from-init",
            "versions": ["v1"],
            "platform": "custom",
            "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
        }


@pytest.mark.parametrize(
    ("model_metadata", "expected"),
    [
        pytest.param(
            "",
            {
                "name": "from-init",
                "versions": ["v1"],
                "platform": "custom",
                "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
                "outputs": [],
                "custom": {},
            },
            id="init-over-image-defaults",
        ),
        pytest.param(
            "versions: [v2]\n"
            "platform: sklearn\n"
            "outputs:\n- {name: proba, datatype: FP32, shape: [2]}\n"
            "custom: {team: ml}\n",
            {
                "name": "from-init",
                "versions": ["v2"],
                "platform": "sklearn",
                "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
                "outputs": [{"name": "proba", "datatype": "FP32", "shape": [2]}],
                "custom": {"team": "ml"},
            },
            id="MODEL_METADATA-yaml-wins",
        ),
        pytest.param(
            '{"name": "from-env"}',
            {
                "name": "from-env",
                "versions": ["v1"],
                "platform": "custom",
                "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"]}}],
                "outputs": [],
                "custom": {},
            },
            id="MODEL_METADATA-json",
        ),
    ],
)
async def test_metadata_merge(asgi_client, model_metadata, expected):
    client = asgi_client(WithMetadata(), unit_image="repo/img:0.1", model_metadata=model_metadata)
    response = await client.get("/metadata")
    assert response.status_code == 200
    assert response.json() == expected


# ---------------------------------------------------------------- tags() and SeldonResponse


class Everything:
    """Every endpoint, each answering SeldonResponse with a runtime tag naming itself."""

    def tags(self):
        return {"static": "yes", "who": "static"}

    def predict(self, X, names):
        return SeldonResponse(X, tags={"who": "predict"})

    def transform_input(self, X, names):
        return SeldonResponse(X, tags={"who": "transform_input"})

    def transform_output(self, X, names):
        return SeldonResponse(X, tags={"who": "transform_output"})

    def route(self, X, names):
        return SeldonResponse(1, tags={"who": "route"})

    def aggregate(self, Xs, names):
        return SeldonResponse(Xs[0], tags={"who": "aggregate"})

    def send_feedback(self, X, names, reward, truth, routing=None):
        return SeldonResponse([], tags={"who": "send_feedback"})

    def health_status(self):
        return SeldonResponse("ok", tags={"who": "health"})


@pytest.mark.parametrize(
    ("method", "path", "body", "who"),
    [
        pytest.param("POST", "/predict", ROWS, "predict", id="predict"),
        pytest.param("POST", "/transform-input", ROWS, "transform_input", id="transform-input"),
        pytest.param("POST", "/transform-output", ROWS, "transform_output", id="transform-output"),
        pytest.param("POST", "/route", ROWS, "route", id="route"),
        pytest.param("POST", "/aggregate", [ROWS], "aggregate", id="aggregate"),
        pytest.param(
            "POST", "/send-feedback", {"request": ROWS, "reward": 1}, "send_feedback", id="feedback"
        ),
        pytest.param("GET", "/health/status", None, "static", id="health-ignores-runtime-tags"),
    ],
)
async def test_static_and_runtime_tags_on_every_endpoint(asgi_client, method, path, body, who):
    response = await asgi_client(Everything()).request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["tags"] == {"static": "yes", "who": who}


async def test_foreign_seldon_response_is_unwrapped(asgi_client):
    class SeldonResponse:  # the shape of seldon_core.user_model.SeldonResponse
        def __init__(self, data, tags=None, metrics=None):
            self.data, self.tags, self.metrics = data, tags, metrics

    class UsesSeldonCore:
        def predict(self, X, names):
            return SeldonResponse([1], tags={"from": "seldon_core"})

    response = await asgi_client(UsesSeldonCore()).post("/predict", json=ROWS)
    assert response.json() == {
        "meta": {"tags": {"from": "seldon_core"}},
        "data": {"names": [], "ndarray": [1]},
    }


async def test_foreign_not_implemented_error_means_default(asgi_client):
    class SeldonNotImplementedError(Exception):  # the name seldon_core uses
        pass

    class OldStyle:
        def predict(self, X, names):
            return X

        def transform_input(self, X, names):
            raise SeldonNotImplementedError("use the default")

    body = {"data": {"ndarray": [[5]]}}
    response = await asgi_client(OldStyle()).post("/transform-input", json=body)
    assert response.json() == {"meta": {}, "data": {"names": ["t:0"], "ndarray": [[5]]}}


# ---------------------------------------------------------------- sdk base classes


class OnlyPredict(Model):
    def predict(self, X, names):
        return X * 3


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        pytest.param(
            "POST",
            "/predict",
            {"data": {"ndarray": [[1]]}},
            200,
            {"meta": {}, "data": {"names": ["t:0"], "ndarray": [[3]]}},
            id="predict",
        ),
        pytest.param(
            "POST",
            "/transform-input",
            {"data": {"ndarray": [[1]]}, "meta": {"tags": {"t": 1}}},
            200,
            {"meta": {"tags": {"t": 1}}, "data": {"names": ["t:0"], "ndarray": [[1]]}},
            id="transform-input-passes-through",
        ),
        pytest.param(
            "POST",
            "/transform-output",
            {"strData": "as is"},
            200,
            {"meta": {}, "strData": "as is"},
            id="transform-output-passes-through",
        ),
        pytest.param(
            "POST",
            "/send-feedback",
            {"reward": 1},
            200,
            {"meta": {}, "data": {"tensor": {"shape": [0]}}},  # no request data: a tensor
            id="feedback-empty",
        ),
        pytest.param(
            "GET", "/health/status", None, 200, {"meta": {}, "strData": "healthy"}, id="health"
        ),
        pytest.param("POST", "/route", {"data": {"ndarray": [[1]]}}, 400, None, id="route-absent"),
        pytest.param(
            "POST", "/aggregate", [{"data": {"ndarray": [[1]]}}], 400, None, id="aggregate-absent"
        ),
    ],
)
async def test_sdk_model_overriding_only_predict(asgi_client, method, path, body, status, expected):
    response = await asgi_client(OnlyPredict()).request(method, path, json=body)
    assert response.status_code == status, response.text
    if expected is not None:
        assert response.json() == expected


async def test_sdk_model_stubs_add_nothing(asgi_client):
    client = asgi_client(OnlyPredict(), unit_image="img:3")
    metadata = (await client.get("/metadata")).json()
    assert metadata == {
        "name": "img",
        "versions": ["3"],
        "platform": "",
        "inputs": [],
        "outputs": [],
        "custom": {},
    }
    response = await client.post("/predict", json={"data": {"ndarray": [[1]]}})
    assert response.json()["meta"] == {}
    assert "worker_id=" not in (await client.get("/metrics")).text  # no custom metrics


async def test_sdk_transformer_without_predict_answers_empty_list(asgi_client):
    class OnlyTransform(Transformer):
        def transform_input(self, X, names):
            return X

    response = await asgi_client(OnlyTransform()).post(
        "/predict", json={"data": {"ndarray": [[1]]}}
    )
    assert response.status_code == 200
    assert response.json() == {"meta": {}, "data": {"names": [], "ndarray": []}}
