"""``infergraph microservice``: seldon-core-microservice's flags, env and start-up errors.

Seldon facts (reference §1.9; checklist 1, 2, 13-18, 38): the positional class name
or ``MODEL_NAME``; ports 9000/5000/6000 from flags or ``PREDICTIVE_UNIT_*_SERVICE_PORT``;
typed ``PREDICTIVE_UNIT_PARAMETERS``; ``SELDON_LOG_LEVEL`` beats ``--log-level``;
``GRPC_WORKERS=0`` disables gRPC; metrics on their own port at
``PREDICTIVE_UNIT_METRICS_ENDPOINT``; no REST/GRPC positional since 1.5.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from infergraph.cli.main import build_parser
from infergraph.cli.microservice import settings_from_args
from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from infergraph.settings import ComponentSettings
from tests.helpers.ports import HeldPorts, HoldPorts
from tests.helpers.procs import Service, metric_sum, run_to_exit, serving, write_module

MY_MODEL = """
    import numpy as np


    class MyModel:
        def predict(self, X, features_names, meta=None):
            return np.asarray(X) * 2

        def metrics(self):
            return [{"type": "COUNTER", "key": "cli_predictions", "value": 1}]
"""

ENV_MODEL = """
    class EnvModel:
        def __init__(self, i, i2, f, d, s, b, b2):
            given = dict(i=i, i2=i2, f=f, d=d, s=s, b=b, b2=b2)
            self.params = {k: [v, type(v).__name__] for k, v in given.items()}

        def predict(self, X, features_names, meta=None):
            return self.params
