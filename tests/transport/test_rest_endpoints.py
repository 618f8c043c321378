"""The REST surface of one component: every endpoint, request form, data kind and meta rule."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from infergraph.sdk import SeldonResponse

NDARRAY = {"data": {"ndarray": [[1, 2]]}}


class Echo:
    """A MODEL returning its input; every other endpoint echoes too."""

    def predict(self, X, names):
        return X

    def transform_input(self, X, names):
        return X

    def transform_output(self, X, names):
        return X

    def route(self, X, names):
        return 0

    def aggregate(self, Xs, names_list):
        return Xs[0]

    def send_feedback(self, X, names, reward, truth, routing=None):
        return None


class Returns:
    """A MODEL that returns a fixed value, whatever the request."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def predict(self, X, names):
        return self.value


# ---------------------------------------------------------------- endpoints and request forms


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/predict", id="predict"),
        pytest.param("POST", "/api/v1.0/predictions", id="v1.0-predictions"),
        pytest.param("POST", "/api/v0.1/predictions", id="v0.1-predictions"),
        pytest.param("POST", "/predict/", id="trailing-slash"),
        pytest.param("POST", "/transform-input", id="transform-input"),
        pytest.param("POST", "/transform-output", id="transform-output"),
    ],
)
async def test_message_endpoints_post_json(asgi_client, method, path):
    client = asgi_client(Echo())
    response = await client.request(method, path, json={"data": {"ndarray": [[1, 2]]}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"] == {"names": ["t:0", "t:1"], "ndarray": [[1, 2]]}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/predict", id="predict"),
        pytest.param("/transform-input", id="transform-input"),
        pytest.param("/transform-output", id="transform-output"),
        pytest.param("/route", id="route"),
    ],
)
async def test_get_with_json_query_parameter(asgi_client, path):
    client = asgi_client(Echo())
    response = await client.get(path, params={"json": '{"data":{"ndarray":[[7]]}}'})
    assert response.status_code == 200
    assert response.json()["data"]["ndarray"] == [[0 if path == "/route" else 7]]


async def test_post_json_form_field(asgi_client):
    client = asgi_client(Echo())
    response = await client.post("/predict", data={"json": '{"strData": "from a form"}'})
    assert response.status_code == 200
    assert response.json()["strData"] == "from a form"


async def test_query_parameter_wins_over_empty_body(asgi_client):
    client = asgi_client(Echo())
    response = await client.post("/predict", params={"json": '{"strData": "q"}'})
    assert response.json()["strData"] == "q"


class Seen:
    """Records what predict received."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def predict(self, X, names):
        self.calls.append(X)
        return X


@pytest.mark.parametrize(
    ("files", "data", "expected", "response_field"),
    [
        pytest.param(
            {"binData": ("img.bin", b"\x00\xffbytes")},
            None,
            b"\x00\xffbytes",
            "binData",
            id="binData-file",
        ),
        pytest.param(
            {"strData": ("text.txt", "héllo".encode())}, None, "héllo", "strData", id="strData-file"
        ),
        pytest.param(
            None, {"strData": "plain field"}, "plain field", "strData", id="strData-field"
        ),
    ],
)
async def test_multipart_form_data(asgi_client, files, data, expected, response_field):
    model = Seen()
    client = asgi_client(model)
    if files is None:  # force multipart for a form with no file in it: a meta part
        files = {"meta": (None, b"{}")}
    response = await client.post("/predict", files=files, data=data)
    assert response.status_code == 200, response.text
    assert model.calls == [expected]
    sent = response.json()[response_field]
    assert sent == (
        base64.b64encode(expected).decode() if isinstance(expected, bytes) else expected
    )


async def test_multipart_json_field(asgi_client):
    model = Seen()
    client = asgi_client(model)
    response = await client.post(
        "/predict",
        data={"json": '{"data": {"ndarray": [[1, 2]]}}'},
        files={"unused": ("u.txt", b"x")},
    )
    assert response.status_code == 200
    assert model.calls[0].tolist() == [[1, 2]]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/send-feedback", id="send-feedback"),
        pytest.param("/api/v1.0/feedback", id="v1.0-feedback"),
        pytest.param("/api/v0.1/feedback", id="v0.1-feedback"),
    ],
)
async def test_feedback_endpoints(asgi_client, path):
    client = asgi_client(Echo())
    body = {"request": NDARRAY, "response": {"data": {"ndarray": [[0.9]]}}, "reward": 1.0}
    response = await client.post(path, json=body)
    assert response.status_code == 200
    # Seldon answers feedback in protobuf's JSON form: the empty names are left out
    assert response.json() == {"meta": {}, "data": {"ndarray": []}}


async def test_feedback_answer_is_the_proto_json_of_a_seldon_message(asgi_client):
    """Seldon's feedback goes through protobuf: ints come back as floats, tags too."""

    class Scores:
        def tags(self):
            return {"count": 2}

        def send_feedback(self, X, names, reward, truth, routing=None):
            return [[1, 2]]

    body = {"request": {"data": {"ndarray": [[5, 6]]}}, "reward": 1}
    response = await asgi_client(Scores()).post("/send-feedback", json=body)
    assert response.status_code == 200
    assert b'"ndarray":[[1.0,2.0]]' in response.content
    assert b'"count":2.0' in response.content
    assert response.json()["data"]["names"] == ["t:0", "t:1"]


