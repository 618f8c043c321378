"""The ``status`` of a GraphDeployment, in pydantic: what the operator writes and the CRD allows.

Three readers depend on its shape, so it is fixed here once: ``kubectl get`` (the printer
columns read ``state``, ``replicas`` and ``address.url``), Argo CD (``deploy/argocd/health.lua``
reads ``state``, ``description``, ``observedGeneration`` and the ``Ready`` condition) and
tools written for Seldon Core v1 (``state``, ``description``, ``deploymentStatus``,
``serviceStatus``, ``address`` keep Seldon's names). Conditions take Kubernetes' own
``metav1.Condition`` form, so kstatus-aware tools (kubectl wait, Flux, Argo CD) understand them.

The CRD schema of ``status`` is generated from :class:`GraphDeploymentStatus`; the API
server prunes any field that is not declared here.
"""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import ConfigDict, Field

from infergraph.graph.spec.kube_types import SpecModel

__all__ = [
    "Address",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DeploymentState",
    "DeploymentStatus",
    "GraphDeploymentStatus",
    "ServiceStatus",
    "StatusModel",
]


class StatusModel(SpecModel):
    """Base of the status models: camelCase JSON, unknown fields rejected, and, unlike the
    spec (which only ever comes from YAML), constructible by Python name in the operator."""

    model_config = ConfigDict(validate_by_name=True)


class DeploymentState(enum.StrEnum):
    """The one-word summary Seldon users know: ``kubectl get`` shows it."""

    CREATING = "Creating"
    AVAILABLE = "Available"
    FAILED = "Failed"


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds, as in ``metav1.Condition``."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    """The condition types the operator writes; ``type`` itself is any CamelCase word."""

    READY = "Ready"
    """The summary: every child is current and available (``kubectl wait
    --for=condition=Ready``)."""
    STALLED = "Stalled"
    """The operator cannot make progress without a change to the spec (kstatus)."""
    DEPLOYMENTS_READY = "DeploymentsReady"
    """Every Deployment has rolled out and is available."""
    SERVICES_READY = "ServicesReady"
    """Every Service exists."""
    AUTOSCALERS_READY = "AutoscalersReady"
    """Every HorizontalPodAutoscaler or KEDA ScaledObject exists."""


class Condition(StatusModel):
    """One observation about the deployment, in Kubernetes' ``metav1.Condition`` form."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="CamelCase kind of the condition, e.g. Ready.",
    )
    status: ConditionStatus
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was computed from.",
    )
    last_transition_time: datetime = Field(
        description="When status last changed (RFC 3339).",
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="A CamelCase word for programs, e.g. ProgressDeadlineExceeded.",
    )
    message: str = Field(max_length=32768, description="Details for people; may be empty.")


class Address(StatusModel):
    """Where clients reach the graph from inside the cluster."""

    url: str | None = Field(
        default=None,
        description="The first predictor's prediction URL, e.g. "
        "http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions.",
    )


class DeploymentStatus(StatusModel):
    """One Kubernetes Deployment the graph runs on (Seldon's ``deploymentStatus`` entry)."""

    name: str | None = None
    status: DeploymentState | None = None
    description: str | None = None
    replicas: int | None = Field(default=None, ge=0)
    available_replicas: int | None = Field(default=None, ge=0)
    explainer_for: str | None = Field(
        default=None, description="The predictor this Deployment explains, for an explainer."
    )


class ServiceStatus(StatusModel):
    """One Kubernetes Service of the graph (Seldon's ``serviceStatus`` entry)."""

    svc_name: str | None = None
    http_endpoint: str | None = Field(default=None, description="<service>.<namespace>:<port>")
    grpc_endpoint: str | None = Field(default=None, description="<service>.<namespace>:<port>")
    explainer_for: str | None = None


class GraphDeploymentStatus(StatusModel):
    """Written by the operator through the status subresource; never by users."""

    state: DeploymentState | None = None
    description: str | None = Field(
        default=None, description="Why the state is what it is; the error when Failed."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this status describes; status is stale while "
        "it is behind.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    address: Address | None = None
    replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas of the first predictor's first component; the scale "
        "subresource reads it.",
    )
    selector: str | None = Field(
        default=None,
        description="Label selector (in string form) of the pods counted by replicas; the "
        "scale subresource reads it, so a HorizontalPodAutoscaler can target the deployment.",
    )
    deployment_status: dict[str, DeploymentStatus] = Field(
        default_factory=dict, description="By Deployment name."
    )
    service_status: dict[str, ServiceStatus] = Field(
        default_factory=dict, description="By Service name."
    )
