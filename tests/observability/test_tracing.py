"""OpenTelemetry tracing (docs/observability.md): what a user of a tracing backend sees.

A request through ``serve --processes`` reaches a real OTLP/gRPC receiver (a grpcio server
implementing ``TraceService/Export`` on the published ``opentelemetry-proto`` messages) as
one trace: the orchestrator's server span, a child per node call, and each node process's
span a child of the hop that called it. The trace context is read from W3C and B3 headers;
OTLP over HTTP/protobuf works too; with tracing off, OpenTelemetry is never imported.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from infergraph.errors import BadRequest
from infergraph.graph.executor import CallContext, Executor
from infergraph.graph.plan import PlanNode, PredictorPlan
from infergraph.observability.executor_metrics import ExecutorMetrics
from infergraph.observability.metrics import Registry
from infergraph.observability.tracing import Parent, parent_of
from infergraph.protocol.message import DataKind, Feedback, Message
from infergraph.settings import TracingSettings
from tests.helpers.ports import HoldPorts
from tests.helpers.procs import clean_env, http_request, poll
from tests.serving.test_processes import NODES, chain_yaml

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-01"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


def spans_of(request: Any) -> list[dict[str, Any]]:
    """The spans of an ExportTraceServiceRequest, flattened, with their service name."""
    out = []
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {}
                for a in span.attributes:
                    value = a.value
                    attributes[a.key] = getattr(value, value.WhichOneof("value"))
                out.append(
                    {
                        "service": resource.get("service.name"),
                        "name": span.name,
                        "kind": span.kind,
                        "trace_id": int.from_bytes(span.trace_id, "big"),
                        "span_id": int.from_bytes(span.span_id, "big"),
                        "parent": int.from_bytes(span.parent_span_id, "big"),
                        "attributes": attributes,
                    }
                )
    return out


class Receiver:
    """An OTLP/gRPC trace receiver on a free port: what it got, span by span."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(2))
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
        )
        service, method = EXPORT.rsplit("/", 1)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.lstrip("/"), {method: handler}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _export(self, request: Any, context: Any) -> Any:
        with self._lock:
            self.spans.extend(spans_of(request))
        return trace_service_pb2.ExportTraceServiceResponse()

    def got(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.stop(None)


def start_chain(
    folder: Path, env: dict[str, str], transport: str, ports: list[int]
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``serve --processes`` on TRANSFORMER ``double`` -> MODEL ``model``, on ``ports``
    (REST, gRPC: held by the caller)."""
    (folder / "nodes.py").write_text(NODES)
    spec = chain_yaml(folder)
    spec["spec"]["transport"] = transport
    (folder / "graph.yaml").write_text(yaml.safe_dump(spec))
    http, grpc_port = ports
    log = folder / "serve.log"
    args = ["serve", "graph.yaml", "--processes", "--path", str(folder), "--host", "127.0.0.1"]
    args += ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infergraph", *args],
            cwd=folder,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    return proc, http, log


@pytest.mark.slow
@pytest.mark.parametrize(
    ("transport", "served_as"),
    [
        pytest.param("grpc", r"/inference\.GRPCInferenceService/ModelInfer", id="grpc-hops"),
        pytest.param("rest", r"POST /(transform-input|predict)", id="rest-hops"),
    ],
)
def test_a_request_through_node_processes_is_one_trace(
    tmp_path: Path, receiver: Receiver, transport: str, served_as: str, held_ports: HoldPorts
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    proc, port, log = start_chain(tmp_path, env, transport, held_ports(2))
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            return http_request(port, "GET", "/ready")[0] == 200

        poll(ready, timeout=60, what=f"ready; log:\n{log.read_text()[-3000:]}")
        body = json.dumps({"data": {"ndarray": [[1, 2]]}}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"content-type": "application/json", "traceparent": TRACEPARENT}
        conn.request("POST", "/api/v1.0/predictions", body, headers)
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        puid = json.loads(answer.read())["meta"]["puid"]
        conn.close()
        spans = poll(
            lambda: s if len(s := receiver.got()) >= 5 else None,
            timeout=20,
            what=f"5 spans; got {receiver.got()}; log:\n{log.read_text()[-3000:]}",
        )
    finally:
        proc.terminate()
        proc.wait(20)

    assert {s["trace_id"] for s in spans} == {TRACE_ID}
    by_id = {s["span_id"]: s for s in spans}
    (root,) = [s for s in spans if s["parent"] == CALLER_SPAN]
    assert (root["name"], root["kind"]) == ("predict", SERVER)
    assert root["attributes"]["seldon.puid"] == puid
    hops = sorted((s for s in spans if s["parent"] == root["span_id"]), key=lambda s: s["name"])
    assert [(h["name"], h["kind"]) for h in hops] == [
        ("double /transform-input", CLIENT),
        ("model /predict", CLIENT),
    ]
    assert [h["attributes"]["infergraph.node.type"] for h in hops] == ["TRANSFORMER", "MODEL"]
    for hop in hops:
        assert hop["attributes"]["seldon.puid"] == puid
        assert hop["attributes"]["infergraph.status"] == "200"
        (served,) = [s for s in spans if s["parent"] == hop["span_id"]]
        assert served["kind"] == SERVER
        assert served["service"] == hop["attributes"]["infergraph.node.name"]
        assert re.fullmatch(served_as, served["name"]), served
    assert len(by_id) == len(spans) == 5
    assert {s["service"] for s in (root, *hops)} == {"chain"}


@pytest.mark.slow
def test_spans_still_buffered_are_exported_when_serve_stops(
    tmp_path: Path, receiver: Receiver, held_ports: HoldPorts
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # never on schedule: only the shutdown exports
    }
    proc, port, log = start_chain(tmp_path, env, "grpc", held_ports(2))
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            return http_request(port, "GET", "/ready")[0] == 200

        poll(ready, timeout=60, what=f"ready; log:\n{log.read_text()[-3000:]}")
        assert (
            http_request(port, "POST", "/api/v1.0/predictions", {"data": {"ndarray": [[1]]}})[0]
            == 200
        )
        assert receiver.got() == []
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    spans = receiver.got()
    assert len(spans) == 5, spans
    assert {s["service"] for s in spans} == {"chain", "double", "model"}


# ---------------------------------------------------------------- trace context


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"traceparent": TRACEPARENT, "tracestate": "k=v"},
            Parent(TRACE_ID, CALLER_SPAN, True, "k=v"),
            id="w3c",
        ),
        pytest.param(
            {"traceparent": f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-00"},
            Parent(TRACE_ID, CALLER_SPAN, False),
            id="w3c-not-sampled",
        ),
        pytest.param(
            {"b3": f"{TRACE_ID:032x}-{CALLER_SPAN:016x}-1"},
            Parent(TRACE_ID, CALLER_SPAN, True),
            id="b3-single",
        ),
        pytest.param(
            {"b3": f"a3ce929d0e0e4736-{CALLER_SPAN:016x}"},
            Parent(0xA3CE929D0E0E4736, CALLER_SPAN, True),
            id="b3-single-64-bit-trace-id",
        ),
        pytest.param(
            {"x-b3-traceid": f"{TRACE_ID:032x}", "x-b3-spanid": f"{CALLER_SPAN:016x}"},
            Parent(TRACE_ID, CALLER_SPAN, True),
            id="b3-multi",
        ),
        pytest.param(
            {
                "x-b3-traceid": f"{TRACE_ID:032x}",
                "x-b3-spanid": f"{CALLER_SPAN:016x}",
                "x-b3-sampled": "0",
            },
            Parent(TRACE_ID, CALLER_SPAN, False),
            id="b3-multi-not-sampled",
        ),
        pytest.param(
            {
                "traceparent": f"00-{'0' * 32}-{CALLER_SPAN:016x}-01",
                "b3": f"{TRACE_ID:032x}-{CALLER_SPAN:016x}-1",
            },
            Parent(TRACE_ID, CALLER_SPAN, True),
            id="invalid-w3c-then-b3",
        ),
        pytest.param({"traceparent": "00-xyz-abc-01"}, None, id="malformed"),
        pytest.param({"traceparent": f"ff-{TRACE_ID:032x}-{CALLER_SPAN:016x}-01"}, None, id="ff"),
        pytest.param({"b3": "0"}, None, id="b3-sampling-only"),
        pytest.param({}, None, id="none"),
    ],
)
def test_the_callers_span_is_read_from_w3c_or_b3_headers(
    headers: dict[str, str], expected: Parent | None
) -> None:
    assert parent_of(headers) == expected


@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        pytest.param({}, None, TracingSettings(), id="off"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
            None,
            TracingSettings(enabled=True),
            id="otlp-endpoint",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            None,
            TracingSettings(enabled=True, protocol="http/protobuf"),
            id="http",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"},
            None,
            TracingSettings(),
            id="sdk-disabled",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "none", "TRACING": "1"}, None, TracingSettings(), id="none"
        ),
        pytest.param(
            {"TRACING": "1", "JAEGER_AGENT_HOST": "jaeger", "JAEGER_AGENT_PORT": "6831"},
            None,
            TracingSettings(enabled=True, endpoint="http://jaeger:4317"),
            id="seldon-jaeger-agent",
        ),
        pytest.param(
            {
                "JAEGER_ENDPOINT": "http://jaeger:14268/api/traces",
                "JAEGER_SERVICE_NAME": "iris",
                "JAEGER_TRACE_PROPAGATION_TYPE": "b3",
            },
            1,
            TracingSettings(
                enabled=True,
                protocol="http/protobuf",
                endpoint="http://jaeger:4318/v1/traces",
                service_name="iris",
                b3=True,
            ),
            id="seldon-jaeger-collector-by-flag",
        ),
        pytest.param({"TRACING": "1"}, 0, TracingSettings(), id="flag-0-wins"),
    ],
)
def test_tracing_settings_from_otel_and_seldon_env(
    env: dict[str, str], flag: int | None, expected: TracingSettings
) -> None:
    assert TracingSettings.from_env(env, flag) == expected


def test_an_unsupported_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="http/json"):
        TracingSettings.from_env(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        )


# ---------------------------------------------------------------- in process


class _Node:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def predict(self, msg: Message, wire: str) -> Message:
        return Message(DataKind.NDARRAY, self.answer)

    async def route(self, msg: Message, wire: str) -> Message:
        return Message(DataKind.NDARRAY, [[1]])


def test_node_spans_say_the_route_a_router_chose() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from infergraph.observability.otel_tracing import OtelTracing

    exported = InMemorySpanExporter()
    tracing = OtelTracing(TracingSettings(enabled=True), "bandit", exported)
    a = PlanNode("a", _Node([[0]]), "", predict=True)  # type: ignore[arg-type]
    b = PlanNode("b", _Node([[1]]), "", predict=True)  # type: ignore[arg-type]
    router = PlanNode("router", _Node(None), "", route=True, children=(a, b))  # type: ignore[arg-type]
    plan = PredictorPlan("default", router, 100, False, "")
    executor = Executor(plan, ExecutorMetrics(Registry(), "bandit", "default", ""), None, tracing)
    ctx = CallContext("puid-1", {"traceparent": TRACEPARENT})
    answer = asyncio.run(executor.predict(Message(DataKind.NDARRAY, [[1]]), ctx))
    tracing.shutdown()
    assert answer.data == [[1]]
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert set(spans) == {"predict", "router /route", "b /predict"}
    route = spans["router /route"]
    assert route.attributes is not None
    assert route.attributes["infergraph.route"] == 1
    assert route.attributes["infergraph.node.type"] == "ROUTER"
    assert route.parent is not None and route.parent.span_id == spans["predict"].context.span_id
    assert {s.context.trace_id for s in spans.values()} == {TRACE_ID}


class _Refusing:
    async def predict(self, msg: Message, wire: str) -> Message:
        raise BadRequest("no rows")

    async def send_feedback(self, feedback: Feedback, wire: str) -> Message:
        return Message(DataKind.NDARRAY, [])


def test_a_failed_node_call_and_a_feedback_are_traced() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from infergraph.observability.otel_tracing import OtelTracing

    exported = InMemorySpanExporter()
    tracing = OtelTracing(TracingSettings(enabled=True), "g", exported)
    node = PlanNode("m", _Refusing(), "", predict=True, feedback=True)  # type: ignore[arg-type]
    plan = PredictorPlan("default", node, 100, False, "")
    executor = Executor(plan, ExecutorMetrics(Registry(), "g", "default", ""), None, tracing)
    headers = {"traceparent": TRACEPARENT}
    with pytest.raises(BadRequest):
        asyncio.run(executor.predict(Message(DataKind.NDARRAY, [[1]]), CallContext("p", headers)))
    feedback = Feedback(reward=1.0)
    asyncio.run(executor.feedback(feedback, CallContext("p", headers)))
    tracing.shutdown()
    spans = [(s.name, s) for s in exported.get_finished_spans()]
    assert [name for name, _ in spans] == ["m /predict", "predict", "m /send-feedback", "feedback"]
    failed = spans[0][1]
    assert failed.attributes is not None and failed.attributes["infergraph.status"] == "400"
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    assert spans[1][1].status.status_code is StatusCode.ERROR
    assert spans[2][1].parent is not None
    assert spans[2][1].parent.span_id == spans[3][1].context.span_id
    assert {s.context.trace_id for _, s in spans} == {TRACE_ID}


def test_tracing_off_never_imports_opentelemetry(tmp_path: Path) -> None:
    """A whole graph served and called in process with no OTEL_* or TRACING set."""
    code = (
        "import asyncio, sys\n"
        "from infergraph.graph.executor import CallContext, Executor\n"
        "from infergraph.graph.plan import PlanNode, PredictorPlan\n"
        "from infergraph.observability.executor_metrics import ExecutorMetrics\n"
        "from infergraph.observability.metrics import Registry\n"
        "from infergraph.observability.tracing import start_tracing\n"
        "from infergraph.protocol.message import DataKind, Message\n"
        "from infergraph.serving import graph_server, server\n"
        "from infergraph.settings import GraphSettings\n"
        "class Node:\n"
        "    async def predict(self, msg, wire):\n"
        "        return msg\n"
        "tracing = start_tracing(GraphSettings.from_env().tracing, 'g')\n"
        "assert tracing is None\n"
        "plan = PredictorPlan('p', PlanNode('m', Node(), '', predict=True), 100, False, '')\n"
        "ex = Executor(plan, ExecutorMetrics(Registry(), 'g', 'p', ''), None, tracing)\n"
        "ctx = CallContext('x', {'traceparent': '" + TRACEPARENT + "'})\n"
        "asyncio.run(ex.predict(Message(DataKind.NDARRAY, [[1]]), ctx))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_TRACES_EXPORTER": ""}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "[]"


class _HttpReceiver(BaseHTTPRequestHandler):
    got: list[tuple[str, str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        self.got.append((self.path, self.headers["content-type"], spans_of(request)))
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_spans_go_over_otlp_http_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    from infergraph.observability.tracing import start_tracing

    server = ThreadingHTTPServer(("127.0.0.1", 0), _HttpReceiver)
    _HttpReceiver.got = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        # the exporter reads the rest of OTEL_* itself, as the SDK documents
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        settings = TracingSettings.from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        )
        tracing = start_tracing(settings, "node-a")
        assert tracing is not None
        with tracing.request("predict", {"traceparent": TRACEPARENT}, {"k": "v"}):
            pass
        tracing.shutdown()  # exports, and has the answer, before it returns
    finally:
        server.shutdown()
        server.server_close()
    ((path, content_type, spans),) = _HttpReceiver.got
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    ((span,),) = [spans]
    assert (span["service"], span["name"], span["trace_id"], span["parent"]) == (
        "node-a",
        "predict",
        TRACE_ID,
        CALLER_SPAN,
    )
    assert span["attributes"] == {"k": "v"}


# ---------------------------------------------------------------- the flags


@pytest.mark.parametrize(
    ("argv", "env", "enabled"),
    [
        pytest.param(["microservice", "M", "--tracing", "1"], {}, True, id="microservice-1"),
        pytest.param(["microservice", "M"], {"TRACING": "1"}, True, id="microservice-env"),
        pytest.param(
            ["microservice", "M", "--tracing", "0"], {"TRACING": "1"}, False, id="microservice-0"
        ),
        pytest.param(["microservice", "M"], {}, False, id="microservice-off"),
    ],
)
def test_microservice_tracing_flag_turns_tracing_on(
    argv: list[str], env: dict[str, str], enabled: bool
) -> None:
    from infergraph.cli.main import build_parser
    from infergraph.cli.microservice import settings_from_args

    args = build_parser().parse_args(argv)
    assert settings_from_args(args, env).tracing.enabled is enabled


def test_serve_tracing_flag_turns_tracing_on_and_reaches_the_node_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infergraph.cli.main import build_parser
    from infergraph.cli.serve import settings_from_args
    from infergraph.graph.nodes import NodeProcess
    from infergraph.serving.processes import _command

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "TRACING"):
        monkeypatch.delenv(name, raising=False)
    off = settings_from_args(build_parser().parse_args(["serve", "g.yaml"]))
    on = settings_from_args(build_parser().parse_args(["serve", "g.yaml", "--tracing"]))
    assert (off.tracing.enabled, on.tracing.enabled) == (False, True)
    node = NodeProcess("default", "model", "m:1", {"MODEL_NAME": "M"}, 1, 2, 3, "model-0")
    assert "--tracing" not in _command(off, 1)(node)
    command = _command(on, 1)(node)
    assert command[command.index("--tracing") + 1] == "1"


async def test_a_grpc_request_to_the_orchestrator_continues_the_callers_trace(
    tmp_path: Path,
) -> None:
    """Over the orchestrator's gRPC API (Seldon's ``Predict``), B3 in the call's metadata;
    a local router's node span says which child it chose."""
    from google.protobuf import json_format
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from infergraph.observability.otel_tracing import OtelTracing
    from infergraph.protocol.proto import prediction_pb2 as pb
    from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
    from infergraph.transport.grpc.graph import build_graph_grpc_server
    from tests.helpers.graph_fixtures import GraphHarness, deployment, unit

    exported = InMemorySpanExporter()
    tracing = OtelTracing(TracingSettings(enabled=True), "g", exported)
    models = [unit(n, "MODEL", cls="Model", params={"add": a}) for n, a in (("a", 1.0), ("b", 2.0))]
    graph = unit("r", "ROUTER", *models, cls="Router", params={"choice": 1})
    async with GraphHarness(tmp_path) as harness:
        served = await harness.serve(deployment(graph))
        for executor in served.dp.executors.values():  # as build_dataplane would, by settings
            executor.tracing = tracing
        server = build_graph_grpc_server(served.dp, max_message_size=1 << 20)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                request = json_format.ParseDict({"data": {"ndarray": [[1.0]]}}, pb.SeldonMessage())
                b3 = (("x-b3-traceid", f"{TRACE_ID:032x}"), ("x-b3-spanid", f"{CALLER_SPAN:016x}"))
                await pb_grpc.SeldonStub(channel).Predict(request, metadata=b3, timeout=10)
        finally:
            await server.stop(None)
    tracing.shutdown()
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert set(spans) == {"predict", "r /route", "b /predict"}
    assert {s.context.trace_id for s in spans.values()} == {TRACE_ID}
    root = spans["predict"]
    assert root.parent is not None and root.parent.span_id == CALLER_SPAN
    assert spans["r /route"].attributes is not None
    assert spans["r /route"].attributes["infergraph.route"] == 1
