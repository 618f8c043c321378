"""Seldon-style user classes of every type, served unchanged over REST in-process."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from infergraph.components.invoke import FAST_CALLS
from infergraph.sdk import SeldonNotImplementedError, SeldonResponse

ROWS = {"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}


class Recorder:
    """Base for test components: keeps the arguments of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []


# ---------------------------------------------------------------- MODEL


class PlainModel(Recorder):
    def predict(self, X, feature_names):
        self.calls.append((X, feature_names))
        return X * 2


class MetaModel(Recorder):
    def predict(self, X, names, meta=None):
        self.calls.append((X, names, meta))
        return X


class KwargsModel(Recorder):
    def predict(self, X, names, **kwargs):
        self.calls.append((X, names, kwargs))
        return X


class AsyncModel(Recorder):
    async def predict(self, X, names, meta=None):
        self.calls.append((X, names, meta))
        return X + 1


async def test_predict_gets_array_and_names(asgi_client):
    model = PlainModel()
    client = asgi_client(model)
    response = await client.post("/predict", json=ROWS)
    [(X, names)] = model.calls
    assert isinstance(X, np.ndarray) and X.dtype.kind == "i"
    assert X.tolist() == [[1, 2], [3, 4]]
    assert names == ["a", "b"]
    assert response.json()["data"] == {"names": ["t:0", "t:1"], "ndarray": [[2, 4], [6, 8]]}


@pytest.mark.parametrize(
    ("model_cls", "expected_meta"),
    [
        pytest.param(MetaModel, {"puid": "req-1", "tags": {"source": "test"}}, id="meta-kwarg"),
        pytest.param(
            KwargsModel, {"meta": {"puid": "req-1", "tags": {"source": "test"}}}, id="var-kwargs"
        ),
        pytest.param(AsyncModel, {"puid": "req-1", "tags": {"source": "test"}}, id="async"),
    ],
)
async def test_predict_sees_request_meta(asgi_client, model_cls, expected_meta):
    model = model_cls()
    client = asgi_client(model)
    body = {**ROWS, "meta": {"puid": "req-1", "tags": {"source": "test"}}}
    response = await client.post("/predict", json=body)
    assert response.status_code == 200
    [(_, names, meta)] = model.calls
    assert names == ["a", "b"]
    assert meta == expected_meta


async def test_async_predict_result(asgi_client):
    client = asgi_client(AsyncModel())
    response = await client.post("/predict", json={"data": {"ndarray": [1.5]}})
    assert response.json()["data"] == {"names": [], "ndarray": [2.5]}


async def test_strdata_bindata_jsondata_reach_predict_as_python_values(asgi_client):
    class Payloads(Recorder):
        def predict(self, X, names):
            self.calls.append(X)
            return "ok"

    model = Payloads()
    client = asgi_client(model)
    for body in ({"strData": "s"}, {"binData": "AAE="}, {"jsonData": {"k": [1]}}):
        assert (await client.post("/predict", json=body)).status_code == 200
    assert model.calls == ["s", b"\x00\x01", {"k": [1]}]


async def test_sync_mode_chooses_where_sync_methods_run(asgi_client):
    threads: list[threading.Thread] = []

    class WhereAmI:
        def predict(self, X, names):
            threads.append(threading.current_thread())
            return X

    await asgi_client(WhereAmI(), sync_mode="thread").post("/predict", json=ROWS)
    await asgi_client(WhereAmI(), sync_mode="inline").post("/predict", json=ROWS)
    assert threads[0] is not threading.current_thread()
    assert threads[1] is threading.current_thread()


async def test_auto_mode_runs_fast_sync_methods_inline_once_timed(asgi_client):
    threads: list[threading.Thread] = []

    class Fast:
        def predict(self, X, names):
            threads.append(threading.current_thread())
            return X

    client = asgi_client(Fast())
    for _ in range(FAST_CALLS + 2):
        assert (await client.post("/predict", json=ROWS)).status_code == 200
    here = [thread is threading.current_thread() for thread in threads]
    assert here == [False] * FAST_CALLS + [True] * 2  # timed on the pool first


async def test_auto_mode_keeps_slow_sync_methods_on_the_thread_pool(asgi_client):
    import time as _time

    threads: list[threading.Thread] = []

    class Slow:
        def predict(self, X, names):
            threads.append(threading.current_thread())
            # the work being measured, not synchronisation: slow on the pool is past 2 ms
            # plus twice the GIL switch interval (the waits a call there may have for it)
            _time.sleep(0.05)
            return X

    client = asgi_client(Slow())
    for _ in range(FAST_CALLS + 2):
        assert (await client.post("/predict", json=ROWS)).status_code == 200
    assert all(thread is not threading.current_thread() for thread in threads)


class RawThenHigh(Recorder):
    """predict_raw wins over predict; SeldonNotImplementedError falls through to predict."""

    def __init__(self, implemented: bool) -> None:
        super().__init__()
        self.implemented = implemented

    def predict_raw(self, msg):
        self.calls.append(("raw", msg))
        if not self.implemented:
            raise SeldonNotImplementedError("use predict")
        return {"strData": "raw"}

    def predict(self, X, names):
        self.calls.append(("high", X.tolist()))
        return "high"


