"""``ComponentSettings.from_env``: Seldon's environment names, defaults and pod annotations.

Seldon facts (reference §1.9; checklist 13, 14, 17, 18).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infergraph.settings import DEFAULT_MAX_MESSAGE_SIZE, ComponentSettings, read_annotations


def test_defaults_are_seldons() -> None:
    s = ComponentSettings.from_env({}, {})
    assert s == ComponentSettings()
    assert (s.http_port, s.grpc_port, s.metrics_port) == (9000, 5000, 6000)
    assert (s.workers, s.threads, s.grpc_workers) == (1, 1, 1)
    assert s.service_type == "MODEL"
    assert s.parameters == "[]"
    assert s.log_level == "INFO"
    assert s.metrics_endpoint == "/metrics"
    assert s.include_metrics_in_client_response is True
    assert s.payload_passthrough is False
    assert s.executor_enabled is True
    assert s.access_log is False
    assert s.grpc_max_message_size is None
    assert s.grpc_message_limit == s.max_message_size == DEFAULT_MAX_MESSAGE_SIZE


def test_seldon_environment_names() -> None:
    env = {
        "MODEL_NAME": "pkg.mod.Model",
        "SERVICE_TYPE": "TRANSFORMER",
        "PREDICTIVE_UNIT_PARAMETERS": '[{"name":"a","value":"1","type":"INT"}]',
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": "9100",
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": "5100",
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": "6100",
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        "GUNICORN_WORKERS": "4",
        "GUNICORN_THREADS": "8",
        "GRPC_WORKERS": "0",
        "SELDON_LOG_LEVEL": "DEBUG",
        "GUNICORN_ACCESS_LOG": "true",
        "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false",
        "PAYLOAD_PASSTHROUGH": "True",
        "MODEL_METADATA": '{"name": "m"}',
        "PREDICTIVE_UNIT_ID": "classifier",
        "PREDICTIVE_UNIT_IMAGE": "seldonio/sklearnserver:1.18",
        "PREDICTOR_ID": "default",
        "PREDICTOR_LABELS": '{"version": "v2", "team": 7}',
        "SELDON_DEPLOYMENT_ID": "iris",
        "SELDON_EXECUTOR_ENABLED": "false",
    }
    s = ComponentSettings.from_env(env, {})
    assert s.interface_name == "pkg.mod.Model"
    assert s.service_type == "TRANSFORMER"
    assert s.parameters == env["PREDICTIVE_UNIT_PARAMETERS"]
    assert (s.http_port, s.grpc_port, s.metrics_port) == (9100, 5100, 6100)
    assert s.metrics_endpoint == "/prometheus"
    assert (s.workers, s.threads, s.grpc_workers) == (4, 8, 0)
    assert s.log_level == "DEBUG"
    assert s.access_log is True
    assert s.include_metrics_in_client_response is False
    assert s.payload_passthrough is True
    assert s.model_metadata == '{"name": "m"}'
    assert (s.unit_id, s.unit_image) == ("classifier", "seldonio/sklearnserver:1.18")
    assert s.predictor_id == "default"
    assert s.predictor_labels == {"version": "v2", "team": "7"}
    assert s.deployment_id == "iris"
    assert s.executor_enabled is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1", True, id="1"),
        pytest.param("true", True, id="true"),
        pytest.param("T", True, id="T"),
        pytest.param("yes", True, id="yes"),
        pytest.param("0", False, id="0"),
        pytest.param("false", False, id="false"),
        pytest.param("", True, id="empty-is-default"),
    ],
)
def test_boolean_env(value: str, expected: bool) -> None:
    env = {"INCLUDE_METRICS_IN_CLIENT_RESPONSE": value}
    assert ComponentSettings.from_env(env, {}).include_metrics_in_client_response is expected


@pytest.mark.parametrize(
    ("name", "field"),
    [
        pytest.param("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "http_port", id="http-port"),
        pytest.param("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", "grpc_port", id="grpc-port"),
        pytest.param("PREDICTIVE_UNIT_METRICS_SERVICE_PORT", "metrics_port", id="metrics-port"),
        pytest.param("GUNICORN_WORKERS", "workers", id="workers"),
        pytest.param("GUNICORN_THREADS", "threads", id="threads"),
        pytest.param("GRPC_WORKERS", "grpc_workers", id="grpc-workers"),
    ],
)
def test_empty_integer_env_means_default(name: str, field: str) -> None:
    assert getattr(ComponentSettings.from_env({name: ""}, {}), field) == getattr(
        ComponentSettings(), field
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "http", id="http-port-word"),
        pytest.param("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", "50.5", id="grpc-port-float"),
        pytest.param("PREDICTIVE_UNIT_METRICS_SERVICE_PORT", "6k", id="metrics-port"),
        pytest.param("GUNICORN_WORKERS", "two", id="workers"),
        pytest.param("GRPC_WORKERS", "none", id="grpc-workers"),
    ],
)
def test_bad_integer_env_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        ComponentSettings.from_env({name: value}, {})
    assert value in str(info.value)


def test_bad_predictor_labels_names_the_variable() -> None:
    with pytest.raises(ValueError, match="PREDICTOR_LABELS"):
        ComponentSettings.from_env({"PREDICTOR_LABELS": "{not json"}, {})


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({"seldon.io/grpc-max-message-size": "1048576"}, 1048576, id="set"),
        pytest.param({}, None, id="absent"),
        pytest.param({"seldon.io/grpc-max-message-size": "big"}, None, id="not-a-number"),
        pytest.param({"seldon.io/rest-timeout": "100"}, None, id="other-annotation"),
    ],
)
def test_grpc_max_message_size_annotation(annotations: dict[str, str], expected: int) -> None:
    s = ComponentSettings.from_env({}, annotations)
    assert s.grpc_max_message_size == expected
    assert s.grpc_message_limit == (expected or s.max_message_size)


def test_grpc_annotation_overrides_only_grpc() -> None:
    env = {"INFERGRAPH_MAX_MESSAGE_SIZE": "2048"}
    s = ComponentSettings.from_env(env, {"seldon.io/grpc-max-message-size": "4096"})
    assert s.max_message_size == 2048
    assert s.grpc_message_limit == 4096


def test_read_annotations_file(tmp_path: Path) -> None:
    path = tmp_path / "annotations"
    path.write_text(
        'kubernetes.io/config.seen="2024-01-01T00:00:00Z"\n'
        'seldon.io/grpc-max-message-size="10000000"\n'
        'seldon.io/rest-timeout="3000"\n'
        "\n"
        "not an annotation line\n"
        'prometheus.io/path="/prometheus"\n'
    )
    annotations = read_annotations(path)
    assert annotations == {
        "kubernetes.io/config.seen": "2024-01-01T00:00:00Z",
        "seldon.io/grpc-max-message-size": "10000000",
        "seldon.io/rest-timeout": "3000",
        "prometheus.io/path": "/prometheus",
    }
    s = ComponentSettings.from_env({}, annotations)
    assert s.grpc_max_message_size == 10_000_000


def test_read_annotations_value_with_equals_sign(tmp_path: Path) -> None:
    path = tmp_path / "annotations"
    path.write_text('example.com/query="a=b&c=d"\n')
    assert read_annotations(path) == {"example.com/query": "a=b&c=d"}


def test_read_annotations_missing_file(tmp_path: Path) -> None:
    assert read_annotations(tmp_path / "absent") == {}


def test_replace_returns_a_new_frozen_settings() -> None:
    s = ComponentSettings()
    t = s.replace(http_port=1234)
    assert (s.http_port, t.http_port) == (9000, 1234)
    with pytest.raises(AttributeError):
        t.http_port = 1  # type: ignore[misc]


def test_rest_timeout_annotation_is_read() -> None:
    s = ComponentSettings.from_env({}, {"seldon.io/rest-timeout": "1500"})
    assert s.rest_timeout_ms == 1500
    assert ComponentSettings.from_env({}, {}).rest_timeout_ms is None
