"""The ``status`` of a deployment, computed from its children. Pure.

The operator reads the children it applied (Deployments, Services, autoscalers...) and calls
:func:`compute_status`; a spec that ``render`` rejected goes through :func:`rejected_status`
instead. Both return the status as the API server stores it (camelCase JSON, the shape of
:class:`~infergraph.kube.status_schema.GraphDeploymentStatus`), so the operator can compare it
with what is stored and write only a real change: a status write is an event on the resource,
and an operator that wrote on every event would wake itself forever.

Readiness follows kstatus: ``Ready`` only when the status describes the current generation and
every Deployment has rolled out the current template (its own ``observedGeneration`` current,
``updatedReplicas`` and ``availableReplicas`` at ``replicas``, ``Available`` True). A
Deployment whose progress deadline passed makes the deployment Failed, as in Seldon, and
``Stalled`` True: it will not get better without a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infergraph.kube.status_schema import ConditionType, DeploymentState

__all__ = ["ChildKey", "child_key", "compute_status", "rejected_status", "same_status"]

ChildKey = tuple[str, str]
"""(kind, name) of a child within the deployment's namespace."""

_MAX_MESSAGE = 32768  # metav1.Condition's limit
_AUTOSCALERS = ("HorizontalPodAutoscaler", "ScaledObject")
_PATHS = {
    "seldon": "/api/v1.0/predictions",
    "v2": "/v2/models/{root}/infer",
    "kfserving": "/v2/models/{root}/infer",
    "tensorflow": "/v1/models/{root}:predict",
}


def child_key(obj: Mapping[str, Any]) -> ChildKey:
    return (str(obj.get("kind", "")), str(obj.get("metadata", {}).get("name", "")))


