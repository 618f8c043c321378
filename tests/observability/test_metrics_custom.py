"""Custom metrics, feedback counters and request histograms, read back through ``/metrics``."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from infergraph.sdk import SeldonResponse, create_counter, create_gauge, create_timer

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition; every line must be a comment or a sample."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


async def scrape(client) -> list[tuple[str, dict[str, str], float]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return parse_prometheus(response.text)


def value(samples, name: str, **labels: str) -> float | None:
    """The one sample named ``name`` whose labels include ``labels``; None when absent."""
    found = [v for n, lb, v in samples if n == name and labels.items() <= lb.items()]
    assert len(found) <= 1, f"{len(found)} samples match {name} {labels}"
    return found[0] if found else None


class Emits:
    """predict answers SeldonResponse with the metrics the request asks for in jsonData."""

    def predict(self, X, names):
        return SeldonResponse("done", metrics=X["metrics"])


def ask(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {"jsonData": {"metrics": list(metrics)}}


# ---------------------------------------------------------------- COUNTER, GAUGE, TIMER


async def test_counter_adds_across_requests(asgi_client):
    client = asgi_client(Emits(), unit_id="m")
    for amount in (1, 2.5, 3):
        response = await client.post("/predict", json=ask(create_counter("hits", amount)))
        assert response.status_code == 200
    samples = await scrape(client)
    assert value(samples, "hits_total", method="predict") == 6.5


async def test_gauge_keeps_the_last_value(asgi_client):
    client = asgi_client(Emits())
    for level in (5, 9, 3):
        await client.post("/predict", json=ask(create_gauge("level", level)))
    assert value(await scrape(client), "level", method="predict") == 3


async def test_timer_milliseconds_become_histogram_seconds(asgi_client):
    client = asgi_client(Emits())
    for ms in (250, 750, 20):
        await client.post("/predict", json=ask(create_timer("latency", ms)))
    samples = await scrape(client)
    assert value(samples, "latency_sum", method="predict") == pytest.approx(1.02)
    assert value(samples, "latency_count", method="predict") == 3
    assert value(samples, "latency_bucket", method="predict", le="+Inf") == 3
    assert value(samples, "latency_bucket", method="predict", le="0.0") == 0
    edges = sorted(float(lb["le"]) for n, lb, _ in samples if n == "latency_bucket")
    assert len(edges) == 52  # 0, 50 log-spaced edges from 1 ms to 30 s, +Inf
    assert edges[1] == pytest.approx(0.001) and edges[-2] == pytest.approx(30)
    counts = [v for n, lb, v in samples if n == "latency_bucket"]
    assert counts == sorted(counts), "buckets are cumulative"


async def test_static_metrics_are_recorded_on_every_call(asgi_client):
    class Static:
        def predict(self, X, names):
            return X

        def metrics(self):
            return [create_counter("static_calls", 1), create_gauge("static_level", 7)]

    client = asgi_client(Static())
    for _ in range(3):
        await client.post("/predict", json={"data": {"ndarray": [1]}})
    samples = await scrape(client)
    assert value(samples, "static_calls_total", method="predict") == 3
    assert value(samples, "static_level", method="predict") == 7


async def test_metrics_recorded_even_when_not_echoed(asgi_client):
    client = asgi_client(Emits(), include_metrics_in_client_response=False)
    response = await client.post("/predict", json=ask(create_counter("hidden", 4)))
    assert "metrics" not in response.json()["meta"]
    assert value(await scrape(client), "hidden_total", method="predict") == 4


@pytest.mark.parametrize("include", [True, False])
async def test_raw_metrics_recorded_and_stripped_when_asked(asgi_client, include):
    class Raw:
        def predict_raw(self, msg):
            return {"strData": "x", "meta": {"metrics": [create_counter("raw_hits", 2)]}}

    client = asgi_client(Raw(), include_metrics_in_client_response=include)
    body = (await client.post("/predict", json={"strData": "in"})).json()
    assert ("metrics" in body["meta"]) is include
    assert value(await scrape(client), "raw_hits_total", method="predict") == 2


# ---------------------------------------------------------------- labels


async def test_default_labels(asgi_client):
    client = asgi_client(
        Emits(),
        unit_id="classifier",
        unit_image="repo/sklearn:1.4",
        predictor_id="default",
        deployment_id="iris",
        predictor_labels={"version": "v7"},
    )
    await client.post("/predict", json=ask(create_counter("labelled", 1)))
    [(_, labels, _)] = [s for s in await scrape(client) if s[0] == "labelled_total"]
    assert labels == {
        "deployment_name": "iris",
        "model_name": "classifier",
        "model_image": "repo/sklearn",
        "model_version": "1.4",
        "predictor_name": "default",
        "predictor_version": "v7",
        "seldon_deployment_name": "iris",
        "image_name": "repo/sklearn",
        "image_version": "1.4",
        "worker_id": str(os.getpid()),
        "method": "predict",
    }


async def test_unknown_labels_are_not_implemented(asgi_client):
    client = asgi_client(Emits(), unit_id="only-the-name")
    await client.post("/predict", json=ask(create_counter("bare", 1)))
    [(_, labels, _)] = [s for s in await scrape(client) if s[0] == "bare_total"]
    assert labels["model_name"] == "only-the-name"
    for key in (
        "deployment_name",
        "model_image",
        "model_version",
        "predictor_name",
        "predictor_version",
        "seldon_deployment_name",
        "image_name",
        "image_version",
    ):
        assert labels[key] == "NOT_IMPLEMENTED", key


async def test_metric_tags_become_labels(asgi_client):
    client = asgi_client(Emits())
    await client.post("/predict", json=ask(create_counter("tagged", 1, {"colour": "red"})))
    await client.post("/predict", json=ask(create_counter("tagged", 2, {"colour": "blue"})))
    await client.post("/predict", json=ask(create_counter("tagged", 3, {"colour": "red"})))
    await client.post("/predict", json=ask(create_gauge("odd name", 1, {"my-tag": "x"})))
    samples = await scrape(client)
    assert value(samples, "tagged_total", colour="red") == 4
    assert value(samples, "tagged_total", colour="blue") == 2
    assert value(samples, "odd_name", my_tag="x") == 1


class EveryEndpoint:
    """Each endpoint emits a counter; the ``method`` label says which endpoint it was."""

    def predict(self, X, names):
        return SeldonResponse(X, metrics=[create_counter("calls", 1)])

    def transform_input(self, X, names):
        return SeldonResponse(X, metrics=[create_counter("calls", 1)])

    def transform_output(self, X, names):
        return SeldonResponse(X, metrics=[create_counter("calls", 1)])

    def route(self, X, names):
        return SeldonResponse(0, metrics=[create_counter("calls", 1)])

    def aggregate(self, Xs, names):
        return SeldonResponse(Xs[0], metrics=[create_counter("calls", 1)])

    def send_feedback(self, X, names, reward, truth, routing=None):
        return SeldonResponse([], metrics=[create_counter("calls", 1)])

    def metrics(self):
        return [create_counter("static_calls", 1)]


NDARRAY = {"data": {"ndarray": [[1]]}}


@pytest.mark.parametrize(
    ("method", "path", "body", "label", "runtime"),
    [
        pytest.param("POST", "/predict", NDARRAY, "predict", True, id="predict"),
        pytest.param(
            "POST", "/transform-input", NDARRAY, "inputtransform", True, id="transform-input"
        ),
        pytest.param(
            "POST", "/transform-output", NDARRAY, "outputtransform", True, id="transform-output"
        ),
        pytest.param("POST", "/route", NDARRAY, "router", True, id="route"),
        pytest.param("POST", "/aggregate", [NDARRAY], "aggregate", True, id="aggregate"),
        pytest.param("POST", "/send-feedback", {"reward": 0}, "feedback", True, id="feedback"),
        pytest.param("GET", "/health/status", None, "health", False, id="health"),
    ],
)
async def test_method_label_per_endpoint(asgi_client, method, path, body, label, runtime):
    client = asgi_client(EveryEndpoint())
    response = await client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    samples = await scrape(client)
    assert value(samples, "static_calls_total", method=label) == 1
    assert value(samples, "calls_total", method=label) == (1 if runtime else None)
    methods = {lb["method"] for n, lb, _ in samples if n == "static_calls_total"}
    assert methods == {label}


# ---------------------------------------------------------------- feedback counters


async def test_feedback_counters(asgi_client):
    class Learner:
        def send_feedback(self, X, names, reward, truth, routing=None):
            return None

    client = asgi_client(Learner(), unit_id="router")
    for reward in (1, 0.5, 0, -0.25):
        response = await client.post("/api/v1.0/feedback", json={"reward": reward})
        assert response.status_code == 200
    samples = await scrape(client)
    labels = {"method": "feedback", "model_name": "router"}
    assert value(samples, "seldon_api_model_feedback_total", **labels) == 3
    assert value(samples, "seldon_api_model_feedback_reward_total", **labels) == 1.25


async def test_feedback_counters_off_without_executor(asgi_client):
    class Learner:
        def send_feedback(self, X, names, reward, truth, routing=None):
            return None

    client = asgi_client(Learner(), executor_enabled=False)
    await client.post("/send-feedback", json={"reward": 1})
    assert value(await scrape(client), "seldon_api_model_feedback_total") is None


# ---------------------------------------------------------------- request histogram

REQUESTS = "seldon_api_executor_server_requests_seconds"


async def test_request_histogram(asgi_client):
    class Model:
        def predict(self, X, names):
            return X

        def send_feedback(self, X, names, reward, truth, routing=None):
            return None

    client = asgi_client(Model(), deployment_id="dep", predictor_id="pred")
    for _ in range(3):
        await client.post("/api/v1.0/predictions", json=NDARRAY)
    await client.get("/predict", params={"json": '{"data":{"ndarray":[1]}}'})
    await client.post("/predict", json={"data": 5})
    await client.post("/send-feedback", json={"reward": 1})
    samples = await scrape(client)

    ok = {"service": "predictions", "method": "post", "code": "200"}
    assert value(samples, f"{REQUESTS}_count", **ok) == 3
    assert value(samples, f"{REQUESTS}_bucket", **ok, le="+Inf") == 3
    assert value(samples, f"{REQUESTS}_sum", **ok) > 0
    assert value(samples, f"{REQUESTS}_count", service="predictions", method="get") == 1
    assert value(samples, f"{REQUESTS}_count", service="predictions", code="400") == 1
    assert value(samples, f"{REQUESTS}_count", service="feedback", code="200") == 1
    [labels] = [lb for n, lb, _ in samples if n == f"{REQUESTS}_count" and ok.items() <= lb.items()]
    assert labels == {
        "deployment_name": "dep",
        "predictor_name": "pred",
        "predictor_version": "",
        **ok,
    }


async def test_metrics_scrapes_are_not_counted(asgi_client):
    client = asgi_client(Emits())
    for _ in range(3):
        await client.get("/metrics")
        await client.get("/health/ping")
    samples = await scrape(client)
    assert not [s for s in samples if s[0].startswith(REQUESTS)]


async def test_exposition_has_help_and_type_lines(asgi_client):
    client = asgi_client(Emits())
    await client.post("/predict", json=ask(create_counter("c", 1), create_timer("t", 5)))
    text = (await client.get("/metrics")).text
    assert "# TYPE c_total counter" in text
    assert "# TYPE t histogram" in text
    assert f"# TYPE {REQUESTS} histogram" in text
    assert text.endswith("\n")