@pytest.mark.parametrize(
    ("implemented", "expected", "called"),
    [
        pytest.param(True, "raw", ["raw"], id="raw-first"),
        pytest.param(False, "high", ["raw", "high"], id="not-implemented-falls-through"),
    ],
)
async def test_predict_raw_resolution(asgi_client, implemented, expected, called):
    model = RawThenHigh(implemented)
    response = await asgi_client(model).post("/predict", json=ROWS)
    assert response.json()["strData"] == expected
    assert [name for name, _ in model.calls] == called


async def test_deprecated_predict_rest_wins(asgi_client):
    class Legacy:
        def predict_rest(self, msg):
            return {"strData": "rest"}

        def predict_raw(self, msg):
            return {"strData": "raw"}

    response = await asgi_client(Legacy()).post("/predict", json=ROWS)
    assert response.json() == {"strData": "rest"}


async def test_async_predict_raw(asgi_client):
    class AsyncRaw:
        async def predict_raw(self, msg):
            return {"jsonData": msg}

    response = await asgi_client(AsyncRaw()).post("/predict", json={"strData": "x"})
    assert response.json() == {"jsonData": {"strData": "x"}}


async def test_predict_raising_not_implemented_answers_empty(asgi_client):
    class Later:
        def predict(self, X, names):
            raise SeldonNotImplementedError("not yet")

    response = await asgi_client(Later()).post("/predict", json=ROWS)
    assert response.status_code == 200
    assert response.json()["data"] == {"names": [], "ndarray": []}


# ---------------------------------------------------------------- TRANSFORMER, OUTPUT_TRANSFORMER


class InputTransformer(Recorder):
    def transform_input(self, X, names, meta=None):
        self.calls.append((X.tolist(), names, meta))
        return X + 10


class OutputTransformer(Recorder):
    def transform_output(self, X, names):
        self.calls.append((X.tolist(), names))
        return X.astype(float) / 2


async def test_transform_input(asgi_client):
    model = InputTransformer()
    client = asgi_client(model)
    response = await client.post("/transform-input", json={**ROWS, "meta": {"puid": "p"}})
    assert model.calls == [([[1, 2], [3, 4]], ["a", "b"], {"puid": "p"})]
    assert response.json() == {
        "meta": {"puid": "p"},
        "data": {"names": ["t:0", "t:1"], "ndarray": [[11, 12], [13, 14]]},
    }


async def test_transform_output(asgi_client):
    model = OutputTransformer()
    client = asgi_client(model)
    body = {"data": {"tensor": {"shape": [1, 2], "values": [1, 3]}}}
    response = await client.post("/transform-output", json=body)
    assert model.calls == [([[1, 3]], [])]
    assert response.json()["data"] == {
        "names": ["t:0", "t:1"],
        "tensor": {"shape": [1, 2], "values": [0.5, 1.5]},
    }


@pytest.mark.parametrize(
    ("user", "path"),
    [
        pytest.param(InputTransformer(), "/transform-output", id="transformer-output"),
        pytest.param(OutputTransformer(), "/transform-input", id="output-transformer-input"),
    ],
)
async def test_missing_transform_passes_the_payload_through(asgi_client, user, path):
    """As in Seldon, the request's payload becomes the response, with the usual meta rules."""
    client = asgi_client(user, unit_id="node", unit_image="img:1")
    response = await client.post(path, json={**ROWS, "meta": {"tags": {"kept": 1}}})
    assert response.json() == {
        "meta": {"tags": {"kept": 1}, "requestPath": {"node": "img:1"}},
        "data": {"names": ["t:0", "t:1"], "ndarray": [[1, 2], [3, 4]]},
    }


async def test_transformer_without_predict_answers_empty_prediction(asgi_client):
    response = await asgi_client(InputTransformer()).post("/predict", json=ROWS)
    assert response.status_code == 200
    assert response.json() == {"meta": {}, "data": {"names": [], "ndarray": []}}


# ---------------------------------------------------------------- ROUTER


class FixedRouter(Recorder):
    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result

    def route(self, features, feature_names, meta=None):
        self.calls.append((features.tolist(), feature_names, meta))
        return self.result


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param(1, 1, id="int"),
        pytest.param(-1, -1, id="all-children"),
        pytest.param(np.int64(2), 2, id="numpy-int"),
        pytest.param(SeldonResponse(0), 0, id="seldon-response"),
    ],
)
async def test_route(asgi_client, result, expected):
    router = FixedRouter(result)
    client = asgi_client(router)
    response = await client.post("/route", json={**ROWS, "meta": {"puid": "p"}})
    assert response.status_code == 200
    assert response.json() == {
        "meta": {"puid": "p"},
        "data": {"names": ["t:0"], "ndarray": [[expected]]},
    }
    assert router.calls == [([[1, 2], [3, 4]], ["a", "b"], {"puid": "p"})]


