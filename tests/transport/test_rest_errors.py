"""Every REST error leaves as Seldon's error JSON with the right status and a useful message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import MicroserviceError
from infergraph.sdk import SeldonMicroserviceException
from infergraph.settings import ComponentSettings
from infergraph.transport.rest.component import RestApp

BAD_DATA = "MICROSERVICE_BAD_DATA"
INTERNAL = "MICROSERVICE_INTERNAL_ERROR"
NDARRAY = {"data": {"ndarray": [[1, 2]]}}


class Echo:
    def predict(self, X, names):
        return X


def nested(depth: int) -> Any:
    """``[[...[1]...]]``, ``depth`` lists deep."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# ---------------------------------------------------------------- malformed requests


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b'{"data": {"ndarray": [[1, 2]]', ["Invalid JSON"], id="truncated-json"),
        pytest.param(b"{'data': 1}", ["Invalid JSON"], id="single-quotes"),
        pytest.param(b"NaN", ["Invalid JSON"], id="nan-literal"),
        pytest.param(b"\xff\xfe", ["Invalid JSON"], id="not-utf8"),
        pytest.param(b"", ["Can't find JSON in data"], id="empty-body"),
        pytest.param(b"  \n", ["Can't find JSON in data"], id="blank-body"),
        pytest.param(
            b"[1, 2]", ["Invalid request data type", "must be a JSON object"], id="list-body"
        ),
        pytest.param(b'"text"', ["Invalid request data type"], id="string-body"),
        pytest.param(b"42", ["Invalid request data type"], id="number-body"),
        pytest.param(b"null", ["Invalid request data type"], id="null-body"),
        pytest.param(b"{}", ["none of data, strData, binData or jsonData"], id="empty-object"),
    ],
)
async def test_malformed_bodies(asgi_client, seldon_error, content, words):
    client = asgi_client(Echo())
    response = await client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    seldon_error(response, 400, BAD_DATA, *words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({"data": [[1, 2]]}, ["data must be an object"], id="data-is-a-list"),
        pytest.param(
            {"data": {"ndarray": 3}}, ["data.ndarray must be a list"], id="ndarray-scalar"
        ),
        pytest.param(
            {"data": {"ndarray": {"rows": [1]}}},
            ["data.ndarray must be a list"],
            id="ndarray-object",
        ),
        pytest.param(
            {"data": {"ndarray": [[1, 2], [3]]}}, ["data.ndarray is ragged"], id="ragged-rows"
        ),
        pytest.param(
            {"data": {"ndarray": [[[1], [2]], [[3]]]}}, ["data.ndarray is ragged"], id="ragged-deep"
        ),
        pytest.param(
            {"data": {"ndarray": [[1], 2]}}, ["data.ndarray is ragged"], id="rows-and-scalars"
        ),
        pytest.param(
            {"data": {"names": "a", "ndarray": [[1]]}},
            ["data.names must be a list"],
            id="names-not-list",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}},
            ["data.tensor", "shape [2, 2] does not match 3 values"],
            id="tensor-shape-mismatch",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [1], "values": ["a"]}}},
            ["data.tensor.values must be numbers"],
            id="tensor-strings",
        ),
        pytest.param(
            {"data": {"tensor": {"values": [[1, 2], [3]]}}},
            ["data.tensor.values is ragged"],
            id="tensor-ragged",
        ),
        pytest.param(
            {"data": {"tensor": {"values": 1}}},
            ["data.tensor.values must be a list"],
            id="tensor-values-scalar",
        ),
        pytest.param(
            {"data": {"tftensor": {"dtype": "DT_BOGUS"}}},
            ["data.tftensor.dtype", "DT_BOGUS"],
            id="tftensor-dtype",
        ),
        pytest.param(
            {
                "data": {
                    "tftensor": {
                        "dtype": "DT_FLOAT",
                        "tensorShape": {"dim": [{"size": "3"}]},
                        "floatVal": [1, 2],
                    }
                }
            },
            ["data.tftensor", "do not fill the shape [3]"],
            id="tftensor-values",
        ),
        pytest.param(
            {
                "data": {
                    "tftensor": {
                        "dtype": "DT_FLOAT",
                        "tensorShape": {"dim": [{"size": "2"}]},
                        "floatVal": 1.5,
                    }
                }
            },
            ["data.tftensor.floatVal must be a list of DT_FLOAT values, got a number (1.5)"],
            id="tftensor-scalar-values",
        ),
        pytest.param(
            {
                "data": {
                    "tftensor": {
                        "dtype": "DT_FLOAT",
                        "tensorShape": {"dim": [{"size": "-2"}]},
                        "floatVal": [1.5],
                    }
                }
            },
            ["data.tftensor.tensorShape.dim[0].size is -2"],
            id="tftensor-negative-dim",
        ),
        pytest.param(
            {"jsonData": nested(300)},
            ["jsonData nests too deeply: a JSON answer carrying it could not be written"],
            id="jsonData-300-deep",  # found by tests/fuzz: the echo's answer was a 500
        ),
        pytest.param(
            {"strData": "x", "meta": {"tags": {"t": nested(300)}}},
            ["meta.tags nests too deeply"],
            id="tag-300-deep",
        ),
        pytest.param(
            {"data": {"ndarray": [nested(300)]}},
            ["data.ndarray nests too deeply for an array"],
            id="ndarray-300-deep",
        ),
        pytest.param(
            {"data": {"ndarray": [[1.0, {"a": nested(300)}]]}},
            ["data.ndarray nests too deeply: a JSON answer carrying it could not be written"],
            id="ndarray-of-objects-300-deep",  # found by tests/fuzz: the echo's answer was a 500
        ),
        pytest.param({"binData": "%%%"}, ["binData must be base64"], id="bad-base64"),
        pytest.param({"strData": ["a"]}, ["strData must be a string"], id="strData-not-string"),
        pytest.param(
            {"strData": "x", "meta": "m"}, ["meta must be an object"], id="meta-not-object"
        ),
        pytest.param(
            {"strData": "x", "meta": {"routing": {"r": "one"}}},
            ["meta.routing"],
            id="routing-not-int",
        ),
        pytest.param(
            {"strData": "x", "status": {"code": "abc"}},
            ["status needs an integer code"],
            id="status-code-not-int",
        ),
    ],
)
async def test_wrong_data_kinds(asgi_client, seldon_error, body, words):
    response = await asgi_client(Echo()).post("/predict", json=body)
    seldon_error(response, 400, BAD_DATA, *words)


