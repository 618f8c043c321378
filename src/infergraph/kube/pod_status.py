"""What a pod's status says, read the way ``infergraph describe`` and ``infergraph logs`` need
it: which node a pod or container serves, which pods count, which containers failed. Pure:
the caller fetched the pods.

Containers are named by node: the orchestrator's container is ``seldon-container-engine``,
a model-download init container is ``<container>-model-initializer`` and a node's container
is the one its pod labels ``seldon-app-svc-<container>`` (the label its Service selects).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from infergraph.kube.names import MAX_NAME, service_label
from infergraph.kube.orchestrator import ENGINE_CONTAINER

__all__ = [
    "INIT_SUFFIX",
    "ORCHESTRATOR",
    "condition_of",
    "container_statuses",
    "containers_of",
    "deployment_of",
    "failed_run",
    "failing_containers",
    "labels_of",
    "live_pods",
    "meta",
    "model_node",
    "name_of",
    "node_of",
    "pod_ready",
    "pod_who",
    "state_of",
    "who",
]

INIT_SUFFIX = "-model-initializer"
"""Suffix of the model-download init container's name (``kube.model_init``)."""
ORCHESTRATOR = "orchestrator"
_SVC_PREFIX = service_label("")


# --- names -------------------------------------------------------------------------------


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return meta(obj).get("labels") or {}


def deployment_of(pod: Mapping[str, Any]) -> str:
    """The Deployment a pod belongs to: its ``app`` label, which the Deployment selects on."""
    return str(labels_of(pod).get("app") or name_of(pod))


def containers_of(pod: Mapping[str, Any], key: str = "containers") -> list[str]:
    return [str(c.get("name", "")) for c in (pod.get("spec") or {}).get(key) or ()]


def model_node(init: str, containers: Iterable[str]) -> str | None:
    """The container whose model the init container ``init`` downloads; None when ``init`` is
    not a model initializer. The name is cut at 63 characters, so it is matched, not split."""
    for container in containers:
        if f"{container}{INIT_SUFFIX}"[:MAX_NAME] == init:
            return container
    return init.removesuffix(INIT_SUFFIX) if init.endswith(INIT_SUFFIX) else None


def node_of(pod: Mapping[str, Any], container: str) -> str:
    """The short name of what runs in ``container``: its node's name, ``orchestrator`` for the
    orchestrator, the node of a model initializer."""
    if container == ENGINE_CONTAINER:
        return ORCHESTRATOR
    return model_node(container, containers_of(pod)) or container


def who(pod: Mapping[str, Any], container: str) -> str:
    """What runs in main container ``container``, for a reader: ``node classifier``..."""
    labels = labels_of(pod)
    if container == ENGINE_CONTAINER:
        return ORCHESTRATOR
    if labels.get("seldon.io/explainer") == "true":
        return "explainer"
    nodes = {key.removeprefix(_SVC_PREFIX) for key in labels if key.startswith(_SVC_PREFIX)}
    return f"node {container}" if container in nodes or not nodes else f"container {container}"


def pod_who(pod: Mapping[str, Any]) -> str:
    return " and ".join(dict.fromkeys(who(pod, c) for c in containers_of(pod))) or "pod"


# --- status reading ----------------------------------------------------------------------


def live_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pods that count: not being deleted, not finished (an evicted pod stays ``Failed``)."""
    return [
        pod
        for pod in pods
        if not meta(pod).get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]


def condition_of(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return {}


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return condition_of(pod, "Ready").get("status") == "True"


def container_statuses(pod: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], bool]]:
    """(container status, is init) of the pod, init containers first as they run first."""
    status = pod.get("status") or {}
    for cs in status.get("initContainerStatuses") or ():
        yield cs, True
    for cs in status.get("containerStatuses") or ():
        yield cs, False


def state_of(cs: Mapping[str, Any], which: str) -> Mapping[str, Any]:
    return (cs.get("state") or {}).get(which) or {}


def failed_run(cs: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool] | None:
    """The failed run of a container (its ``terminated`` state) and whether it is the previous
    instance: a container waiting in CrashLoopBackOff, or running again after a failed run,
    shows that run in ``lastState``."""
    last = (cs.get("lastState") or {}).get("terminated") or {}
    if state_of(cs, "waiting").get("reason") == "CrashLoopBackOff":
        return last, True
    terminated = state_of(cs, "terminated")
    if terminated and terminated.get("exitCode", 0) != 0:
        return terminated, False
    running = state_of(cs, "running") and not cs.get("ready")
    if running and int(cs.get("restartCount", 0)) and last.get("exitCode", 0) != 0:
        return last, True
    return None


def failing_containers(pods: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """(pod, container, previous) whose logs ``describe`` should fetch: containers (init too)
    that exited non-zero, wait in CrashLoopBackOff (``previous``: the crashed instance's logs,
    the current one has none) or run unready, with the previous instance when it restarted."""
    out = []
    for pod in pods:
        for cs, init in container_statuses(pod):
            ended = failed_run(cs)
            if ended is not None:
                out.append((name_of(pod), str(cs.get("name")), ended[1]))
            elif not init and state_of(cs, "running") and not cs.get("ready"):
                out.append((name_of(pod), str(cs.get("name")), int(cs.get("restartCount", 0)) > 0))
    return out