async def test_route_without_meta_parameter(asgi_client):
    class TwoArgs:
        def route(self, features, feature_names):
            return 3

    response = await asgi_client(TwoArgs()).post("/route", json=ROWS)
    assert response.json()["data"]["ndarray"] == [[3]]


# ---------------------------------------------------------------- COMBINER


class Averager(Recorder):
    def aggregate(self, features_list, feature_names_list):
        self.calls.append(([f.tolist() for f in features_list], feature_names_list))
        return np.mean(features_list, axis=0)


COMBINER_INPUTS = [
    {
        "data": {"names": ["a", "b"], "ndarray": [[1, 2]]},
        "meta": {"puid": "p", "tags": {"first": 1, "both": "first"}, "requestPath": {"m1": "i1"}},
    },
    {
        "data": {"names": ["c", "d"], "ndarray": [[3, 4]]},
        "meta": {
            "tags": {"second": 2, "both": "second"},
            "requestPath": {"m2": "i2"},
            "metrics": [{"type": "COUNTER", "key": "child", "value": 1}],
        },
    },
]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(COMBINER_INPUTS, id="json-list"),
        pytest.param({"seldonMessages": COMBINER_INPUTS}, id="seldonMessages"),
    ],
)
async def test_aggregate(asgi_client, body):
    combiner = Averager()
    client = asgi_client(combiner, unit_id="combiner", unit_image="comb:1")
    response = await client.post("/aggregate", json=body)
    assert combiner.calls == [([[[1, 2]], [[3, 4]]], [["a", "b"], ["c", "d"]])]
    assert response.json() == {
        "meta": {
            "puid": "p",
            "tags": {"first": 1, "second": 2, "both": "second"},
            "requestPath": {"combiner": "comb:1", "m1": "i1", "m2": "i2"},
            "metrics": [{"type": "COUNTER", "key": "child", "value": 1}],
        },
        "data": {"names": ["t:0", "t:1"], "ndarray": [[2.0, 3.0]]},
    }


async def test_aggregate_output_mirrors_the_first_input_kind(asgi_client):
    body = [{"data": {"tensor": {"shape": [1], "values": [2]}}}, {"data": {"ndarray": [4]}}]
    response = await asgi_client(Averager()).post("/aggregate", json=body)
    assert response.json()["data"] == {"names": [], "tensor": {"shape": [1], "values": [3.0]}}


async def test_aggregate_raw_gets_the_body_as_sent(asgi_client):
    received: list[Any] = []

    class RawCombiner:
        def aggregate_raw(self, msgs):
            received.append(msgs)
            return {"jsonData": {"n": len(msgs["seldonMessages"])}}

    body = {"seldonMessages": COMBINER_INPUTS}
    response = await asgi_client(RawCombiner()).post("/aggregate", json=body)
    assert received == [body]
    assert response.json() == {"jsonData": {"n": 2}}


# ---------------------------------------------------------------- feedback


class FeedbackRouter(Recorder):
    def route(self, features, names):
        return 0

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.calls.append((features.tolist(), feature_names, reward, truth.tolist(), routing))


FEEDBACK = {
    "request": {"data": {"names": ["x"], "ndarray": [[1.0]]}},
    "response": {"meta": {"routing": {"my-router": 2, "other": 0}}, "data": {"ndarray": [[0.2]]}},
    "reward": 0.75,
    "truth": {"data": {"ndarray": [[1]]}},
}


@pytest.mark.parametrize(
    ("unit_id", "body", "expected_routing"),
    [
        pytest.param("my-router", FEEDBACK, 2, id="routing-for-this-unit"),
        pytest.param("elsewhere", FEEDBACK, None, id="no-routing-for-this-unit"),
        pytest.param("", FEEDBACK, None, id="no-unit-id"),
        pytest.param("my-router", {**FEEDBACK, "response": None}, None, id="no-response"),
    ],
)
async def test_send_feedback_routing(asgi_client, unit_id, body, expected_routing):
    router = FeedbackRouter()
    client = asgi_client(router, unit_id=unit_id)
    response = await client.post("/api/v1.0/feedback", json=body)
    assert response.status_code == 200
    assert router.calls == [([[1.0]], ["x"], 0.75, [[1]], expected_routing)]
    assert response.json()["data"] == {"ndarray": []}  # proto-JSON: no empty names


async def test_send_feedback_without_routing_parameter(asgi_client):
    class NoRouting(Recorder):
        def send_feedback(self, features, names, reward, truth):
            self.calls.append(reward)
            return [reward]

    model = NoRouting()
    response = await asgi_client(model, unit_id="my-router").post("/send-feedback", json=FEEDBACK)
    assert model.calls == [0.75]
    assert response.json()["data"] == {"ndarray": [0.75]}


async def test_send_feedback_empty_feedback(asgi_client):
    router = FeedbackRouter()
    response = await asgi_client(router).post("/send-feedback", json={})
    assert response.status_code == 200
    assert router.calls == [([], [], 0.0, [], None)]
