"""The deployment resource, ``GraphDeployment`` and Seldon's ``SeldonDeployment``, in pydantic.

Users' SeldonDeployment YAML must load unchanged, so the models follow Seldon Core v1's Go
types field for field, JSON names included (``modelUri``, ``service_host``, ``oauth_key``,
``svcOrchSpec``, ``metricsv2``). ``GraphDeployment`` (``infergraph.io/v1``) has the same spec.

These models load configuration only. They never run per request: the plan layer compiles
a validated deployment into plain immutable objects. They are also the single source of
the CRD schema (``GraphDeployment.model_json_schema()``), so every constraint the schema can
express lives here, and the rules it cannot express live in :mod:`infergraph.graph.spec.validate`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from infergraph.graph.spec.kube_types import (
    Container,
    EnvVar,
    HpaSpec,
    KedaSpec,
    KubeModel,
    KubeObject,
    ObjectMeta,
    PdbSpec,
    PodSpec,
    SpecModel,
)

__all__ = [
    "BUILTIN_IMPLEMENTATIONS",
    "GRAPH_API_VERSION",
    "PREPACKAGED_SERVERS",
    "SELDON_API_VERSIONS",
    "SSL",
    "Deployment",
    "DeploymentMetadata",
    "DeploymentSpec",
    "Endpoint",
    "EndpointType",
    "Explainer",
    "GraphDeployment",
    "Implementation",
    "Logger",
    "LoggerMode",
    "Method",
    "Parameter",
    "ParameterType",
    "PredictiveUnit",
    "PredictiveUnitType",
    "PredictorSpec",
    "Protocol",
    "SeldonDeployment",
    "SeldonPodSpec",
    "ServerType",
    "SvcOrchSpec",
    "Transport",
    "is_prepackaged",
    "walk_graph",
]

GRAPH_API_VERSION = "infergraph.io/v1"
SELDON_API_VERSIONS = (
    "machinelearning.seldon.io/v1",
    "machinelearning.seldon.io/v1alpha2",
    "machinelearning.seldon.io/v1alpha3",
)


class Protocol(enum.StrEnum):
    """The wire protocol of the graph. ``kfserving`` and ``v2`` both mean the Open Inference
    Protocol."""

    SELDON = "seldon"
    TENSORFLOW = "tensorflow"
    KFSERVING = "kfserving"
    V2 = "v2"


class Transport(enum.StrEnum):
    """How the orchestrator calls the nodes; it always serves both externally."""

    REST = "rest"
    GRPC = "grpc"


class ServerType(enum.StrEnum):
    """``rpc`` serves requests; ``kafka`` consumes and produces Kafka topics."""

    RPC = "rpc"
    KAFKA = "kafka"


class PredictiveUnitType(enum.StrEnum):
    """What a graph node does with a request (docs/graph.md: how a graph runs)."""

    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    ROUTER = "ROUTER"
    COMBINER = "COMBINER"
    MODEL = "MODEL"
    TRANSFORMER = "TRANSFORMER"
    OUTPUT_TRANSFORMER = "OUTPUT_TRANSFORMER"


class Method(enum.StrEnum):
    """A node's methods, an alternative to ``type`` that lets one node do several things."""

    TRANSFORM_INPUT = "TRANSFORM_INPUT"
    TRANSFORM_OUTPUT = "TRANSFORM_OUTPUT"
    ROUTE = "ROUTE"
    AGGREGATE = "AGGREGATE"
    SEND_FEEDBACK = "SEND_FEEDBACK"


class EndpointType(enum.StrEnum):
    """The transport of one node; it must agree with ``spec.transport``."""

    REST = "REST"
    GRPC = "GRPC"


class ParameterType(enum.StrEnum):
    """The type a node parameter's string ``value`` is parsed as."""

    INT = "INT"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    STRING = "STRING"
    BOOL = "BOOL"


class LoggerMode(enum.StrEnum):
    """Which payloads a node's logger sends."""

    ALL = "all"
    REQUEST = "request"
    RESPONSE = "response"