@dataclass(frozen=True)
class _Rollout:
    """One Deployment's progress, read from its status."""

    name: str
    ready: bool
    failed: bool
    replicas: int
    available: int
    message: str


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in obj.get("status", {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return {}


def _rollout(name: str, observed: Mapping[str, Any] | None) -> _Rollout:
    if observed is None:
        return _Rollout(name, False, False, 0, 0, f"Deployment {name} does not exist yet")
    status = observed.get("status") or {}
    spec = observed.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    available = int(status.get("availableReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    current = int(status.get("observedGeneration") or 0) >= int(
        observed.get("metadata", {}).get("generation") or 0
    )
    progressing = _condition(observed, "Progressing")
    if progressing.get("status") == "False" and (
        progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        detail = progressing.get("message") or "its progress deadline was exceeded"
        return _Rollout(name, False, True, replicas, available, f"Deployment {name}: {detail}")
    ready = (
        current
        and updated >= replicas
        and available >= replicas
        and _condition(observed, "Available").get("status") == "True"
    )
    message = "" if ready else f"Deployment {name}: {available} of {replicas} replicas available"
    if not current and "observedGeneration" in status:
        message = f"Deployment {name}: the new template is not rolled out yet"
    elif not ready and available >= replicas and updated < replicas:
        message = f"Deployment {name}: {updated} of {replicas} replicas updated"
    return _Rollout(name, ready, False, replicas, available, message)


def _transition(
    previous: Sequence[Mapping[str, Any]], kind: str, status: str, now: datetime
) -> str:
    """A condition's ``lastTransitionTime``: kept while its status holds, else ``now``."""
    for condition in previous:
        if condition.get("type") == kind and condition.get("status") == status:
            return str(condition.get("lastTransitionTime"))
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(
    facts: Sequence[tuple[str, bool, str, str]],
    generation: int,
    previous: Sequence[Mapping[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    out = []
    for kind, holds, reason, message in facts:
        status = "True" if holds else "False"
        out.append(
            {
                "type": kind,
                "status": status,
                "observedGeneration": generation,
                "lastTransitionTime": _transition(previous, kind, status, now),
                "reason": reason,
                "message": message,
            }
        )
    return out


def _address(resource: Mapping[str, Any], desired: Sequence[Mapping[str, Any]]) -> str | None:
    metadata = resource.get("metadata", {})
    name, namespace = metadata.get("name", ""), metadata.get("namespace") or "default"
    spec = resource.get("spec") or {}
    services = [o["metadata"]["name"] for o in desired if o.get("kind") == "Service"]
    predictors = spec.get("predictors") or []
    if name in services:  # the router in front of several predictors
        entry = name
    elif predictors and f"{name}-{predictors[0].get('name')}" in services:
        entry = f"{name}-{predictors[0].get('name')}"
    else:
        return None
    root = (predictors[0].get("graph") or {}).get("name", "") if predictors else ""
    path = _PATHS.get(str(spec.get("protocol") or "seldon").lower(), _PATHS["seldon"])
    return f"http://{entry}.{namespace}.svc.cluster.local:8000{path.format(root=root)}"


def _service_status(
    resource: Mapping[str, Any], desired: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    namespace = resource.get("metadata", {}).get("namespace") or "default"
    out: dict[str, Any] = {}
    for obj in desired:
        if obj.get("kind") != "Service":
            continue
        name = obj["metadata"]["name"]
        ports = {p.get("name"): p.get("port") for p in obj.get("spec", {}).get("ports") or ()}
        entry: dict[str, Any] = {"svcName": name}
        if "http" in ports:
            entry["httpEndpoint"] = f"{name}.{namespace}:{ports['http']}"
        if "grpc" in ports:
            entry["grpcEndpoint"] = f"{name}.{namespace}:{ports['grpc']}"
        out[name] = entry
    return out


def compute_status(
    resource: Mapping[str, Any],
    desired: Sequence[Mapping[str, Any]],
    observed: Mapping[ChildKey, Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """The status of ``resource`` whose children ought to be ``desired`` (what ``render``
    returned) and are ``observed`` (as the API server returned them, by kind and name)."""
    generation = int(resource.get("metadata", {}).get("generation") or 1)
    previous = (resource.get("status") or {}).get("conditions") or []
    rollouts = [
        _rollout(obj["metadata"]["name"], observed.get(child_key(obj)))
        for obj in desired
        if obj.get("kind") == "Deployment"
    ]
    missing = [key for key in map(child_key, desired) if key not in observed]
    services = [k for k in missing if k[0] == "Service"]
    scalers = [k for k in missing if k[0] in _AUTOSCALERS]
    failed = [r for r in rollouts if r.failed]
    waiting = [r for r in rollouts if not r.ready]
    rolled_out = not waiting
    others = [k for k in missing if k[0] not in ("Service", "Deployment", *_AUTOSCALERS)]
    ready = rolled_out and not missing
    if failed:
        state, description = DeploymentState.FAILED, failed[0].message
    elif ready:
        state, description = DeploymentState.AVAILABLE, "every Deployment is available"
    elif waiting:
        state, description = DeploymentState.CREATING, waiting[0].message
    else:
        kind, name = missing[0]
        state, description = DeploymentState.CREATING, f"{kind} {name} does not exist yet"
    facts = [
        (
            ConditionType.READY.value,
            ready,
            "Available" if ready else ("Failed" if failed else "Creating"),
            description,
        ),
        (
            ConditionType.STALLED.value,
            bool(failed),
            "ProgressDeadlineExceeded" if failed else "Progressing",
            failed[0].message if failed else "",
        ),
        (
            ConditionType.DEPLOYMENTS_READY.value,
            rolled_out,
            "DeploymentsAvailable" if rolled_out else "DeploymentsNotAvailable",
            "; ".join(r.message for r in waiting),
        ),
        (
            ConditionType.SERVICES_READY.value,
            not services,
            "ServicesCreated" if not services else "ServicesMissing",
            ", ".join(name for _, name in services),
        ),
        (
            ConditionType.AUTOSCALERS_READY.value,
            not scalers,
            "AutoscalersCreated" if not scalers else "AutoscalersMissing",
            ", ".join(name for _, name in scalers),
        ),
    ]
    if others:
        facts.append(
            ("ChildrenReady", False, "ChildrenMissing", ", ".join(f"{k} {n}" for k, n in others))
        )
    status: dict[str, Any] = {
        "state": state.value,
        "description": description,
        "observedGeneration": generation,
        "conditions": _conditions(facts, generation, previous, now),
        "deploymentStatus": {
            r.name: {
                "name": r.name,
                "status": ("Failed" if r.failed else ("Available" if r.ready else "Creating")),
                "replicas": r.replicas,
                "availableReplicas": r.available,
            }
            for r in rollouts
        },
        "serviceStatus": _service_status(resource, desired),
    }
    address = _address(resource, desired)
    if address is not None:
        status["address"] = {"url": address}
    first = next((o for o in desired if o.get("kind") == "Deployment"), None)
    if first is not None:
        status["replicas"] = next(r.available for r in rollouts if r.name == child_key(first)[1])
        labels = first.get("spec", {}).get("selector", {}).get("matchLabels", {})
        status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return status


def rejected_status(resource: Mapping[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """The status of a resource whose spec cannot run: Failed, with the reason, and
    ``Stalled``: nothing changes until the spec does."""
    generation = int(resource.get("metadata", {}).get("generation") or 1)
    previous = (resource.get("status") or {}).get("conditions") or []
    message = message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"
    facts = [
        (ConditionType.READY.value, False, "InvalidSpec", message),
        (ConditionType.STALLED.value, True, "InvalidSpec", message),
    ]
    return {
        "state": DeploymentState.FAILED.value,
        "description": message,
        "observedGeneration": generation,
        "conditions": _conditions(facts, generation, previous, now),
    }


def same_status(stored: Mapping[str, Any] | None, computed: Mapping[str, Any]) -> bool:
    """Whether writing ``computed`` would change nothing the operator owns."""
    stored = stored or {}
    return all(stored.get(key) == value for key, value in computed.items()) and not (
        set(stored) & _OWNED - set(computed)
    )


_OWNED = {
    "state",
    "description",
    "observedGeneration",
    "conditions",
    "deploymentStatus",
    "serviceStatus",
    "address",
    "replicas",
    "selector",
}