async def test_send_feedback_accepts_get(asgi_client):
    client = asgi_client(Echo())
    response = await client.get("/send-feedback", params={"json": '{"reward": 0}'})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([NDARRAY, {"data": {"ndarray": [[3, 4]]}}], id="json-list"),
        pytest.param(
            {"seldonMessages": [NDARRAY, {"data": {"ndarray": [[3, 4]]}}]}, id="seldonMessages"
        ),
    ],
)
async def test_aggregate_endpoint(asgi_client, body):
    client = asgi_client(Echo())
    response = await client.post("/aggregate", json=body)
    assert response.status_code == 200
    assert response.json()["data"]["ndarray"] == [[1, 2]]


async def test_route_endpoint(asgi_client):
    client = asgi_client(Echo())
    response = await client.post("/route", json=NDARRAY)
    assert response.json() == {"meta": {}, "data": {"names": ["t:0"], "ndarray": [[0]]}}


async def test_health_ping_is_plain_text(asgi_client):
    client = asgi_client(Echo())
    response = await client.get("/health/ping")
    assert response.status_code == 200
    assert response.text == "pong"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/health/status", "/api/v1.0/health/status"])
async def test_health_status_default(asgi_client, path):
    client = asgi_client(Echo())
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"meta": {}, "strData": "healthy"}


@pytest.mark.parametrize("path", ["/metadata", "/api/v1.0/metadata"])
async def test_metadata_default_from_image(asgi_client, path):
    client = asgi_client(Echo(), unit_image="repo/model:1.2")
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {
        "name": "repo/model",
        "versions": ["1.2"],
        "platform": "",
        "inputs": [],
        "outputs": [],
        "custom": {},
    }