MESSAGE_FIELDS = "known fields: meta, data, binData, strData, jsonData, status"
DATA_FIELDS = "known fields: names, ndarray, tensor, tftensor"
FEEDBACK_FIELDS = "known fields: request, response, reward, truth"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            {"data": {"ndarry": [[1, 2]]}},
            ["unknown field 'ndarry' in data (did you mean 'ndarray'?)", DATA_FIELDS],
            id="misspelt-ndarray",
        ),
        pytest.param(
            {"data": {"Tensor": {"values": [1]}}},
            ["unknown field 'Tensor' in data (did you mean 'tensor'?)"],
            id="capitalised-tensor",
        ),
        pytest.param(
            {"data": {"nmes": ["a"], "ndarray": [[1]]}},
            ["unknown field 'nmes' in data (did you mean 'names'?)"],
            id="misspelt-names-beside-a-kind",
        ),
        pytest.param(
            {"data": {}}, ["data has no data kind", "ndarray, tensor or tftensor"], id="empty-data"
        ),
        pytest.param(
            {"data": {"names": ["a", "b"]}}, ["data has no data kind"], id="names-without-a-kind"
        ),
        pytest.param(
            {"ndarray": [[1, 2]]},
            ["unknown field 'ndarray' in the request", MESSAGE_FIELDS],
            id="ndarray-outside-data",
        ),
        pytest.param(
            {"data": {"ndarray": [[1]]}, "extra": 1},
            ["unknown field 'extra' in the request;", MESSAGE_FIELDS],
            id="extra-top-level-field",
        ),
        pytest.param(
            {"jsonDat": {"a": 1}},
            ["unknown field 'jsonDat' in the request (did you mean 'jsonData'?)"],
            id="misspelt-jsonData",
        ),
        pytest.param(
            {"strData": "x", "a": 1, "b": 2},
            ["unknown fields 'a', 'b' in the request"],
            id="several-unknown-fields",
        ),
        pytest.param(
            {"customData": {"@type": "x"}},
            ["unknown field 'customData' in the request"],
            id="customData-is-grpc-only",
        ),
    ],
)
async def test_unknown_fields(asgi_client, seldon_error, body, words):
    calls: list[Any] = []

    class Counting:
        def predict(self, X, names):
            calls.append(X)
            return X

    client = asgi_client(Counting())
    for path in ("/predict", "/api/v1.0/predictions"):
        seldon_error(await client.post(path, json=body), 400, BAD_DATA, *words)
    assert calls == []  # a misspelt field never reaches the model as an empty array


