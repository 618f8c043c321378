"""Structured logs (``--log-format json``, INFERGRAPH_LOG_FORMAT): one JSON object a line.

Unit tests of the formatter and of the request context it reads (puid, W3C and B3 trace
ids, a server span's ids, an exception), then real processes: ``microservice`` and
``serve`` (in one process and with ``--processes``, whose node lines come back as JSON
with a ``node`` field) write nothing but JSON on stderr; a line the user's model logs while
answering carries the request's puid and trace id; the access log's lines have method,
path, status, duration, puid and trace id as fields; bad values exit 2 naming the allowed
ones.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infergraph.cli.main import build_parser
from infergraph.observability import log_context
from infergraph.observability.json_logs import FIELDS, JsonFormatter, utc_time
from infergraph.serving.processes import OUTPUT_LOGGER, _node_line
from infergraph.settings import ComponentSettings, GraphSettings
from tests.helpers import procs
from tests.helpers.doc_blocks import shown
from tests.helpers.ports import HeldPorts

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


def _record(exc_info: Any = None, extra: dict[str, Any] | None = None) -> logging.LogRecord:
    return logging.getLogger("shop.model").makeRecord(
        "shop.model", logging.WARNING, __file__, 1, "hello %s", ("there",), exc_info, extra=extra
    )


def _format(record: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return dict(json.loads(line))


# ---------------------------------------------------------------- the formatter


def test_a_line_outside_a_request() -> None:
    out = _format(_record())
    assert set(out) == {"time", "level", "logger", "message"}
    assert TIME.match(out["time"]), out
    assert (out["level"], out["logger"], out["message"]) == ("WARNING", "shop.model", "hello there")


def test_time_is_utc_iso_8601() -> None:
    assert utc_time(0.25) == "1970-01-01T00:00:00.250Z"
    assert utc_time(1_800_000_000.0) == "2027-01-15T08:00:00.000Z"


def test_an_exception_is_a_string_field() -> None:
    try:
        raise ValueError("bad row")
    except ValueError:
        record = _record(exc_info=sys.exc_info())
    out = _format(record)
    assert out["exc_info"].startswith("Traceback (most recent call last):"), out
    assert out["exc_info"].endswith("ValueError: bad row"), out


def test_extra_fields_are_fields() -> None:
    out = _format(_record(extra={FIELDS: {"status": 200, "path": "/predict"}}))
    assert (out["status"], out["path"]) == (200, "/predict")


@pytest.mark.parametrize(
    ("headers", "ids"),
    [
        pytest.param(
            [(b"seldon-puid", b"p-1"), (b"traceparent", TRACEPARENT.encode())],
            {"puid": "p-1", "trace_id": TRACE_ID, "span_id": SPAN_ID},
            id="w3c",
        ),
        pytest.param(
            [(b"b3", f"{TRACE_ID}-{SPAN_ID}-1".encode())],
            {"trace_id": TRACE_ID, "span_id": SPAN_ID},
            id="b3-single",
        ),
        pytest.param(
            [(b"x-b3-traceid", TRACE_ID[16:].encode()), (b"x-b3-spanid", SPAN_ID.encode())],
            {"trace_id": TRACE_ID[16:].rjust(32, "0"), "span_id": SPAN_ID},
            id="b3-multi-64-bit",
        ),
        pytest.param(
            lambda: (("seldon-puid", "p-2"), ("traceparent", TRACEPARENT)),
            {"puid": "p-2", "trace_id": TRACE_ID, "span_id": SPAN_ID},
            id="grpc-metadata",
        ),
        pytest.param([(b"traceparent", b"00-garbage-01")], {}, id="bad-traceparent"),
        pytest.param([], {}, id="none"),
    ],
)
def test_a_line_within_a_request_names_it(headers: Any, ids: dict[str, str]) -> None:
    _, token = log_context.begin(headers)
    try:
        out = _format(_record())
    finally:
        log_context.end(token)
    assert {k: out[k] for k in ("puid", "trace_id", "span_id") if k in out} == ids
    assert "puid" not in _format(_record())  # the request is over


def test_the_noted_puid_and_server_span_win() -> None:
    request, token = log_context.begin([(b"traceparent", TRACEPARENT.encode())])
    try:
        log_context.note_puid("from-meta")
        log_context.note_puid("later")  # the first one stays
        log_context.note_span(0x1234, 0x56)
        out = _format(_record())
    finally:
        log_context.end(token)
    assert request.puid == "from-meta"
    assert (out["puid"], out["trace_id"], out["span_id"]) == (
        "from-meta",
        f"{0x1234:032x}",
        f"{0x56:016x}",
    )


def test_noting_outside_a_request_does_nothing() -> None:
    log_context.note_puid("p")
    log_context.note_span(1, 2)
    assert log_context.current() is None


# ---------------------------------------------------------------- node lines (--processes)


def test_a_node_json_line_gets_its_node() -> None:
    line = '{"time":"2026-12-03T07:46:26.733Z","level":"INFO","logger":"x","message":"m"}'
    out, message = _node_line("main/a-0", line)
    assert json.loads(out) == {**json.loads(line), "node": "main/a-0"}
    assert message == "m"


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("Traceback (most recent call last):", id="text"),
        pytest.param("{not json", id="brace"),
        pytest.param("[1, 2]", id="json-not-an-object"),
    ],
)
def test_a_node_line_that_is_not_json_becomes_the_message(line: str) -> None:
    out, message = _node_line("a-0", line)
    fields = json.loads(out)
    assert TIME.match(fields.pop("time"))
    assert fields == {"level": "INFO", "logger": OUTPUT_LOGGER, "message": line, "node": "a-0"}
    assert message == line


# ---------------------------------------------------------------- settings and flags


@pytest.mark.parametrize(
    "from_env",
    [
        pytest.param(lambda env: ComponentSettings.from_env(env, {}), id="microservice"),
        pytest.param(GraphSettings.from_env, id="serve"),
    ],
)
def test_the_environment_sets_the_format(from_env: Any) -> None:
    assert from_env({}).log_format == "text"
    assert from_env({"INFERGRAPH_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ValueError, match=r"INFERGRAPH_LOG_FORMAT='yaml'.*use one of text, json"):
        from_env({"INFERGRAPH_LOG_FORMAT": "yaml"})


@pytest.mark.parametrize("command", ["serve", "microservice", "operator"])
def test_a_bad_flag_names_the_allowed_formats(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, *(["x.yaml"] if command == "serve" else []), "--log-format", "yaml"]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "invalid choice: 'yaml' (choose from text, json)" in capsys.readouterr().err.replace(
        "'text', 'json'", "text, json"
    )


# ---------------------------------------------------------------- real processes

MODULE = "shop_logged"
MODELS = """
    import logging

    log = logging.getLogger("shop.model")


    class Scorer:
        def predict(self, X, names, meta=None):
            log.info("scoring %d rows", len(X))
            try:
                raise ValueError("a row was odd")
            except ValueError:
                log.exception("kept going")
            print("a print, not a log line")
            return X