async def test_openapi_document(asgi_client):
    client = asgi_client(Echo(), unit_id="classifier")
    response = await client.get("/seldon.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "classifier"
    assert {"/api/v1.0/predictions", "/api/v1.0/feedback"} <= set(doc["paths"])


async def test_live_and_ready(asgi_client):
    client = asgi_client(Echo())
    live, ready = await client.get("/live"), await client.get("/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


async def test_load_runs_once_before_the_first_request():
    """Readiness follows load(): 503 until it ran, then 200; load runs once."""
    import httpx

    from infergraph.components.dataplane import ComponentDataPlane
    from infergraph.transport.rest.component import RestApp

    class Loads(Echo):
        loads = 0

        def load(self):
            Loads.loads += 1

    app = RestApp(ComponentDataPlane(Loads()))
    assert not app.dataplane.ready
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for _ in range(3):
            assert (await c.post("/predict", json=NDARRAY)).status_code == 200
        assert (await c.get("/ready")).status_code == 200
    app.dataplane.close()
    assert Loads.loads == 1


async def test_metrics_endpoint_is_prometheus_text(asgi_client):
    client = asgi_client(Echo())
    await client.post("/predict", json=NDARRAY)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE seldon_api_executor_server_requests_seconds histogram" in response.text


async def test_options_preflight(asgi_client):
    client = asgi_client(Echo())
    response = await client.options(
        "/api/v1.0/predictions",
        headers={"Origin": "http://ui", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/predict", NDARRAY, id="predict"),
        pytest.param("GET", "/health/ping", None, id="ping"),
        pytest.param("GET", "/metadata", None, id="metadata"),
        pytest.param("POST", "/predict", {"data": 1}, id="error"),
        pytest.param("GET", "/nowhere", None, id="not-found"),
    ],
)
async def test_cors_header_on_every_response(asgi_client, method, path, body):
    client = asgi_client(Echo())
    response = await client.request(method, path, json=body)
    assert response.headers["access-control-allow-origin"] == "*"


# ---------------------------------------------------------------- data kinds over REST


def tf_float32(values: list[float], shape: list[int]) -> dict[str, Any]:
    content = np.asarray(values, dtype="<f4").tobytes()
    return {
        "dtype": "DT_FLOAT",
        "tensorShape": {"dim": [{"size": str(n)} for n in shape]},
        "tensorContent": base64.b64encode(content).decode(),
    }


@pytest.mark.parametrize(
    ("data", "expected_data"),
    [
        pytest.param(
            {"ndarray": [[1, 2], [3, 4]]},
            {"names": ["t:0", "t:1"], "ndarray": [[1, 2], [3, 4]]},
            id="ndarray-ints",
        ),
        pytest.param(
            {"ndarray": [[0.5, -1.25]]},
            {"names": ["t:0", "t:1"], "ndarray": [[0.5, -1.25]]},
            id="ndarray-floats",
        ),
        pytest.param(
            {"ndarray": [["a", "b"]]},
            {"names": ["t:0", "t:1"], "ndarray": [["a", "b"]]},
            id="ndarray-strings",
        ),
        pytest.param(
            {"ndarray": [[1, "a"]]},
            {"names": ["t:0", "t:1"], "ndarray": [["1", "a"]]},
            id="ndarray-mixed",
        ),
        pytest.param({"ndarray": [1, 2, 3]}, {"names": [], "ndarray": [1, 2, 3]}, id="ndarray-1d"),
        pytest.param(
            {"names": ["a", "b"], "ndarray": [[1, 2]]},
            {"names": ["t:0", "t:1"], "ndarray": [[1, 2]]},
            id="request-names-not-echoed",
        ),
        pytest.param(
            {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}},
            {"names": ["t:0", "t:1"], "tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}},
            id="tensor",
        ),
        pytest.param(
            {"tensor": {"shape": [3], "values": [0.5, 1.5, 2.5]}},
            {"names": [], "tensor": {"shape": [3], "values": [0.5, 1.5, 2.5]}},
            id="tensor-1d",
        ),
        pytest.param(
            {"tftensor": tf_float32([1, 2, 3, 4], [2, 2])},
            {"names": ["t:0", "t:1"], "tftensor": tf_float32([1, 2, 3, 4], [2, 2])},
            id="tftensor-content",
        ),
        pytest.param(
            {
                "tftensor": {
                    "dtype": "DT_FLOAT",
                    "tensorShape": {"dim": [{"size": "2"}]},
                    "floatVal": [1.5, 2.5],
                }
            },
            {"names": [], "tftensor": tf_float32([1.5, 2.5], [2])},
            id="tftensor-floatVal",
        ),
        pytest.param(
            {
                "tftensor": {
                    "dtype": "DT_INT64",
                    "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
                    "int64Val": ["7", "-8"],
                }
            },
            {
                "names": ["t:0", "t:1"],
                "tftensor": {
                    "dtype": "DT_INT64",
                    "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
                    "tensorContent": base64.b64encode(
                        np.array([7, -8], dtype="<i8").tobytes()
                    ).decode(),
                },
            },
            id="tftensor-int64Val",
        ),
    ],
)
async def test_data_round_trip(asgi_client, data, expected_data):
    client = asgi_client(Echo())
    response = await client.post("/predict", json={"data": data})
    assert response.status_code == 200, response.text
    assert response.json() == {"meta": {}, "data": expected_data}


async def test_ints_stay_ints_on_the_wire(asgi_client):
    client = asgi_client(Echo())
    response = await client.post("/predict", content=b'{"data":{"ndarray":[[1,2]]}}')
    assert response.content.endswith(b'"ndarray":[[1,2]]}}')


async def test_empty_tensor_of_many_columns_is_answered_small(asgi_client):
    # found by tests/fuzz: each column of the answer was named (t:0, t:1, ...), so this
    # 60-byte request had a 119 MB answer, and shape [0, 2**31 - 1] took 6 GB
    body = {"data": {"tensor": {"shape": [0, 10**7], "values": []}}}
    response = await asgi_client(Echo()).post("/predict", json=body)
    assert response.status_code == 200
    assert len(response.content) < 200
    assert response.json()["data"] == {"names": [], **body["data"]}


async def test_tftensor_strings_reach_the_model_as_bytes(asgi_client):
    class Decode:
        def predict(self, X, names):
            return [x.decode() for x in X]

    client = asgi_client(Decode())
    body = {
        "data": {
            "tftensor": {
                "dtype": "DT_STRING",
                "tensorShape": {"dim": [{"size": "2"}]},
                "stringVal": [base64.b64encode(b"ab").decode(), base64.b64encode(b"c").decode()],
            }
        }
    }
    response = await client.post("/predict", json=body)
    assert response.json()["data"] == {"names": [], "ndarray": ["ab", "c"]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"strData": "some text"}, id="strData"),
        pytest.param({"binData": base64.b64encode(b"\x00\x01\x02").decode()}, id="binData"),
        pytest.param({"jsonData": {"a": [1, 2.5, None, "x"]}}, id="jsonData"),
    ],
)
async def test_payload_round_trip(asgi_client, body):
    client = asgi_client(Echo())
    response = await client.post("/predict", json=body)
    assert response.json() == {"meta": {}, **body}