@pytest.mark.parametrize("path", ["/transform-input", "/transform-output", "/route"])
async def test_unknown_fields_on_other_endpoints(asgi_client, seldon_error, path):
    class Everything(Echo):
        def transform_input(self, X, names):
            return X

        def transform_output(self, X, names):
            return X

        def route(self, X, names):
            return 0

    response = await asgi_client(Everything()).post(path, json={"data": {"ndarry": [[1]]}})
    seldon_error(response, 400, BAD_DATA, "unknown field 'ndarry' in data")


async def test_unknown_multipart_part(asgi_client, seldon_error):
    response = await asgi_client(Echo()).post("/predict", files={"image": ("x.png", b"\x89PNG")})
    seldon_error(response, 400, BAD_DATA, "unknown field 'image' in the request", MESSAGE_FIELDS)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            {"request": {"data": {"ndarray": [[1]]}}, "rewad": 1},
            ["unknown field 'rewad' in the feedback (did you mean 'reward'?)", FEEDBACK_FIELDS],
            id="misspelt-reward",
        ),
        pytest.param(
            {"request": {"data": {"ndarry": [[1]]}}, "reward": 1},
            ["unknown field 'ndarry' in feedback.request.data", DATA_FIELDS],
            id="request-data",
        ),
        pytest.param(
            {"truth": {"data": {"ndarray": [[1]]}, "label": 1}, "reward": 1},
            ["unknown field 'label' in feedback.truth", MESSAGE_FIELDS],
            id="truth-field",
        ),
        pytest.param(
            {"response": {"meta": {}, "dat": {}}, "reward": 1},
            ["unknown field 'dat' in feedback.response (did you mean 'data'?)"],
            id="response-field",
        ),
    ],
)
async def test_unknown_feedback_fields(asgi_client, seldon_error, body, words):
    rewards: list[float] = []

    class Learner:
        def send_feedback(self, X, names, reward, truth, routing=None):
            rewards.append(reward)

    class RawLearner:  # Seldon parses feedback with protobuf before send_feedback_raw
        def send_feedback_raw(self, feedback):
            rewards.append(feedback.reward)

    for user in (Learner(), RawLearner()):
        response = await asgi_client(user).post("/api/v1.0/feedback", json=body)
        seldon_error(response, 400, BAD_DATA, *words)
    assert rewards == []