"""


def _lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (failing on the first that is not one)."""
    out = []
    for line in text.splitlines():
        try:
            fields = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}\n{text[-3000:]}") from None
        assert isinstance(fields, dict), line
        assert TIME.match(fields["time"]) and fields["level"] and "logger" in fields, line
        assert isinstance(fields["message"], str), line
        out.append(fields)
    return out


def _post(port: int, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", path, json.dumps(body), {"Content-Type": "application/json", **headers}
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def _wait_for(read: Any, what: str) -> list[dict[str, Any]]:
    """Poll stderr until a line matching ``what`` (a predicate) is there; every line."""
    found: list[list[dict[str, Any]]] = []

    def seen() -> bool:
        lines = _lines(read())
        found[:] = [lines]
        return any(what(line) for line in lines)

    procs.poll(seen, timeout=10.0, what="a log line")
    return found[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "env"),
    [
        pytest.param(["--log-format", "json", "--access-log"], {}, id="flag"),
        pytest.param(
            [], {"INFERGRAPH_LOG_FORMAT": "json", "GUNICORN_ACCESS_LOG": "true"}, id="env"
        ),
    ],
)
def test_microservice_writes_json_lines(
    tmp_path: Path, flags: list[str], env: dict[str, str]
) -> None:
    procs.write_module(tmp_path, MODULE, MODELS)
    with procs.serving(tmp_path, [f"{MODULE}.Scorer", *flags], env=env) as service:
        body = {"meta": {"puid": "p-77"}, "data": {"ndarray": [[1, 2]]}}
        status, _ = _post(service.http, "/api/v1.0/predictions", body, {"traceparent": TRACEPARENT})
        assert status == 200
        assert _post(service.http, "/api/v1.0/predictions", [1], {})[0] == 400
        lines = _wait_for(
            service.stderr, lambda f: f["logger"] == "infergraph.access" and f["status"] == 400
        )
    scoring = [f for f in lines if f["message"] == "scoring 1 rows"]
    assert len(scoring) == 1, lines
    assert scoring[0]["logger"] == "shop.model" and scoring[0]["level"] == "INFO"
    assert (scoring[0]["puid"], scoring[0]["trace_id"], scoring[0]["span_id"]) == (
        "p-77",
        TRACE_ID,
        SPAN_ID,
    )
    kept = next(f for f in lines if f["message"] == "kept going")
    assert kept["level"] == "ERROR" and kept["puid"] == "p-77"
    assert kept["exc_info"].endswith("ValueError: a row was odd"), kept
    access = [f for f in lines if f["logger"] == "infergraph.access" and f["method"] == "POST"]
    assert [(f["method"], f["path"], f["status"]) for f in access] == [
        ("POST", "/api/v1.0/predictions", 200),
        ("POST", "/api/v1.0/predictions", 400),
    ]
    assert (access[0]["puid"], access[0]["trace_id"]) == ("p-77", TRACE_ID)
    assert "trace_id" not in access[1] and "puid" not in access[1]
    assert all(isinstance(f["duration_ms"], float) and f["duration_ms"] >= 0 for f in access)
    assert any(f["message"].startswith("serving Scorer") for f in lines), lines
    stdout = (service.logs / "stdout.txt").read_text()
    assert "a print, not a log line" in stdout  # stdout is the user's own