@pytest.mark.parametrize(
    ("request_body", "result", "expected_data"),
    [
        pytest.param(
            {"data": {"ndarray": [[1]]}},
            np.array([[0.5]]),
            {"names": ["t:0"], "ndarray": [[0.5]]},
            id="ndarray-in-numeric-out",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [1], "values": [1]}}},
            [[0.5, 1]],
            {"names": ["t:0", "t:1"], "tensor": {"shape": [1, 2], "values": [0.5, 1.0]}},
            id="tensor-in-numeric-out",
        ),
        pytest.param(
            {"data": {"tensor": {"shape": [1], "values": [1]}}},
            [["a"]],
            {"names": ["t:0"], "ndarray": [["a"]]},
            id="tensor-in-strings-out",
        ),
        pytest.param(
            {"data": {"tftensor": tf_float32([1], [1])}},
            np.array([2.0], dtype=np.float32),
            {"names": [], "tftensor": tf_float32([2], [1])},
            id="tftensor-in-numeric-out",
        ),
        pytest.param(
            {"data": {"tftensor": tf_float32([1], [1])}},
            [["x", "y"]],
            {"names": ["t:0", "t:1"], "ndarray": [["x", "y"]]},
            id="tftensor-in-strings-out",
        ),
        pytest.param(
            {"strData": "x"},
            [[1, 2]],
            {"names": ["t:0", "t:1"], "tensor": {"shape": [1, 2], "values": [1, 2]}},
            id="strData-in-numeric-out",
        ),
        pytest.param(
            {"jsonData": {"a": 1}},
            np.array([1.5]),
            {"names": [], "tensor": {"shape": [1], "values": [1.5]}},
            id="jsonData-in-numeric-out",
        ),
        pytest.param(
            {"binData": "AA=="},
            [["a", "b"]],
            {"names": ["t:0", "t:1"], "ndarray": [["a", "b"]]},
            id="binData-in-strings-out",
        ),
        pytest.param(
            {"data": {"ndarray": [[1]]}},
            [True, False],
            {"names": [], "ndarray": [True, False]},
            id="bools-are-not-numeric",
        ),
        pytest.param(
            {"data": {"ndarray": [[1]]}},
            np.zeros((1, 2, 2), dtype=int),
            {"names": ["t:0", "t:1"], "ndarray": [[[0, 0], [0, 0]]]},
            id="3d-names-columns",
        ),
        pytest.param(
            {"data": {"ndarray": [[1]]}}, [], {"names": [], "ndarray": []}, id="empty-list"
        ),
        pytest.param(
            {"data": {"ndarray": [[1]]}},
            np.zeros((0, 10**6)),
            {"names": [], "ndarray": []},
            id="no-values-no-names",  # found by tests/fuzz: each column was named
        ),
    ],
)
async def test_output_kind_rules(asgi_client, request_body, result, expected_data):
    client = asgi_client(Returns(result))
    response = await client.post("/predict", json=request_body)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == expected_data


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param({"out": [1]}, {"jsonData": {"out": [1]}}, id="dict-jsonData"),
        pytest.param(b"\x01\x02", {"binData": "AQI="}, id="bytes-binData"),
        pytest.param(bytearray(b"\x03"), {"binData": "Aw=="}, id="bytearray-binData"),
        pytest.param("text", {"strData": "text"}, id="str-strData"),
    ],
)
async def test_non_array_results(asgi_client, result, expected):
    client = asgi_client(Returns(result))
    response = await client.post("/predict", json=NDARRAY)
    assert response.json() == {"meta": {}, **expected}


