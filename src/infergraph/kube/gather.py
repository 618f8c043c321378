"""Read what ``infergraph describe`` and ``infergraph logs`` look at, from the API server.

A deployment's objects are found by the labels ``render`` puts on them: children by
``infergraph.io/deployment=<name>``, pods (which carry their Deployment's template labels) by
``seldon-deployment-id=<name>``, as Seldon's tools found them. Everything is read in a handful
of list calls, then handed to the pure :mod:`~infergraph.kube.diagnose`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infergraph.kube.api import KINDS, Api, ApiError
from infergraph.kube.diagnose import Snapshot, failing_containers

__all__ = ["LOG_TAIL", "find_resource", "pods_of", "snapshot"]

LOG_TAIL = 20
"""Log lines ``describe`` shows of a failing container."""
RESOURCE_KINDS = ("GraphDeployment", "SeldonDeployment")


def find_resource(
    api: Api, namespace: str, name: str, kind: str | None = None
) -> tuple[str, dict[str, Any] | None]:
    """The GraphDeployment (else SeldonDeployment) called ``name``, and its kind."""
    for candidate in (kind,) if kind else RESOURCE_KINDS:
        try:
            found = api.get(KINDS[candidate], namespace, name)
        except ApiError as exc:
            if exc.status == 403 and kind is None:
                continue  # not allowed to read this kind: look at the other one
            raise
        if found is not None:
            return candidate, found
    return kind or RESOURCE_KINDS[0], None


def _selector(name: str) -> dict[str, str]:
    return {"labelSelector": f"infergraph.io/deployment={name}"}


def pods_of(api: Api, namespace: str, name: str) -> list[dict[str, Any]]:
    return api.list(KINDS["Pod"], namespace, {"labelSelector": f"seldon-deployment-id={name}"})


def _optional(api: Api, kind: str, namespace: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """A list that may be refused (RBAC) or absent without spoiling the whole picture."""
    try:
        return api.list(KINDS[kind], namespace, params)
    except ApiError as exc:
        if exc.status in (403, 404):
            return []
        raise


def _related_events(
    events: Iterable[dict[str, Any]], names: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    out = []
    for item in events:
        involved = item.get("involvedObject") or item.get("regarding") or {}
        if (involved.get("kind"), involved.get("name")) in names:
            out.append(item)
    return sorted(out, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _logs(api: Api, namespace: str, pod: str, container: str, previous: bool) -> list[str]:
    params = {"container": container, "tailLines": str(LOG_TAIL)}
    if previous:
        params["previous"] = "true"
    try:
        return api.logs(namespace, pod, params).splitlines()
    except ApiError:
        return []  # a container that never started has no log: the diagnosis says why


def snapshot(api: Api, namespace: str, name: str, kind: str | None = None) -> Snapshot:
    """Everything ``describe`` diagnoses, read from the cluster."""
    kind, resource = find_resource(api, namespace, name, kind)
    if resource is None:
        return Snapshot(kind, namespace, name, None, [], [], [], [], [], [], [], {}, {})
    deployments = api.list(KINDS["Deployment"], namespace, _selector(name))
    pods = pods_of(api, namespace, name)
    replicasets = _optional(
        api, "ReplicaSet", namespace, {"labelSelector": f"seldon-deployment-id={name}"}
    )
    services = api.list(KINDS["Service"], namespace, _selector(name))
    endpoints = [
        found
        for service in services
        if (found := _get_optional(api, "Endpoints", namespace, service["metadata"]["name"]))
    ]
    autoscalers = _optional(api, "HorizontalPodAutoscaler", namespace, _selector(name))
    names = {(kind, name)} | {
        (k, obj["metadata"]["name"])
        for k, objs in (
            ("Deployment", deployments),
            ("ReplicaSet", replicasets),
            ("Pod", pods),
            ("Service", services),
            ("HorizontalPodAutoscaler", autoscalers),
        )
        for obj in objs
    }
    events = _related_events(_optional(api, "Event", namespace, {}), names)
    logs: dict[tuple[str, str], list[str]] = {}
    previous_logs: dict[tuple[str, str], list[str]] = {}
    for pod, container, previous in failing_containers(pods):
        target = previous_logs if previous else logs
        target[pod, container] = _logs(api, namespace, pod, container, previous)
        if previous:  # the current instance may have said something too
            logs[pod, container] = _logs(api, namespace, pod, container, False)
    return Snapshot(
        kind,
        namespace,
        name,
        resource,
        deployments,
        replicasets,
        pods,
        events,
        services,
        endpoints,
        autoscalers,
        logs,
        previous_logs,
    )


def _get_optional(api: Api, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get(KINDS[kind], namespace, name)
    except ApiError as exc:
        if exc.status == 403:
            return None
        raise
