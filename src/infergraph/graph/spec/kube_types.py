"""The Kubernetes-shaped parts of a deployment spec: object metadata, pod specs, autoscalers.

A SeldonDeployment embeds real Kubernetes objects (a whole ``PodSpec``, HPA metric specs,
KEDA triggers). infergraph reads only a few of their fields (container names, images, env,
ports) and must carry the rest through untouched to the rendered manifests, so these
models declare the fields it reads and keep every other field (``extra="allow"``). The
Seldon-specific wrappers around them (``hpaSpec``, ``kedaSpec``, ``pdbSpec``) are ours and
reject unknown fields like the rest of the spec.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "Container",
    "ContainerPort",
    "EnvVar",
    "HpaSpec",
    "IntOrString",
    "KedaSpec",
    "KubeModel",
    "KubeObject",
    "ObjectMeta",
    "PdbSpec",
    "PodSpec",
    "SpecModel",
]

KubeObject = dict[str, Any]
"""A Kubernetes object infergraph passes through without reading (resources, metric specs)."""


class SpecModel(BaseModel):
    """Base of infergraph's own spec models: camelCase JSON names, unknown fields rejected.

    A misspelt field (``modelURI``) must fail loudly instead of being silently dropped, the
    way Kubernetes' structural schema prunes it. Python attributes are snake_case; the JSON
    names come from the alias generator, with Seldon's few oddities spelled out per field.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        use_enum_values=False,
    )


class KubeModel(SpecModel):
    """Base of embedded Kubernetes objects: unknown fields are kept, not rejected."""

    model_config = ConfigDict(extra="allow")


def _int_or_string(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer or a percentage string such as '50%', got {value!r}")
    return value


IntOrString = Annotated[
    int | str,
    PlainValidator(_int_or_string),
    PlainSerializer(lambda value: value),
    WithJsonSchema(
        {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    ),
]
"""Kubernetes' ``IntOrString``: ``2`` or ``"50%"``."""


class ObjectMeta(KubeModel):
    """The parts of Kubernetes ``ObjectMeta`` a componentSpec uses: name, labels, annotations."""

    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class EnvVar(KubeModel):
    """A container environment variable: ``value`` or ``valueFrom``."""

    name: str
    value: str | None = None
    value_from: KubeObject | None = None


class ContainerPort(KubeModel):
    """A container port; the names ``http``, ``grpc`` and ``metrics`` have a meaning to Seldon."""

    name: str | None = None
    container_port: int = Field(ge=1, le=65535)
    protocol: str | None = None


class Container(KubeModel):
    """A Kubernetes container. Its ``name`` ties it to the graph node of the same name."""

    name: str
    image: str | None = None
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: KubeObject | None = None


class PodSpec(KubeModel):
    """A Kubernetes ``PodSpec``; only ``containers`` is read, everything else is kept."""

    containers: list[Container] = Field(default_factory=list)


class HpaSpec(SpecModel):
    """``hpaSpec``: always rendered as an ``autoscaling/v2`` HorizontalPodAutoscaler."""

    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int = Field(ge=1)
    metrics: list[KubeObject] | None = None
    metricsv2: list[KubeObject] | None = Field(default=None, alias="metricsv2")


class KedaSpec(SpecModel):
    """``kedaSpec``: a KEDA ScaledObject; it takes precedence over ``hpaSpec``."""

    polling_interval: int | None = Field(default=None, ge=0)
    cooldown_period: int | None = Field(default=None, ge=0)
    min_replica_count: int | None = Field(default=None, ge=0)
    max_replica_count: int | None = Field(default=None, ge=0)
    advanced: KubeObject | None = None
    triggers: list[KubeObject]
    idle_replica_count: int | None = Field(default=None, ge=0)
    fallback: KubeObject | None = None


class PdbSpec(SpecModel):
    """``pdbSpec``: a PodDisruptionBudget; ``minAvailable`` and ``maxUnavailable`` exclude each
    other, as in Kubernetes."""

    min_available: IntOrString | None = None
    max_unavailable: IntOrString | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PdbSpec:
        if self.min_available is not None and self.max_unavailable is not None:
            raise ValueError(
                "minAvailable and maxUnavailable are mutually exclusive; keep only one of them"
            )
        return self