# ---------------------------------------------------------------- meta


class Tagged:
    """Static tags/metrics plus per-request runtime tags/metrics."""

    def predict(self, X, names):
        return SeldonResponse(
            X,
            tags={"static_and_runtime": "runtime", "runtime": "r"},
            metrics=[{"type": "GAUGE", "key": "runtime_gauge", "value": 2}],
        )

    def tags(self):
        return {"request_and_static": "static", "static_and_runtime": "static", "static": 1}

    def metrics(self):
        return [{"type": "COUNTER", "key": "static_counter", "value": 1}]


REQUEST_METRIC = {"type": "COUNTER", "key": "upstream", "value": 5}


async def test_meta_merges_tags_and_appends_metrics(asgi_client):
    client = asgi_client(Tagged())
    body = {
        **NDARRAY,
        "meta": {
            "tags": {"request": True, "request_and_static": "request"},
            "metrics": [REQUEST_METRIC],
        },
    }
    meta = (await client.post("/predict", json=body)).json()["meta"]
    assert meta["tags"] == {
        "request": True,
        "request_and_static": "static",
        "static_and_runtime": "runtime",
        "static": 1,
        "runtime": "r",
    }
    assert meta["metrics"] == [
        REQUEST_METRIC,
        {"type": "COUNTER", "key": "static_counter", "value": 1},
        {"type": "GAUGE", "key": "runtime_gauge", "value": 2},
    ]


async def test_metrics_left_out_of_the_response_when_asked(asgi_client):
    client = asgi_client(Tagged(), include_metrics_in_client_response=False)
    body = {**NDARRAY, "meta": {"metrics": [REQUEST_METRIC]}}
    meta = (await client.post("/predict", json=body)).json()["meta"]
    assert meta["metrics"] == [REQUEST_METRIC]


