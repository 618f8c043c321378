"""Typed settings, built once at the entry point. The only reader of ``os.environ``.

Seldon's environment names are honoured with Seldon's defaults, so a container
spec written for ``seldon-core-microservice`` configures infergraph unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infergraph.wire.limits import WireLimits
from infergraph.wire.tls import TlsFiles

__all__ = [
    "FEEDBACK_ID_CAPACITY",
    "FEEDBACK_ID_TTL",
    "GRPC_SERVERS",
    "LOG_FORMATS",
    "SERVICE_TYPES",
    "TRACE_PROTOCOLS",
    "ComponentSettings",
    "GraphSettings",
    "TracingSettings",
    "log_format_from_env",
    "read_annotations",
]

GRPC_SERVERS = ("native", "threads", "asyncio")
"""The gRPC servers a process can run (``--grpc-server``, INFERGRAPH_GRPC_SERVER)."""

LOG_FORMATS = ("text", "json")
"""How a server writes its log lines on stderr (``--log-format``, INFERGRAPH_LOG_FORMAT)."""

SERVICE_TYPES = (
    "MODEL",
    "ROUTER",
    "TRANSFORMER",
    "COMBINER",
    "OUTLIER_DETECTOR",
    "OUTPUT_TRANSFORMER",
)
"""Seldon's ``--service-type`` / ``SERVICE_TYPE`` values (every endpoint is served whatever
the value, as in Seldon)."""

ANNOTATIONS_FILE = "/etc/podinfo/annotations"
DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024 * 1024
FEEDBACK_ID_CAPACITY = 100_000
"""Predictions whose routing is kept in memory for feedback by request id, by default."""
FEEDBACK_ID_TTL = 3600.0
"""Seconds a prediction's routing is kept for feedback by request id, by default."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "t", "yes", "y", "on")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not a number") from None