"""

ENV_PARAMETERS = [
    {"name": "i", "value": "42", "type": "INT"},
    {"name": "i2", "value": 7, "type": "INT"},
    {"name": "f", "value": "0.5", "type": "FLOAT"},
    {"name": "d", "value": "2.25", "type": "DOUBLE"},
    {"name": "s", "value": "hello", "type": "STRING"},
    {"name": "b", "value": "true", "type": "BOOL"},
    {"name": "b2", "value": "0", "type": "BOOL"},
]

# modules for the start-up failures
FAILING_MODULES = {
    "WrongName": "class SomethingElse:\n    def predict(self, X, names):\n        return X\n",
    "BadSignature": "class BadSignature:\n    def predict(self):\n        return 1\n",
    "Typed": (
        "class Typed:\n    def __init__(self, threshold=0.5):\n        self.t = threshold\n"
        "    def predict(self, X, names):\n        return X\n"
    ),
    "Broken": "import not_a_module_anywhere_xyz\n",
    "Exploding": (
        "class Exploding:\n    def __init__(self):\n        raise ValueError('no GPU here')\n"
        "    def predict(self, X, names):\n        return X\n"
    ),
}


# ---------------------------------------------------------------- one served class


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("cli")
    write_module(folder, "MyModel", MY_MODEL)
    pidfile = folder / "server.pid"
    args = ["MyModel", "--service-type", "MODEL", "--log-level", "INFO"]
    args += ["--pidfile", str(pidfile)]
    env = {"PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus"}
    with serving(folder, args, env=env) as service:
        service.extra["pidfile"] = pidfile
        yield service


@pytest.mark.slow
def test_rest_prediction_on_the_http_port(served: Service) -> None:
    out = served.predict({"data": {"ndarray": [[1, 2], [3, 4]]}})
    assert out["data"]["ndarray"] == [[2, 4], [6, 8]]
    assert out["data"]["names"] == ["t:0", "t:1"]
    assert "requestPath" not in out.get("meta", {})  # PREDICTIVE_UNIT_ID unset
    status, _, body = served.post("/api/v1.0/predictions", {"data": {"ndarry": [[1, 2]]}})
    assert status == 400, body
    assert b"unknown field 'ndarry' in data (did you mean 'ndarray'?)" in body


@pytest.mark.slow
@pytest.mark.parametrize(
    "stub",
    [
        pytest.param(pb_grpc.ModelStub, id="Model"),
        pytest.param(pb_grpc.SeldonStub, id="Seldon"),
    ],
)
def test_grpc_prediction_on_the_grpc_port(served: Service, stub: Any) -> None:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([1, 3])
    request.data.tensor.values.extend([1.0, 2.0, 3.5])
    with grpc.insecure_channel(f"127.0.0.1:{served.grpc}") as channel:
        reply = stub(channel).Predict(request, timeout=10)
    assert list(reply.data.tensor.shape) == [1, 3]
    assert list(reply.data.tensor.values) == [2.0, 4.0, 7.0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/metrics", id="metrics"),
        pytest.param("/prometheus", id="PREDICTIVE_UNIT_METRICS_ENDPOINT"),
    ],
)
def test_prometheus_text_on_the_metrics_port(served: Service, path: str) -> None:
    served.predict()
    samples = served.scrape(path)
    assert metric_sum(samples, "cli_predictions_total", method="predict") >= 1
    count = metric_sum(
        samples, "seldon_api_executor_server_requests_seconds_count", service="predictions"
    )
    assert count >= 1


@pytest.mark.slow
def test_metrics_port_has_no_other_paths(served: Service) -> None:
    status, _, _ = served.get("/api/v1.0/predictions", served.metrics)
    assert status == 404


@pytest.mark.slow
def test_pidfile_and_log_level_flag(served: Service) -> None:
    assert served.extra["pidfile"].read_text().strip() == str(served.pid)
    assert "INFO" in served.stderr()  # --log-level INFO without SELDON_LOG_LEVEL


# ---------------------------------------------------------------- configured by env only


@pytest.fixture(scope="module")
def env_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("env")
    write_module(folder, "EnvModel", ENV_MODEL)
    held = HeldPorts(3)
    http, grpc_port, metrics = held.ports
    env = {
        "MODEL_NAME": "EnvModel",
        "SERVICE_TYPE": "ROUTER",  # informational: predictions are still served
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http),
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc_port),
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(metrics),
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/custom/stats",
        "PREDICTIVE_UNIT_PARAMETERS": json.dumps(ENV_PARAMETERS),
        "PREDICTIVE_UNIT_ID": "my-node",
        "PREDICTIVE_UNIT_IMAGE": "repo/env-model:1.2",
        "GRPC_WORKERS": "0",
        "SELDON_LOG_LEVEL": "WARNING",
    }
    with held, serving(folder, ["--log-level", "DEBUG"], env=env, ports=False) as service:
        yield service


@pytest.mark.slow
def test_env_ports_model_name_and_typed_parameters(env_served: Service) -> None:
    out = env_served.predict()
    assert out["jsonData"] == {
        "i": [42, "int"],
        "i2": [7, "int"],
        "f": [0.5, "float"],
        "d": [2.25, "float"],
        "s": ["hello", "str"],
        "b": [True, "bool"],
        "b2": [False, "bool"],
    }


@pytest.mark.slow
def test_env_unit_id_and_image_in_request_path(env_served: Service) -> None:
    out = env_served.predict()
    assert out["meta"]["requestPath"] == {"my-node": "repo/env-model:1.2"}
    # the request's own entries win and are kept
    body = {"data": {"ndarray": [[1]]}, "meta": {"requestPath": {"upstream": "img:0"}}}
    out = json.loads(env_served.post("/api/v1.0/predictions", body)[2])
    assert out["meta"]["requestPath"] == {"upstream": "img:0", "my-node": "repo/env-model:1.2"}


@pytest.mark.slow
def test_env_grpc_workers_zero_disables_grpc(env_served: Service) -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.settimeout(5)
        s.connect(("127.0.0.1", env_served.grpc))


@pytest.mark.slow
def test_env_metrics_port_and_endpoint(env_served: Service) -> None:
    env_served.predict()
    samples = env_served.scrape("/custom/stats")
    count = metric_sum(
        samples, "seldon_api_executor_server_requests_seconds_count", service="predictions"
    )
    assert count >= 1


@pytest.mark.slow
def test_env_seldon_log_level_beats_the_flag(env_served: Service) -> None:
    env_served.predict()
    # SELDON_LOG_LEVEL=WARNING with --log-level DEBUG: no INFO/DEBUG lines at all
    log = env_served.stderr()
    assert "INFO" not in log, log[-2000:]
    assert "DEBUG" not in log, log[-2000:]


# ---------------------------------------------------------------- access log

ACCESS_LINE = r"^\S+ \S+ INFO infergraph\.access: 127\.0\.0\.1 "
V2_INFER = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "env"),
    [
        pytest.param(["--access-log"], {}, id="flag"),
        # the access log is apart from the log level, as gunicorn's is
        pytest.param([], {"GUNICORN_ACCESS_LOG": "true", "SELDON_LOG_LEVEL": "WARNING"}, id="env"),
    ],
)
def test_access_log_writes_a_line_per_request_to_stderr(
    tmp_path: Path, flags: list[str], env: dict[str, str]
) -> None:
    write_module(tmp_path, "MyModel", MY_MODEL)
    with serving(tmp_path, ["MyModel", *flags], env=env) as service:
        ok = {"meta": {"puid": "p-42"}, "data": {"ndarray": [[1]]}}
        assert service.post("/api/v1.0/predictions", ok)[0] == 200
        assert service.post("/api/v1.0/predictions", [1])[0] == 400
        assert service.post("/v2/models/infer", V2_INFER)[0] == 200
        assert service.post("/v2/models/infer", {"inputs": 1})[0] == 400
        service.scrape()  # the metrics port: no line, as Seldon's FILTER_METRICS_ACCESS_LOGS
        log = service.stderr()  # each line is written before its answer is sent
        stdout = (service.logs / "stdout.txt").read_text()
    assert "GET /metrics" not in log + stdout, (log[-3000:], stdout[-3000:])
    expected = [
        r'"POST /api/v1\.0/predictions" 200 \d+\.\dms puid=p-42$',
        r'"POST /api/v1\.0/predictions" 400 \d+\.\dms$',
        r'"POST /v2/models/infer" 200 \d+\.\dms$',
        r'"POST /v2/models/infer" 400 \d+\.\dms$',
    ]
    for line in expected:
        assert re.search(ACCESS_LINE + line, log, re.MULTILINE), (line, log[-3000:])


@pytest.mark.slow
def test_access_log_under_uvicorn_is_uvicorns(tmp_path: Path) -> None:
    write_module(tmp_path, "MyModel", MY_MODEL)
    with serving(tmp_path, ["MyModel", "--access-log", "--http-server", "uvicorn"]) as service:
        assert service.post("/api/v1.0/predictions", [1])[0] == 400
        stdout = (service.logs / "stdout.txt").read_text()
    assert '"POST /api/v1.0/predictions HTTP/1.1" 400' in stdout, stdout[-3000:]


@pytest.mark.slow
def test_no_access_log_by_default(tmp_path: Path) -> None:
    write_module(tmp_path, "MyModel", MY_MODEL)
    with serving(tmp_path, ["MyModel", "--log-level", "DEBUG"]) as service:
        ok = {"meta": {"puid": "p-42"}, "data": {"ndarray": [[1]]}}
        assert service.post("/api/v1.0/predictions", ok)[0] == 200
        assert service.post("/api/v1.0/predictions", [1])[0] == 400
        log = service.stderr()
    assert "infergraph.access" not in log, log[-3000:]
    assert '"POST /api/v1.0/predictions' not in log, log[-3000:]


# ---------------------------------------------------------------- precedence, no process


def _settings(argv: list[str], env: dict[str, str]) -> ComponentSettings:
    args = build_parser().parse_args(["microservice", *argv])
    return settings_from_args(args, env)


# (field, env name, env value, flags, default, expected from env, expected from flag)
PRECEDENCE = [
    ("interface_name", "MODEL_NAME", "FromEnv", ["FromFlag"], "", "FromEnv", "FromFlag"),
    ("service_type", "SERVICE_TYPE", "ROUTER", ["--service-type", "combiner"],
     "MODEL", "ROUTER", "COMBINER"),
    ("parameters", "PREDICTIVE_UNIT_PARAMETERS", '[{"name":"a","value":"1","type":"INT"}]',
     ["--parameters", "[]"], "[]", '[{"name":"a","value":"1","type":"INT"}]', "[]"),
    ("http_port", "PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "1111", ["--http-port", "2222"],
     9000, 1111, 2222),
    ("grpc_port", "PREDICTIVE_UNIT_GRPC_SERVICE_PORT", "1112", ["--grpc-port", "2223"],
     5000, 1112, 2223),
    ("metrics_port", "PREDICTIVE_UNIT_METRICS_SERVICE_PORT", "1113", ["--metrics-port", "2224"],
     6000, 1113, 2224),
    ("workers", "GUNICORN_WORKERS", "3", ["--workers", "5"], 1, 3, 5),
    ("threads", "GUNICORN_THREADS", "4", ["--threads", "6"], 1, 4, 6),
    ("grpc_workers", "GRPC_WORKERS", "0", ["--grpc-workers", "2"], 1, 0, 2),
    ("access_log", "GUNICORN_ACCESS_LOG", "false", ["--access-log"], False, False, True),
    # SELDON_LOG_LEVEL is the exception: the environment wins over --log-level
    ("log_level", "SELDON_LOG_LEVEL", "ERROR", ["--log-level", "debug"], "INFO", "ERROR", "DEBUG"),
]  # fmt: skip


def _precedence_cases() -> Iterator[Any]:
    for field, name, value, flags, default, from_env, from_flag in PRECEDENCE:
        both = from_env if field == "log_level" else from_flag
        yield pytest.param(field, {}, [], default, id=f"{field}-default")
        yield pytest.param(field, {name: value}, [], from_env, id=f"{field}-env")
        yield pytest.param(field, {}, flags, from_flag, id=f"{field}-flag")
        yield pytest.param(field, {name: value}, flags, both, id=f"{field}-both")


@pytest.mark.parametrize(("field", "env", "flags", "expected"), list(_precedence_cases()))
def test_precedence(field: str, env: dict[str, str], flags: list[str], expected: Any) -> None:
    argv = flags if field == "interface_name" else ["Model", *flags]
    assert getattr(_settings(argv, env), field) == expected


@pytest.mark.parametrize(
    ("env", "flags"),
    [
        pytest.param({"GUNICORN_THREADS": "8"}, ["--single-threaded", "1"], id="env-threads"),
        pytest.param({}, ["--threads", "8", "--single-threaded", "1"], id="flag-threads"),
    ],
)
def test_single_threaded_forces_one_thread(env: dict[str, str], flags: list[str]) -> None:
    assert _settings(["Model", *flags], env).threads == 1


def test_seldon_defaults_without_env_or_flags() -> None:
    s = _settings(["Model"], {})
    assert (s.http_port, s.grpc_port, s.metrics_port) == (9000, 5000, 6000)
    assert (s.workers, s.threads, s.grpc_workers) == (1, 1, 1)
    assert (s.service_type, s.parameters, s.log_level) == ("MODEL", "[]", "INFO")
    assert s.metrics_endpoint == "/metrics"


def test_lower_case_seldon_log_level_is_accepted() -> None:
    assert _settings(["Model"], {"SELDON_LOG_LEVEL": "warning"}).log_level == "WARNING"


# ---------------------------------------------------------------- start-up failures


@pytest.fixture(scope="module")
def failing_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("failing")
    for name, source in FAILING_MODULES.items():
        write_module(folder, name, source)
    write_module(folder, "MyModel", MY_MODEL)
    return folder


def _bad_param(value: str, kind: str) -> str:
    return json.dumps([{"name": "threshold", "value": value, "type": kind}])


STARTUP_FAILURES = [
    pytest.param(["Missing"], {}, ["Missing"], id="missing-module"),
    pytest.param(["WrongName"], {}, ["WrongName", "no class"], id="module-without-class"),
    pytest.param(["BadSignature"], {}, ["BadSignature.predict"], id="predict-wrong-signature"),
    pytest.param(["Broken"], {}, ["Broken", "not_a_module_anywhere_xyz"], id="module-import-fails"),
    pytest.param(["Exploding"], {}, ["Exploding", "no GPU here"], id="constructor-raises"),
    pytest.param(
        ["Typed", "--parameters", _bad_param("1", "INTEGER")],
        {},
        ["threshold", "INTEGER"],
        id="parameter-unknown-type",
    ),
    pytest.param(
        ["Typed", "--parameters", _bad_param("abc", "FLOAT")],
        {},
        ["threshold", "abc", "FLOAT"],
        id="parameter-unparseable-value",
    ),
    pytest.param(
        ["Typed", "--parameters", _bad_param("maybe", "BOOL")],
        {},
        ["threshold", "maybe", "BOOL"],
        id="parameter-bad-bool",
    ),
    pytest.param(
        ["Typed"],
        {"PREDICTIVE_UNIT_PARAMETERS": _bad_param("x", "INT")},
        ["threshold", "INT"],
        id="env-parameter-unparseable",
    ),
    pytest.param(
        ["Typed", "--parameters", json.dumps([{"name": "nope", "value": "1", "type": "INT"}])],
        {},
        ["Typed", "nope"],
        id="parameter-not-accepted",
    ),
    pytest.param(
        ["Typed", "--parameters", "{not json"], {}, ["--parameters"], id="params-not-json"
    ),
    pytest.param(["MyModel", "REST"], {}, ["REST", "positional"], id="legacy-api-type-REST"),
    pytest.param(["MyModel", "GRPC"], {}, ["GRPC", "positional"], id="legacy-api-type-GRPC"),
    pytest.param(["MyModel", "extra"], {}, ["extra"], id="extra-positional"),
    pytest.param([], {}, ["MODEL_NAME"], id="no-class-given"),
    pytest.param(
        ["MyModel"],
        {"PREDICTIVE_UNIT_HTTP_SERVICE_PORT": "nine"},
        ["PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "nine"],
        id="env-port-not-integer",
    ),
    pytest.param(
        ["MyModel"],
        {"SELDON_LOG_LEVEL": "verbose"},
        ["SELDON_LOG_LEVEL", "verbose"],
        id="env-log-level-unknown",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "env", "words"), STARTUP_FAILURES)
def test_startup_failure_is_a_clear_message(
    failing_folder: Path,
    args: list[str],
    env: dict[str, str],
    words: list[str],
    held_ports: HoldPorts,
) -> None:
    http, grpc_port, metrics = held_ports(3)
    ports = ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    ports += ["--metrics-port", str(metrics)]
    result = run_to_exit(failing_folder, [*args, *ports], env=env, timeout=20)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert not result.leftovers


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "workers"),
    [
        pytest.param("http", 1, id="http-1-worker"),
        pytest.param("grpc", 1, id="grpc-1-worker"),
        pytest.param("metrics", 1, id="metrics-1-worker"),
        pytest.param("http", 2, id="http-2-workers"),
    ],
)
def test_port_in_use_is_a_clear_message(
    failing_folder: Path, which: str, workers: int, held_ports: HoldPorts
) -> None:
    ports = dict(zip(("http", "grpc", "metrics"), held_ports(3), strict=True))
    with socket.socket() as blocker:  # no SO_REUSEPORT: nobody else may bind it
        blocker.bind(("0.0.0.0", 0))  # the port in use: one the kernel hands it
        blocker.listen()
        ports[which] = blocker.getsockname()[1]
        args = ["MyModel", "--workers", str(workers)]
        for name, port in ports.items():
            args += [f"--{name}-port", str(port)]
        result = run_to_exit(failing_folder, args, timeout=20)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert str(ports[which]) in result.stderr, result.stderr
    assert "in use" in result.stderr, result.stderr
    assert not result.leftovers