class Implementation(enum.StrEnum):
    """The implementations infergraph knows. ``implementation`` itself is any string: as in
    Seldon, a name that is not a builtin is a prepackaged server."""

    UNKNOWN_IMPLEMENTATION = "UNKNOWN_IMPLEMENTATION"
    SIMPLE_MODEL = "SIMPLE_MODEL"
    SIMPLE_ROUTER = "SIMPLE_ROUTER"
    RANDOM_ABTEST = "RANDOM_ABTEST"
    AVERAGE_COMBINER = "AVERAGE_COMBINER"
    EPSILON_GREEDY = "EPSILON_GREEDY"
    THOMPSON_SAMPLING = "THOMPSON_SAMPLING"
    UCB1 = "UCB1"
    SKLEARN_SERVER = "SKLEARN_SERVER"
    XGBOOST_SERVER = "XGBOOST_SERVER"
    LIGHTGBM_SERVER = "LIGHTGBM_SERVER"
    MLFLOW_SERVER = "MLFLOW_SERVER"
    ONNX_SERVER = "ONNX_SERVER"
    TENSORFLOW_SERVER = "TENSORFLOW_SERVER"
    TRITON_SERVER = "TRITON_SERVER"
    HUGGINGFACE_SERVER = "HUGGINGFACE_SERVER"
    TEMPO_SERVER = "TEMPO_SERVER"


_I = Implementation
BUILTIN_IMPLEMENTATIONS: dict[str, PredictiveUnitType | None] = {
    _I.UNKNOWN_IMPLEMENTATION: None,
    _I.SIMPLE_MODEL: PredictiveUnitType.MODEL,
    _I.SIMPLE_ROUTER: PredictiveUnitType.ROUTER,
    _I.RANDOM_ABTEST: PredictiveUnitType.ROUTER,
    _I.AVERAGE_COMBINER: PredictiveUnitType.COMBINER,
    _I.EPSILON_GREEDY: PredictiveUnitType.ROUTER,
    _I.THOMPSON_SAMPLING: PredictiveUnitType.ROUTER,
    _I.UCB1: PredictiveUnitType.ROUTER,
}
"""Implementations that run inside the orchestrator, with the node type each one implies."""

PREPACKAGED_SERVERS = frozenset(
    {
        _I.SKLEARN_SERVER,
        _I.XGBOOST_SERVER,
        _I.LIGHTGBM_SERVER,
        _I.MLFLOW_SERVER,
        _I.ONNX_SERVER,
        _I.TENSORFLOW_SERVER,
        _I.TRITON_SERVER,
        _I.HUGGINGFACE_SERVER,
        _I.TEMPO_SERVER,
    }
)
"""The prepackaged servers infergraph has an image or an in-process server for."""


def is_prepackaged(implementation: str | None) -> bool:
    """Seldon's ``IsPrepack``: any implementation that is not a builtin is a model server."""
    return bool(implementation) and implementation not in BUILTIN_IMPLEMENTATIONS


class Endpoint(SpecModel):
    """Where the orchestrator reaches a node. Normally filled in by defaulting; users set
    at most ``type``."""

    service_host: str | None = Field(default=None, alias="service_host")
    service_port: int | None = Field(default=None, alias="service_port", ge=0, le=65535)
    type: EndpointType | None = None
    http_port: int | None = Field(default=None, ge=0, le=65535)
    grpc_port: int | None = Field(default=None, ge=0, le=65535)


class Parameter(SpecModel):
    """A node parameter. ``value`` is always a string in the YAML, parsed as ``type``."""

    name: str
    value: str
    type: ParameterType


class Logger(SpecModel):
    """Payload logging for one node; ``mode`` is required when a logger is set."""

    url: str | None = None
    mode: LoggerMode | None = None


class PredictiveUnit(SpecModel):
    """A graph node; ``children`` make the graph a tree."""

    name: str = Field(min_length=1)
    children: list[PredictiveUnit] = Field(default_factory=list)
    type: PredictiveUnitType | None = None
    implementation: str | None = Field(
        default=None,
        json_schema_extra={"examples": [member.value for member in Implementation]},
    )
    methods: list[Method] | None = None
    endpoint: Endpoint | None = None
    parameters: list[Parameter] = Field(default_factory=list)
    model_uri: str | None = None
    service_account_name: str | None = None
    env_secret_ref_name: str | None = None
    storage_initializer_image: str | None = None
    logger: Logger | None = None