class RawEverything:
    """Takes every request through ``*_raw``: Seldon hands those the body as it came."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def predict_raw(self, msg):
        self.seen.append(msg)
        return {"jsonData": msg}

    def transform_input_raw(self, msg):
        self.seen.append(msg)
        return {"jsonData": msg}

    def route_raw(self, msg):
        self.seen.append(msg)
        return {"data": {"ndarray": [[0]]}}


@pytest.mark.parametrize(
    "path", ["/predict", "/api/v1.0/predictions", "/transform-input", "/route"]
)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"data": {"ndarry": [[1, 2]]}}, id="misspelt-ndarray"),
        pytest.param({"data": {}}, id="empty-data"),
        pytest.param({"strData": "x", "extra": {"my": "field"}}, id="extra-top-level-field"),
    ],
)
async def test_raw_methods_get_unknown_fields_as_they_came(asgi_client, path, body):
    model = RawEverything()
    response = await asgi_client(model).post(path, json=body)
    assert response.status_code == 200, response.text
    assert model.seen == [body]


async def test_raw_method_for_one_endpoint_leaves_the_others_strict(asgi_client, seldon_error):
    class RawPredictOnly:
        def predict_raw(self, msg):
            return {"jsonData": msg}

    client = asgi_client(RawPredictOnly())
    body = {"data": {"ndarry": [[1, 2]]}}
    assert (await client.post("/predict", json=body)).json() == {"jsonData": body}
    seldon_error(
        await client.post("/transform-input", json=body), 400, BAD_DATA, "unknown field 'ndarry'"
    )


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        pytest.param(
            "/aggregate",
            {"strData": "one"},
            ["aggregate expects a JSON list"],
            id="aggregate-not-list",
        ),
        pytest.param(
            "/aggregate",
            [{"data": 1}],
            ["seldonMessages[0].data must be an object"],
            id="aggregate-bad-item",
        ),
        pytest.param("/send-feedback", [1], ["Invalid feedback"], id="feedback-not-object"),
        pytest.param(
            "/send-feedback",
            {"reward": "good"},
            ["feedback.reward must be a number"],
            id="feedback-reward",
        ),
        pytest.param(
            "/send-feedback",
            {"truth": {"data": {"ndarray": [[1], []]}}},
            ["feedback.truth.data.ndarray is ragged"],
            id="feedback-truth",
        ),
        pytest.param(
            "/transform-input",
            {"data": {"ndarray": 1}},
            ["data.ndarray must be a list"],
            id="transform-input",
        ),
        pytest.param(
            "/route", {"data": {"tensor": {"shape": [5], "values": [1]}}}, ["shape [5]"], id="route"
        ),
    ],
)
async def test_malformed_bodies_on_other_endpoints(asgi_client, seldon_error, path, body, words):
    class Everything(Echo):
        def route(self, X, names):
            return 0

        def aggregate(self, Xs, names):
            return Xs[0]

        def send_feedback(self, X, names, reward, truth, routing=None):
            return None

    response = await asgi_client(Everything()).post(path, json=body)
    seldon_error(response, 400, BAD_DATA, *words)


async def test_malformed_query_json(asgi_client, seldon_error):
    response = await asgi_client(Echo()).get("/predict", params={"json": "{nope"})
    seldon_error(response, 400, BAD_DATA, "Invalid JSON")


async def test_bad_content_length(asgi_client, seldon_error):
    app = asgi_client(Echo()).app
    status, body = await call_asgi(app, [b"{}"], headers=[(b"content-length", b"many")])
    assert status == 400
    assert orjson.loads(body)["status"]["info"] == "Content-Length is not a number"


async def test_decode_errors_never_reach_the_model(asgi_client):
    calls: list[Any] = []

    class Counting:
        def predict(self, X, names):
            calls.append(X)
            return X

    await asgi_client(Counting()).post("/predict", json={"data": {"ndarray": [[1], [1, 2]]}})
    assert calls == []


# ---------------------------------------------------------------- size limit


async def call_asgi(
    app: RestApp, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
    """Drive the ASGI app directly, delivering the body in exactly these receive() messages."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *(headers or [])],
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


LIMIT = 1000
BIG = orjson.dumps({"strData": "x" * 2000})


async def test_body_over_the_limit_with_content_length(asgi_client, seldon_error):
    client = asgi_client(Echo(), max_message_size=LIMIT)
    response = await client.post("/predict", content=BIG)
    seldon_error(response, 413, BAD_DATA, f"exceeds the limit of {LIMIT} bytes")


async def test_body_over_the_limit_when_chunked(asgi_client, seldon_error):
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(BIG), 300):
            yield BIG[start : start + 300]

    client = asgi_client(Echo(), max_message_size=LIMIT)
    response = await client.post("/predict", content=chunks())
    seldon_error(response, 413, BAD_DATA, f"exceeds the limit of {LIMIT} bytes")


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([BIG], id="one-message"),
        pytest.param([BIG, b""], id="first-message-then-end"),
        pytest.param([BIG[:10], BIG[10:]], id="two-messages"),
    ],
)
async def test_body_over_the_limit_without_content_length(asgi_client, chunks):
    """A server may hand over a whole chunked body in one receive(): still refused."""
    app = asgi_client(Echo(), max_message_size=LIMIT).app
    status, body = await call_asgi(app, chunks)
    assert status == 413
    assert "exceeds the limit" in orjson.loads(body)["status"]["info"]