def log_format_from_env(env: Mapping[str, str]) -> str:
    """INFERGRAPH_LOG_FORMAT (``text`` when unset); ValueError naming the allowed values."""
    value = (env.get("INFERGRAPH_LOG_FORMAT") or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(
            f"INFERGRAPH_LOG_FORMAT={env.get('INFERGRAPH_LOG_FORMAT')!r} is not a log format; "
            f"use one of {', '.join(LOG_FORMATS)}"
        )
    return value


def read_annotations(path: str | Path = ANNOTATIONS_FILE) -> dict[str, str]:
    """Read the Downward API annotations file: lines of ``key="value"``."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


@dataclass(frozen=True)
class ComponentSettings:
    """How one component is served (``infergraph microservice``)."""

    interface_name: str = ""
    """``Module`` or ``package.module.Class``."""
    service_type: str = "MODEL"
    """MODEL, ROUTER, TRANSFORMER, COMBINER, OUTPUT_TRANSFORMER, OUTLIER_DETECTOR: informational."""
    parameters: str = "[]"
    """JSON list of ``{name, value, type}`` passed to the constructor."""
    parameters_source: str = "--parameters"
    """Where ``parameters`` came from, named in error messages."""
    path: str = "."
    """Folder the user's module is imported from."""
    http_port: int = 9000
    grpc_port: int = 5000
    metrics_port: int = 6000
    metrics_endpoint: str = "/metrics"
    host: str = "0.0.0.0"
    workers: int = 1
    """Worker processes sharing the ports (SO_REUSEPORT); ``load()`` runs in each."""
    threads: int = 1
    """Threads per worker for sync user methods (Seldon's GUNICORN_THREADS)."""
    grpc_workers: int = 1
    """0 disables the gRPC server, as GRPC_WORKERS=0 does in Seldon."""
    log_level: str = "INFO"
    log_format: str = "text"
    """``text`` (``time LEVEL logger: message``) or ``json``, one object a line with the
    request's puid and trace ids (``--log-format``, INFERGRAPH_LOG_FORMAT)."""
    access_log: bool = False
    """One line per REST request on the ``infergraph.access`` logger (``--access-log``,
    GUNICORN_ACCESS_LOG); uvicorn (``--http-server uvicorn``) writes its own instead."""
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    """Largest REST body and gRPC message accepted, in bytes."""
    grpc_max_message_size: int | None = None
    """Overrides max_message_size for gRPC (annotation seldon.io/grpc-max-message-size)."""
    rest_timeout_ms: int | None = None
    """Per-request limit for REST calls (annotation seldon.io/rest-timeout); None: none."""
    include_metrics_in_client_response: bool = True
    payload_passthrough: bool = False
    model_metadata: str = ""
    unit_id: str = ""
    """PREDICTIVE_UNIT_ID: the node name, used in requestPath and metric labels."""
    unit_image: str = ""
    predictor_id: str = ""
    predictor_labels: dict[str, str] = field(default_factory=dict)
    deployment_id: str = ""
    executor_enabled: bool = True
    http_server: str = "infergraph"
    """The HTTP server: infergraph's own (httptools, fastest) or uvicorn (ASGI)."""
    max_batch_size: int = 1
    """Adaptive batching of predict: the most requests stacked into one call (1 = off)."""
    max_batch_time: float = 0.0
    """Seconds a batch may wait for more requests (0: batch only what is already queued)."""
    malloc_tuning: bool = True
    """Keep large request buffers in the heap (``mallopt``; env INFERGRAPH_MALLOC_TUNING=0
    keeps glibc's defaults, e.g. to set MALLOC_MMAP_THRESHOLD_ yourself)."""
    grpc_server: str = "native"
    """infergraph's own HTTP/2 server (``native``, a tenth of grpcio's cost a call),
    grpcio's thread-pool server bridged to the event loop (``threads``) or its asyncio
    server (``asyncio``); env INFERGRAPH_GRPC_SERVER."""
    sync_mode: str = "auto"
    """Where sync user methods run: auto (on the thread pool until a run of calls each under
    2 ms, then inline until one is slower), inline, or thread."""
    tracing: TracingSettings = field(default_factory=lambda: TracingSettings())
    """OpenTelemetry tracing of the calls this component serves (off by default)."""
    wire: WireLimits = field(default_factory=WireLimits)
    """The HTTP/1.1 and HTTP/2 limits of this component's servers (env INFERGRAPH_HTTP1_*,
    INFERGRAPH_HTTP2_*; ``docs/limits.md``)."""
    tls: TlsFiles | None = None
    """TLS on the REST and gRPC ports (env INFERGRAPH_TLS_CERT_FILE, _KEY_FILE, and _CA_FILE
    for mTLS; ``docs/security.md``); None: plain. The metrics port stays plain."""
    node_auth_token_file: str = ""
    """Bearer tokens the prediction endpoints require, one a line (env
    INFERGRAPH_NODE_AUTH_TOKEN_FILE); empty: none required."""

    @property
    def grpc_message_limit(self) -> int:
        return self.grpc_max_message_size or self.max_message_size

    def replace(self, **changes: Any) -> ComponentSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> ComponentSettings:
        """Defaults, then Seldon's environment variables and pod annotations."""
        env = os.environ if env is None else env
        annotations = read_annotations() if annotations is None else annotations
        labels: dict[str, str] = {}
        raw_labels = env.get("PREDICTOR_LABELS", "")
        if raw_labels:
            try:
                parsed = orjson.loads(raw_labels)
            except orjson.JSONDecodeError:
                raise ValueError(f"PREDICTOR_LABELS is not JSON: {raw_labels!r}") from None
            labels = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        grpc_limit = annotations.get("seldon.io/grpc-max-message-size")
        rest_timeout = annotations.get("seldon.io/rest-timeout", "")
        return cls(
            interface_name=env.get("MODEL_NAME", ""),
            service_type=env.get("SERVICE_TYPE", "MODEL") or "MODEL",
            parameters=env.get("PREDICTIVE_UNIT_PARAMETERS", "[]") or "[]",
            parameters_source=(
                "PREDICTIVE_UNIT_PARAMETERS"
                if env.get("PREDICTIVE_UNIT_PARAMETERS")
                else "--parameters"
            ),
            http_port=_int(env, "PREDICTIVE_UNIT_HTTP_SERVICE_PORT", 9000),
            grpc_port=_int(env, "PREDICTIVE_UNIT_GRPC_SERVICE_PORT", 5000),
            metrics_port=_int(env, "PREDICTIVE_UNIT_METRICS_SERVICE_PORT", 6000),
            metrics_endpoint=env.get("PREDICTIVE_UNIT_METRICS_ENDPOINT", "/metrics") or "/metrics",
            workers=_int(env, "GUNICORN_WORKERS", 1),
            threads=_int(env, "GUNICORN_THREADS", 1),
            grpc_workers=_int(env, "GRPC_WORKERS", 1),
            log_level=env.get("SELDON_LOG_LEVEL", "INFO") or "INFO",
            log_format=log_format_from_env(env),
            access_log=_bool(env.get("GUNICORN_ACCESS_LOG"), False),
            max_message_size=_int(env, "INFERGRAPH_MAX_MESSAGE_SIZE", DEFAULT_MAX_MESSAGE_SIZE),
            grpc_max_message_size=int(grpc_limit) if grpc_limit and grpc_limit.isdigit() else None,
            rest_timeout_ms=int(rest_timeout) if rest_timeout.isdigit() else None,
            include_metrics_in_client_response=_bool(
                env.get("INCLUDE_METRICS_IN_CLIENT_RESPONSE"), True
            ),
            payload_passthrough=_bool(env.get("PAYLOAD_PASSTHROUGH"), False),
            model_metadata=env.get("MODEL_METADATA", ""),
            unit_id=env.get("PREDICTIVE_UNIT_ID", ""),
            unit_image=env.get("PREDICTIVE_UNIT_IMAGE", ""),
            predictor_id=env.get("PREDICTOR_ID", ""),
            predictor_labels=labels,
            deployment_id=env.get("SELDON_DEPLOYMENT_ID", ""),
            executor_enabled=_bool(env.get("SELDON_EXECUTOR_ENABLED"), True),
            sync_mode=env.get("INFERGRAPH_SYNC_MODE", "auto") or "auto",
            http_server=env.get("INFERGRAPH_HTTP_SERVER", "infergraph") or "infergraph",
            max_batch_size=_int(env, "INFERGRAPH_MAX_BATCH_SIZE", 1),
            max_batch_time=_float(env, "INFERGRAPH_MAX_BATCH_TIME", 0.0),
            malloc_tuning=_bool(env.get("INFERGRAPH_MALLOC_TUNING"), True),
            grpc_server=env.get("INFERGRAPH_GRPC_SERVER", "native") or "native",
            tracing=TracingSettings.from_env(env),
            wire=WireLimits.from_env(env),
            tls=TlsFiles.from_env(env, "INFERGRAPH_TLS_"),
            node_auth_token_file=env.get("INFERGRAPH_NODE_AUTH_TOKEN_FILE", ""),
            **cls._model_storage_from_env(env),
        )

    # ---------------------------------------------------------------- model storage
    # Read by the prepackaged model servers and ``infergraph fetch-model``
    # (``infergraph.servers``); nothing else uses these fields.

    model_cache_dir: str = ""
    """Where remote models (s3://, gs://, https://) are downloaded and kept, one folder per
    URI (env INFERGRAPH_MODEL_CACHE; default ``$XDG_CACHE_HOME/infergraph/models``, else
    ``~/.cache/infergraph/models``)."""
    trust_remote_pickle: bool = False
    """Unpickle ``model.joblib``/``model.pkl`` downloaded from a remote URI (env
    INFERGRAPH_TRUST_REMOTE_PICKLE=1). Unpickling runs code, so it is off by default; local
    files are always trusted."""
    s3_endpoint_url: str = ""
    """The S3 API endpoint for s3:// URIs, e.g. MinIO (env AWS_ENDPOINT_URL_S3, else
    AWS_ENDPOINT_URL); empty: AWS. Credentials come from the usual AWS env and files."""

    @staticmethod
    def _model_storage_from_env(env: Mapping[str, str]) -> dict[str, Any]:
        cache = env.get("INFERGRAPH_MODEL_CACHE", "")
        if not cache and env.get("XDG_CACHE_HOME"):
            cache = str(Path(env["XDG_CACHE_HOME"]) / "infergraph" / "models")
        return {
            "model_cache_dir": cache,
            "trust_remote_pickle": _bool(env.get("INFERGRAPH_TRUST_REMOTE_PICKLE"), False),
            "s3_endpoint_url": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", ""),
        }


@dataclass(frozen=True)
class GraphSettings:
    """How a whole graph is served (``infergraph serve``)."""

    http_port: int = 8000
    grpc_port: int = 5001
    host: str = "0.0.0.0"
    metrics_port: int = 0
    """A port of its own for Prometheus (``/metrics`` and ``/prometheus``), beside the REST
    port's ``/prometheus`` (``--metrics-port``; 0, the default: none)."""
    workers: int = 1
    """Orchestrator processes sharing the REST, gRPC and metrics ports (SO_REUSEPORT), each
    serving the whole graph (``--workers``); their metrics are merged on every scrape."""
    path: str = "."
    """Folder the nodes' Python classes (container env MODEL_NAME) are imported from; its
    ``.s2i/environment`` gives MODEL_NAME to containers that set none (``--path``)."""
    images: Mapping[str, str] = field(default_factory=dict)
    """Source folder by container image (``--image IMAGE=DIR``), used instead of ``path`` for
    the containers of that image: an exact ``repo/name:tag``, or a name for every tag."""
    processes: bool = False
    """Run each componentSpec as its own process (replicas honoured), called over gRPC."""
    remote: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Nodes other processes already serve (``--remote NODE=HOST:PORT``, as the node
    containers of a pod): by node name or ``predictor/node``, the addresses the orchestrator
    calls instead of serving the node itself, over the transport ``--processes`` uses."""
    redis_url: str | None = None
    """Share bandit state across replicas and processes through this Redis (and the routings
    kept for feedback by request id)."""
    feedback_id_capacity: int = FEEDBACK_ID_CAPACITY
    """How many recent predictions keep their routing in memory, so that a feedback naming
    only the request id (puid, or V2 request ``id``) reaches the nodes that served it (env
    INFERGRAPH_FEEDBACK_ID_CAPACITY; 0 turns feedback by id off). With ``redis_url`` the
    routings live in Redis instead, bounded by the TTL alone."""
    feedback_id_ttl: float = FEEDBACK_ID_TTL
    """Seconds a prediction's routing is kept for feedback by request id, in memory or in
    Redis (env INFERGRAPH_FEEDBACK_ID_TTL; 0 turns feedback by id off)."""
    sticky_header: str | None = None
    """Pin a client to one predictor by the value of this request header."""
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    log_level: str = "INFO"
    log_format: str = "text"
    """As :attr:`ComponentSettings.log_format` (node processes of ``--processes`` inherit
    it)."""
    access_log: bool = False
    """As :attr:`ComponentSettings.access_log`, for the orchestrator's REST port
    (``--access-log``, GUNICORN_ACCESS_LOG)."""
    http_server: str = "infergraph"
    """The HTTP server: infergraph's own (httptools, fastest) or uvicorn (ASGI)."""
    hostname: str = "localhost"
    """Source of payload-log CloudEvents (POD_NAME on Kubernetes)."""
    request_logger_default_endpoint: str = "http://default-broker"
    seed: int | None = None
    """Seed for traffic splitting (tests, reproducible demos)."""
    tracing: TracingSettings = field(default_factory=lambda: TracingSettings())
    """OpenTelemetry tracing of requests and node calls (off by default)."""
    malloc_tuning: bool = True
    """As :attr:`ComponentSettings.malloc_tuning` (env INFERGRAPH_MALLOC_TUNING)."""
    grpc_server: str = "native"
    """The gRPC server, as :attr:`ComponentSettings.grpc_server` (node processes of
    ``--processes`` inherit it)."""
    dashboard: bool = True
    """Serve the live dashboard at ``/dashboard`` (and its JSON under ``/dashboard/api/``) on
    the REST port, recording recent requests for it (``--no-dashboard``, env
    INFERGRAPH_DASHBOARD=0 turn both off)."""
    dashboard_requests: int = 100
    """How many recent predictions the dashboard and ``infergraph trace`` can show (env
    INFERGRAPH_DASHBOARD_REQUESTS, ``--dashboard-requests``; at least 1)."""
    node_protocol: str = "v2"
    """How the orchestrator calls node processes (``--processes``): ``v2``, binary Open
    Inference Protocol tensors, or ``seldon``, Seldon's JSON/protobuf messages (env
    INFERGRAPH_NODE_PROTOCOL). The transport is ``spec.transport``, gRPC unless ``rest``."""

    wire: WireLimits = field(default_factory=WireLimits)
    """The HTTP/1.1 and HTTP/2 limits of the orchestrator's servers and node clients (env
    INFERGRAPH_HTTP1_*, INFERGRAPH_HTTP2_*; ``docs/limits.md``)."""
    tls: TlsFiles | None = None
    """TLS on the orchestrator's REST and gRPC ports, as :attr:`ComponentSettings.tls`."""
    node_tls: TlsFiles | None = None
    """TLS of the calls to nodes (env INFERGRAPH_NODE_TLS=1 or INFERGRAPH_NODE_TLS_CA_FILE,
    _CERT_FILE and _KEY_FILE: the client's certificate for mTLS); None: plain."""
    auth_token_file: str = ""
    """Bearer tokens the external APIs require, one a line (env INFERGRAPH_AUTH_TOKEN_FILE,
    ``--auth-token-file``); empty: none required. Probes and metrics stay open."""
    node_auth_token_file: str = ""
    """The token file whose first token is sent on calls to nodes, and which node processes
    of ``--processes`` require (env INFERGRAPH_NODE_AUTH_TOKEN_FILE)."""

    def replace(self, **changes: Any) -> GraphSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GraphSettings:
        env = os.environ if env is None else env
        redis_url = env.get("INFERGRAPH_REDIS_URL") or None
        if redis_url is None and env.get("REDIS_SERVICE_HOST"):  # Seldon's persistent router
            redis_url = (
                f"redis://{env['REDIS_SERVICE_HOST']}:{env.get('REDIS_SERVICE_PORT', '6379')}/0"
            )
        return cls(
            redis_url=redis_url,
            feedback_id_capacity=_int(env, "INFERGRAPH_FEEDBACK_ID_CAPACITY", FEEDBACK_ID_CAPACITY),
            feedback_id_ttl=_float(env, "INFERGRAPH_FEEDBACK_ID_TTL", FEEDBACK_ID_TTL),
            sticky_header=env.get("INFERGRAPH_STICKY_HEADER") or None,
            http_server=env.get("INFERGRAPH_HTTP_SERVER", "infergraph") or "infergraph",
            max_message_size=_int(env, "INFERGRAPH_MAX_MESSAGE_SIZE", DEFAULT_MAX_MESSAGE_SIZE),
            log_level=env.get("SELDON_LOG_LEVEL", "INFO") or "INFO",
            log_format=log_format_from_env(env),
            access_log=_bool(env.get("GUNICORN_ACCESS_LOG"), False),
            hostname=env.get("POD_NAME") or "localhost",
            request_logger_default_endpoint=env.get(
                "REQUEST_LOGGER_DEFAULT_ENDPOINT", "http://default-broker"
            )
            or "http://default-broker",
            node_protocol=env.get("INFERGRAPH_NODE_PROTOCOL", "v2") or "v2",
            dashboard=_bool(env.get("INFERGRAPH_DASHBOARD"), True),
            dashboard_requests=_int(env, "INFERGRAPH_DASHBOARD_REQUESTS", 100),
            malloc_tuning=_bool(env.get("INFERGRAPH_MALLOC_TUNING"), True),
            grpc_server=env.get("INFERGRAPH_GRPC_SERVER", "native") or "native",
            tracing=TracingSettings.from_env(env),
            wire=WireLimits.from_env(env),
            tls=TlsFiles.from_env(env, "INFERGRAPH_TLS_"),
            node_tls=TlsFiles.from_env(
                env, "INFERGRAPH_NODE_TLS_", on=_bool(env.get("INFERGRAPH_NODE_TLS"), False)
            ),
            auth_token_file=env.get("INFERGRAPH_AUTH_TOKEN_FILE", ""),
            node_auth_token_file=env.get("INFERGRAPH_NODE_AUTH_TOKEN_FILE", ""),
        )


TRACE_PROTOCOLS = ("grpc", "http/protobuf")
"""The OTLP protocols spans are exported with (OTEL_EXPORTER_OTLP_PROTOCOL)."""
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318


@dataclass(frozen=True)
class TracingSettings:
    """OpenTelemetry tracing, from the standard ``OTEL_*`` variables and Seldon's ``TRACING``
    and ``JAEGER_*`` ones (docs/observability.md has the mapping)."""

    enabled: bool = False
    """Spans are made and exported: OTEL_TRACES_EXPORTER or an OTLP endpoint is set, or
    Seldon's ``--tracing 1`` / TRACING=1; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none
    turns it off whatever else is set."""
    exporter: str = "otlp"
    """``otlp``, or ``console`` (spans as JSON on stdout, for a quick look)."""
    protocol: str = "grpc"
    """OTLP over ``grpc`` or ``http/protobuf`` (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL)."""
    endpoint: str | None = None
    """Where spans go when Seldon's JAEGER_* named it; None: the exporter reads
    OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT itself (default localhost:4317 or :4318)."""
    service_name: str | None = None
    """OTEL_SERVICE_NAME (or Seldon's JAEGER_SERVICE_NAME); None: the deployment's or the
    node's name."""
    b3: bool = False
    """Also send B3 headers on hops (JAEGER_TRACE_PROPAGATION_TYPE=b3, or ``b3`` or
    ``b3multi`` in OTEL_PROPAGATORS); W3C ``traceparent`` is always sent."""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, flag: int | None = None
    ) -> TracingSettings:
        """``flag`` is ``--tracing`` (1 on, 0 off, None: TRACING decides)."""
        env = os.environ if env is None else env
        exporter = (env.get("OTEL_TRACES_EXPORTER") or "").split(",")[0].strip().lower()
        if _bool(env.get("OTEL_SDK_DISABLED"), False) or exporter == "none":
            return cls()
        if exporter not in ("", "otlp", "console"):
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={exporter!r} is not supported: use otlp, console or none"
            )
        seldon = bool(flag) if flag is not None else _bool(env.get("TRACING"), False)
        otlp_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if not (exporter or otlp_endpoint or seldon):
            return cls()
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        ).strip()
        endpoint = None
        if not otlp_endpoint and env.get("JAEGER_ENDPOINT"):
            # Jaeger's collector (http://HOST:14268/api/traces): its OTLP/HTTP port
            url = urllib.parse.urlsplit(env["JAEGER_ENDPOINT"])
            protocol = "http/protobuf"
            endpoint = f"{url.scheme or 'http'}://{url.hostname}:{OTLP_HTTP_PORT}/v1/traces"
        elif not otlp_endpoint and env.get("JAEGER_AGENT_HOST"):
            # the agent's ports are UDP Thrift; a Jaeger (or collector) there takes OTLP/gRPC
            endpoint = f"http://{env['JAEGER_AGENT_HOST']}:{OTLP_GRPC_PORT}"
            protocol = "grpc"
        if protocol not in TRACE_PROTOCOLS:
            raise ValueError(
                f"OTLP protocol {protocol!r} is not supported: use {' or '.join(TRACE_PROTOCOLS)}"
            )
        propagators = {p.strip().lower() for p in env.get("OTEL_PROPAGATORS", "").split(",")}
        return cls(
            enabled=True,
            exporter=exporter or "otlp",
            protocol=protocol,
            endpoint=endpoint,
            service_name=env.get("OTEL_SERVICE_NAME") or env.get("JAEGER_SERVICE_NAME") or None,
            b3=env.get("JAEGER_TRACE_PROPAGATION_TYPE", "").lower() == "b3"
            or bool(propagators & {"b3", "b3multi"}),
        )