class SeldonPodSpec(SpecModel):
    """``componentSpecs[]``: one Kubernetes Deployment, its autoscaling and its disruption
    budget."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)
    hpa_spec: HpaSpec | None = None
    keda_spec: KedaSpec | None = None
    pdb_spec: PdbSpec | None = None
    replicas: int | None = Field(default=None, ge=0)


class SvcOrchSpec(SpecModel):
    """Settings of the orchestrator (Seldon's "service orchestrator") container."""

    resources: KubeObject | None = None
    env: list[EnvVar] = Field(default_factory=list)
    replicas: int | None = Field(default=None, ge=0)


class SSL(SpecModel):
    """TLS for the orchestrator: the name of a Secret holding the certificate."""

    cert_secret_name: str | None = None


class Explainer(SpecModel):
    """An Alibi explainer served next to the predictor (its own Deployment and Service)."""

    type: str | None = None
    model_uri: str | None = None
    service_account_name: str | None = None
    container_spec: Container | None = None
    config: dict[str, str] = Field(default_factory=dict)
    endpoint: Endpoint | None = None
    env_secret_ref_name: str | None = None
    storage_initializer_image: str | None = None
    replicas: int | None = Field(default=None, ge=0)
    init_parameters: str | None = None


class PredictorSpec(SpecModel):
    """One predictor: a graph, the containers that implement it, and its traffic share."""

    name: str = Field(min_length=1)
    graph: PredictiveUnit
    component_specs: list[SeldonPodSpec] = Field(default_factory=list)
    replicas: int | None = Field(default=None, ge=0)
    annotations: dict[str, str] = Field(default_factory=dict)
    engine_resources: KubeObject | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    svc_orch_spec: SvcOrchSpec = Field(default_factory=SvcOrchSpec)
    traffic: int = 0
    explainer: Explainer | None = None
    shadow: bool = False
    ssl: SSL | None = None
    progress_deadline_seconds: int | None = Field(default=None, ge=0)

    def containers(self) -> Iterator[tuple[int, Container]]:
        """Every container of every componentSpec, with the index of its componentSpec."""
        for index, component in enumerate(self.component_specs):
            for container in component.spec.containers:
                yield index, container

    def container(self, name: str) -> Container | None:
        """The first container named ``name`` (Seldon's ``GetContainerForPredictiveUnit``)."""
        return next((c for _, c in self.containers() if c.name == name), None)


class DeploymentSpec(SpecModel):
    """``spec`` of a SeldonDeployment or GraphDeployment."""

    name: str | None = Field(default=None, description="Deprecated and ignored.")
    predictors: list[PredictorSpec] = Field(min_length=1)
    oauth_key: str | None = Field(default=None, alias="oauth_key")
    oauth_secret: str | None = Field(default=None, alias="oauth_secret")
    annotations: dict[str, str] = Field(default_factory=dict)
    protocol: Protocol = Protocol.SELDON
    transport: Transport | None = None
    replicas: int | None = Field(default=None, ge=0)
    server_type: ServerType = ServerType.RPC


class DeploymentMetadata(KubeModel):
    """The resource's ``metadata``. The namespace defaults to ``default``; the rest of
    Kubernetes' ObjectMeta (uid, resourceVersion, managedFields) is kept as is."""

    name: str = Field(min_length=1)
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class _DeploymentResource(SpecModel):
    api_version: str
    kind: str
    metadata: DeploymentMetadata
    spec: DeploymentSpec
    status: KubeObject | None = Field(
        default=None, description="Written by the operator; ignored when loading."
    )


class GraphDeployment(_DeploymentResource):
    """infergraph's own resource, ``infergraph.io/v1`` ``GraphDeployment`` (short name gdep)."""

    api_version: Literal["infergraph.io/v1"]
    kind: Literal["GraphDeployment"]


class SeldonDeployment(_DeploymentResource):
    """Seldon Core v1's resource, accepted unchanged in all three served versions."""

    api_version: Literal[
        "machinelearning.seldon.io/v1",
        "machinelearning.seldon.io/v1alpha2",
        "machinelearning.seldon.io/v1alpha3",
    ]
    kind: Literal["SeldonDeployment"]


Deployment = GraphDeployment | SeldonDeployment
"""Either resource; every consumer treats them alike."""


def walk_graph(node: PredictiveUnit, path: str) -> Iterator[tuple[str, PredictiveUnit]]:
    """Every node of a graph, depth first in Seldon's order, with its field path."""
    yield path, node
    for index, child in enumerate(node.children):
        yield from walk_graph(child, f"{path}.children[{index}]")