async def test_body_at_the_limit_is_served(asgi_client):
    body = orjson.dumps({"strData": "x" * (LIMIT - 14)})
    assert len(body) == LIMIT
    client = asgi_client(Echo(), max_message_size=LIMIT)
    assert (await client.post("/predict", content=body)).status_code == 200
    status, _ = await call_asgi(client.app, [body])
    assert status == 200


# ---------------------------------------------------------------- routing errors


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/nowhere", id="unknown"),
        pytest.param("POST", "/api/v2.0/predictions", id="unknown-version"),
    ],
)
async def test_unknown_path(asgi_client, seldon_error, method, path):
    response = await asgi_client(Echo()).request(method, path)
    seldon_error(response, 404, BAD_DATA, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/api/v1.0/predictions", id="get-predictions"),
        pytest.param("GET", "/api/v0.1/feedback", id="get-feedback"),
        pytest.param("PUT", "/predict", id="put-predict"),
        pytest.param("DELETE", "/route", id="delete-route"),
        pytest.param("POST", "/health/ping", id="post-ping"),
        pytest.param("POST", "/metadata", id="post-metadata"),
        pytest.param("POST", "/metrics", id="post-metrics"),
    ],
)
async def test_wrong_http_method(asgi_client, seldon_error, method, path):
    response = await asgi_client(Echo()).request(method, path)
    seldon_error(response, 405, BAD_DATA, f"Method {method} is not allowed on {path}")


# ---------------------------------------------------------------- errors raised by user code