@pytest.mark.parametrize(
    ("request_meta", "settings", "expected"),
    [
        pytest.param({}, {}, {}, id="empty-fields-omitted"),
        pytest.param({"puid": "abc"}, {}, {"puid": "abc"}, id="puid-copied"),
        pytest.param({"tags": {}}, {}, {}, id="empty-tags-omitted"),
        pytest.param(
            {},
            {"unit_id": "node", "unit_image": "img:1"},
            {"requestPath": {"node": "img:1"}},
            id="requestPath-added",
        ),
        pytest.param(
            {}, {"unit_id": "node"}, {"requestPath": {"node": ""}}, id="requestPath-without-image"
        ),
        pytest.param({}, {"unit_image": "img:1"}, {}, id="no-requestPath-without-unit-id"),
        pytest.param(
            {"requestPath": {"node": "theirs:2", "upstream": "u:1"}},
            {"unit_id": "node", "unit_image": "img:1"},
            {"requestPath": {"node": "theirs:2", "upstream": "u:1"}},
            id="request-entries-win",
        ),
        pytest.param(
            {"requestPath": {"upstream": "u:1"}},
            {"unit_id": "node", "unit_image": "img:1"},
            {"requestPath": {"node": "img:1", "upstream": "u:1"}},
            id="requestPath-merged",
        ),
    ],
)
async def test_response_meta(asgi_client, request_meta, settings, expected):
    client = asgi_client(Echo(), **settings)
    response = await client.post("/predict", json={**NDARRAY, "meta": request_meta})
    assert response.json()["meta"] == expected


async def test_puid_is_never_generated(asgi_client):
    client = asgi_client(Echo(), unit_id="node")
    responses = [await client.post("/predict", json=NDARRAY) for _ in range(2)]
    assert all("puid" not in r.json()["meta"] for r in responses)


# ---------------------------------------------------------------- predict_raw


class Raw:
    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.received: list[Any] = []

    def predict_raw(self, msg):
        self.received.append(msg)
        return self.reply


async def test_predict_raw_dict_in_and_out_verbatim(asgi_client):
    reply = {"jsonData": {"anything": 1}, "meta": {"custom": "kept"}, "extra": [1, 2]}
    model = Raw(reply)
    client = asgi_client(model, unit_id="node", unit_image="img:1")
    sent = {"data": {"names": ["a"], "ndarray": [[1]]}, "meta": {"puid": "p"}, "unknown": True}
    response = await client.post("/predict", json=sent)
    assert model.received == [sent]
    assert response.status_code == 200
    assert response.json() == reply


@pytest.mark.parametrize(
    ("code", "expected_status"),
    [
        pytest.param(201, 201, id="created"),
        pytest.param(422, 422, id="unprocessable"),
        pytest.param(503, 503, id="unavailable"),
        pytest.param(0, 200, id="zero-is-ok"),
        pytest.param(-1, 200, id="seldon-failure-code-is-not-http"),
    ],
)
async def test_status_code_from_predict_raw(asgi_client, code, expected_status):
    reply = {"status": {"code": code, "info": "said so", "status": "FAILURE"}, "strData": "x"}
    client = asgi_client(Raw(reply))
    response = await client.post("/predict", json=NDARRAY)
    assert response.status_code == expected_status
    assert response.json() == reply


class Passthrough:
    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.received: list[Any] = []

    def predict_raw(self, msg):
        self.received.append(msg)
        return self.reply


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b'{"strData": "as bytes"}', id="bytes"),
        pytest.param('{"strData": "as text"}', id="str"),
    ],
)
async def test_payload_passthrough_is_bytes_in_and_out(asgi_client, reply):
    """PAYLOAD_PASSTHROUGH: /predict hands predict_raw the body undecoded and sends back what
    it returns, labelled JSON as Seldon labels it; other endpoints still decode."""
    model = Passthrough(reply)
    client = asgi_client(model, payload_passthrough=True)
    body = b"not even json \xff"
    response = await client.post("/predict", content=body)
    assert response.status_code == 200
    assert model.received == [body]
    assert response.content == (reply if isinstance(reply, bytes) else reply.encode())
    assert response.headers["content-type"] == "application/json"
    echoed = await client.post("/transform-input", json=NDARRAY)
    assert echoed.json()["data"]["ndarray"] == [[1, 2]]