@pytest.mark.slow
def test_microservice_refuses_a_bad_environment_value(tmp_path: Path) -> None:
    procs.write_module(tmp_path, MODULE, MODELS)
    exited = procs.run_to_exit(
        tmp_path, [f"{MODULE}.Scorer"], env={"INFERGRAPH_LOG_FORMAT": "yaml"}
    )
    assert exited.returncode == 2, exited
    assert (
        "INFERGRAPH_LOG_FORMAT='yaml' is not a log format; use one of text, json" in exited.stderr
    )


MANIFEST = f"""\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: logged
spec:
  predictors:
    - name: main
      componentSpecs:
        - spec:
            containers:
              - name: scorer
                image: example.com/scorer:1
                env: [{{name: MODEL_NAME, value: {MODULE}.Scorer}}]
      graph:
        name: scorer
        type: MODEL
"""


@contextlib.contextmanager
def _serve(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Any]:
    (folder / "deployment.yaml").write_text(MANIFEST)
    held = HeldPorts(2)
    http_port, grpc_port = held.ports
    logs = folder / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [procs.PYTHON, "-m", "infergraph", "serve", "deployment.yaml", "--path", str(folder),
             "--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port),
             *args],
            cwd=folder, env=procs.clean_env(env), stdin=subprocess.DEVNULL,
            stdout=out, stderr=err, start_new_session=True,
        )  # fmt: skip
    service = procs.Service(proc, http_port, grpc_port, http_port, logs, held=held)
    try:
        service.wait_ready()
        yield service
    finally:
        service.kill()


@pytest.mark.slow
@pytest.mark.parametrize(
    "processes",
    [pytest.param(False, id="one-process"), pytest.param(True, id="processes")],
)
def test_serve_writes_json_lines(tmp_path: Path, processes: bool) -> None:
    procs.write_module(tmp_path, MODULE, MODELS)
    flags = ["--log-format", "json", "--access-log", *(["--processes"] if processes else [])]
    with _serve(tmp_path, *flags) as server:
        status, headers = _post(
            server.http,
            "/api/v1.0/predictions",
            {"data": {"ndarray": [[1, 2]]}},
            {"traceparent": TRACEPARENT},
        )
        assert status == 200
        puid = headers["seldon-puid"]
        lines = _wait_for(
            server.stderr,
            lambda f: (
                f["logger"] == "infergraph.access" and f.get("puid") == puid and "node" not in f
            ),
        )
    scoring = next(f for f in lines if f["message"] == "scoring 1 rows")
    assert (scoring["puid"], scoring["trace_id"]) == (puid, TRACE_ID), scoring
    access = next(  # the orchestrator's line: with REST hops, a node process logs its own too
        f
        for f in lines
        if f["logger"] == "infergraph.access" and f.get("puid") == puid and "node" not in f
    )
    assert (access["method"], access["path"], access["status"], access["trace_id"]) == (
        "POST",
        "/api/v1.0/predictions",
        200,
        TRACE_ID,
    )
    if processes:  # the lines docs/logging.md shows: the same fields, from the same loggers
        for line in shown("docs/logging.md", "tests/observability/test_json_logs.py")[0].lines:
            doc = json.loads(line)
            real = next(f for f in (scoring, access) if f["logger"] == doc["logger"])
            assert set(real) == set(doc), (doc, real)
        # the node's own lines, as JSON with the node's tag; what it printed, wrapped
        assert scoring["node"] == "scorer-0", scoring
        printed = next(f for f in lines if f["message"] == "a print, not a log line")
        assert (printed["node"], printed["logger"]) == ("scorer-0", OUTPUT_LOGGER)
        started = next(f for f in lines if f["message"].startswith("node scorer-0: started"))
        assert "node" not in started  # the orchestrator's own line
        assert any(f.get("node") == "scorer-0" and f["logger"] == "uvicorn.error" for f in lines)
    else:
        assert "node" not in scoring


@pytest.mark.slow
def test_serve_reports_a_start_up_error_as_json(tmp_path: Path) -> None:
    (tmp_path / "deployment.yaml").write_text(MANIFEST.replace(MODULE, "missing_module"))
    proc = subprocess.run(
        [procs.PYTHON, "-m", "infergraph", "serve", "deployment.yaml", "--path", str(tmp_path),
         "--log-format", "json"],
        cwd=tmp_path, env=procs.clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = [f for f in _lines(proc.stderr) if f["level"] == "ERROR"]
    assert errors and errors[-1]["logger"] == "infergraph.cli", proc.stderr
    assert errors[-1]["message"].startswith("infergraph serve: "), errors
    assert "missing_module" in errors[-1]["message"], errors


def test_operator_refuses_a_bad_environment_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERGRAPH_LOG_FORMAT", "yaml")
    args = build_parser().parse_args(["operator"])
    assert args.command(args) == 2
    assert "use one of text, json" in capsys.readouterr().err