class Failing:
    """Raises the given exception from predict, counting the calls."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    def predict(self, X, names, meta=None):
        self.calls += 1
        raise self.exc


class FailingNoMeta(Failing):
    def predict(self, X, names):
        self.calls += 1
        raise self.exc


class SeldonStyleError(Exception):
    """Shaped like seldon_core.flask_utils.SeldonMicroserviceException."""

    def __init__(self, message, status_code=None, payload=None, reason="MICROSERVICE_BAD_DATA"):
        super().__init__(message)
        self.message = message
        self.status_code = status_code or 400
        self.payload = payload
        self.reason = reason


@pytest.mark.parametrize("user_cls", [Failing, FailingNoMeta])
@pytest.mark.parametrize(
    ("exc", "status", "reason", "info"),
    [
        pytest.param(
            ValueError("model exploded"), 500, INTERNAL, "model exploded", id="value-error"
        ),
        pytest.param(
            TypeError("bad operand"), 500, INTERNAL, "bad operand", id="type-error-not-retried"
        ),
        pytest.param(KeyError("feature"), 500, INTERNAL, "feature", id="key-error"),
        pytest.param(
            NotImplementedError(),
            500,
            INTERNAL,
            "NotImplementedError",
            id="builtin-not-implemented",
        ),
        pytest.param(
            MicroserviceError("teapot", status_code=418, reason="MY_REASON"),
            418,
            "MY_REASON",
            "teapot",
            id="microservice-error",
        ),
        pytest.param(
            SeldonMicroserviceException("plain"),
            400,
            BAD_DATA,
            "plain",
            id="seldon-exception-defaults",
        ),
        pytest.param(
            SeldonStyleError("from seldon_core", 409, reason="CONFLICT"),
            409,
            "CONFLICT",
            "from seldon_core",
            id="foreign-seldon-exception",
        ),
    ],
)
async def test_user_exceptions(asgi_client, seldon_error, user_cls, exc, status, reason, info):
    model = user_cls(exc)
    response = await asgi_client(model).post("/predict", json=NDARRAY)
    seldon_error(response, status, reason, info)
    assert model.calls == 1


async def test_user_exception_in_async_method(asgi_client, seldon_error):
    class AsyncFailing:
        calls = 0

        async def predict(self, X, names):
            AsyncFailing.calls += 1
            raise RuntimeError("async boom")

    response = await asgi_client(AsyncFailing()).post("/predict", json=NDARRAY)
    seldon_error(response, 500, INTERNAL, "async boom")
    assert AsyncFailing.calls == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/transform-input", NDARRAY, id="transform-input"),
        pytest.param("POST", "/transform-output", NDARRAY, id="transform-output"),
        pytest.param("POST", "/route", NDARRAY, id="route"),
        pytest.param("POST", "/aggregate", [NDARRAY], id="aggregate"),
        pytest.param("POST", "/send-feedback", {"reward": 1}, id="feedback"),
        pytest.param("GET", "/health/status", None, id="health"),
    ],
)
async def test_user_exceptions_on_every_endpoint(asgi_client, seldon_error, method, path, body):
    calls: list[str] = []

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        raise MicroserviceError("refused", status_code=422, reason="NOPE")

    user = type(
        "Refuses",
        (),
        {
            name: lambda self, *a, **k: fail()
            for name in ("transform_input", "transform_output", "route", "aggregate")
        }
        | {
            "send_feedback": lambda self, X, names, reward, truth, routing=None: fail(),
            "health_status": lambda self: fail(),
        },
    )()
    response = await asgi_client(user).request(method, path, json=body)
    seldon_error(response, 422, "NOPE", "refused")
    assert calls == [path]


async def test_microservice_error_payload_is_merged(asgi_client):
    exc = MicroserviceError("bad input", status_code=400, payload={"detail": {"field": "x"}})
    response = await asgi_client(Failing(exc)).post("/predict", json=NDARRAY)
    assert response.json() == {
        "detail": {"field": "x"},
        "status": {"status": 1, "info": "bad input", "code": -1, "reason": BAD_DATA},
    }


@pytest.mark.parametrize(
    ("result", "words"),
    [
        pytest.param(5, ["Unknown data type returned as payload", "int"], id="int"),
        pytest.param(None, ["Unknown data type returned as payload", "NoneType"], id="none"),
        pytest.param((1, 2), ["Unknown data type returned as payload", "tuple"], id="tuple"),
        pytest.param(object(), ["Unknown data type returned as payload", "object"], id="object"),
    ],
)
async def test_unknown_return_type(asgi_client, seldon_error, result, words):
    class Returns:
        def predict(self, X, names):
            return result

    response = await asgi_client(Returns()).post("/predict", json=NDARRAY)
    seldon_error(response, 400, BAD_DATA, *words)


# ---------------------------------------------------------------- bad metrics and metadata


BAD_METRICS = [
    pytest.param({"key": "k"}, ["must return a list"], id="not-a-list"),
    pytest.param([{"key": "k", "value": 1}], ["needs key, type and value"], id="missing-type"),
    pytest.param(
        [{"type": "COUNTER", "value": 1}], ["needs key, type and value"], id="missing-key"
    ),
    pytest.param(["counter"], ["needs key, type and value"], id="not-a-dict"),
    pytest.param(
        [{"key": "k", "type": "HISTOGRAM", "value": 1}],
        ["'HISTOGRAM'", "COUNTER, GAUGE, TIMER"],
        id="bad-type",
    ),
    pytest.param(
        [{"key": "k", "type": "GAUGE", "value": "1"}], ["'k'", "is not a number"], id="string-value"
    ),
    pytest.param(
        [{"key": "k", "type": "GAUGE", "value": True}], ["is not a number"], id="bool-value"
    ),
    pytest.param(
        [{"key": "k", "type": "GAUGE", "value": 1, "tags": ["a"]}], ["'k'", "tags"], id="bad-tags"
    ),
]


@pytest.mark.parametrize(
    ("metrics", "words", "source"),
    [
        pytest.param(*case.values, source, id=f"{source}-{case.id}")
        for source in ("static", "runtime", "raw")
        for case in BAD_METRICS
        # a raw reply whose meta.metrics is not a list is no SeldonMessage: kept verbatim
        if not (source == "raw" and case.id == "not-a-list")
    ],
)
async def test_bad_custom_metrics(asgi_client, seldon_error, metrics, words, source):
    from infergraph.sdk import SeldonResponse

    class Static(Echo):
        def metrics(self):
            return metrics

    class Runtime:
        def predict(self, X, names):
            return SeldonResponse(X, metrics=metrics)

    class Raw:
        def predict_raw(self, msg):
            return {"strData": "x", "meta": {"metrics": metrics}}

    user = {"static": Static, "runtime": Runtime, "raw": Raw}[source]()
    response = await asgi_client(user).post("/predict", json=NDARRAY)
    seldon_error(
        response, 500, "MICROSERVICE_BAD_METRIC", "Bad metric created during request", *words
    )


@pytest.mark.parametrize(
    ("init", "model_metadata", "words"),
    [
        pytest.param({"colour": "red"}, "", ["unknown fields ['colour']"], id="unknown-field"),
        pytest.param(
            {"versions": "1"}, "", ["versions must be a list of strings"], id="versions-not-list"
        ),
        pytest.param(
            {"inputs": [{"name": "x", "datatype": "FLOAT", "shape": [1]}]},
            "",
            ["inputs[0].datatype 'FLOAT'"],
            id="bad-v2-datatype",
        ),
        pytest.param(
            {"outputs": [{"name": "x", "datatype": "FP32", "shape": ["a"]}]},
            "",
            ["outputs[0].shape"],
            id="bad-v2-shape",
        ),
        pytest.param(
            {"inputs": [{"schema": {}}]},
            "",
            ["inputs[0] needs either messagetype"],
            id="neither-shape",
        ),
        pytest.param(
            {"custom": {"a": 1}},
            "",
            ["custom must map strings to strings"],
            id="custom-not-strings",
        ),
        pytest.param(
            ["not", "a", "dict"], "", ["init_metadata() must return a dict"], id="init-not-dict"
        ),
        pytest.param(None, "name: [unclosed", ["MODEL_METADATA is not valid YAML"], id="bad-yaml"),
        pytest.param(None, "- a\n- b\n", ["MODEL_METADATA must be a mapping"], id="yaml-list"),
    ],
)
async def test_bad_metadata_fails_only_metadata(
    asgi_client, seldon_error, init, model_metadata, words
):
    class WithMetadata(Echo):
        def init_metadata(self):
            return init

    client = asgi_client(WithMetadata(), model_metadata=model_metadata)
    for path in ("/metadata", "/api/v1.0/metadata"):
        response = await client.get(path)
        seldon_error(response, 500, "MICROSERVICE_BAD_METADATA", *words)
    assert (await client.post("/predict", json=NDARRAY)).status_code == 200
    assert (await client.get("/health/status")).status_code == 200


# ---------------------------------------------------------------- router and combiner errors


@pytest.mark.parametrize(
    "result",
    [
        pytest.param("1", id="string"),
        pytest.param(1.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param([1], id="list"),
        pytest.param(None, id="none"),
    ],
)
async def test_router_must_return_an_int(asgi_client, seldon_error, result):
    class BadRouter:
        def route(self, features, names):
            return result

    response = await asgi_client(BadRouter()).post("/route", json=NDARRAY)
    seldon_error(response, 400, BAD_DATA, "Routing response must be int but got", repr(result))


@pytest.mark.parametrize(
    ("path", "body", "info"),
    [
        pytest.param("/route", NDARRAY, "Route not defined", id="route"),
        pytest.param("/aggregate", [NDARRAY], "Aggregate not defined", id="aggregate"),
    ],
)
async def test_route_and_aggregate_must_be_defined(asgi_client, seldon_error, path, body, info):
    response = await asgi_client(Echo()).post(path, json=body)
    seldon_error(response, 400, BAD_DATA, info)


# ---------------------------------------------------------------- load failures at request time


async def test_failing_load_is_reported_as_seldon_json(seldon_error):
    import httpx

    class CannotLoad(Echo):
        def load(self):
            raise OSError("model file missing")

    app = RestApp(ComponentDataPlane(CannotLoad(), ComponentSettings()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/predict", json=NDARRAY)
    app.dataplane.close()
    seldon_error(response, 500, INTERNAL, "model file missing")


async def test_rest_timeout_annotation_gives_504(asgi_client) -> None:
    """seldon.io/rest-timeout (ms) bounds each REST call; the client gets a clear 504."""
    import asyncio as _asyncio

    class Slow:
        async def predict(self, X, names):
            await _asyncio.sleep(5)
            return X

    async with asgi_client(Slow(), rest_timeout_ms=50) as client:
        response = await client.post("/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}})
    assert response.status_code == 504
    assert "seldon.io/rest-timeout=50 ms" in response.json()["status"]["info"]
