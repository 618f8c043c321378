"""Why a node's pod or container does not run, read from its status as the API server returns
it. Pure: the caller (``infergraph describe``) fetched pods, events and log lines.

Each detector looks at one container status (or one pod's conditions) and says what is wrong
with it in words a model author knows: which node, which image, which exit code, which log
lines. The current state is the diagnosis and events are only evidence, because events
outlive the problem they describe by an hour: a pod that recovered must not be reported.
:mod:`infergraph.kube.diagnose` de-duplicates the issues over a Deployment's replicas.

Containers are named by node: the orchestrator's container is ``seldon-container-engine``,
a model-download init container is ``<container>-model-initializer`` and a node's container
is the one its pod labels ``seldon-app-svc-<container>`` (the label its Service selects).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from infergraph.kube.orchestrator import ENGINE_CONTAINER
from infergraph.kube.pod_status import (
    condition_of,
    container_statuses,
    containers_of,
    deployment_of,
    failed_run,
    live_pods,
    model_node,
    name_of,
    pod_who,
    state_of,
    who,
)

__all__ = ["Logs", "PodIssue", "pod_issues"]

Severity = Literal["error", "warning"]
Logs = Mapping[tuple[str, str], Sequence[str]]
"""(pod, container) -> last log lines."""

MAX_LOG_LINES = 10
"""Log lines kept as evidence: the end of a traceback, not the whole log."""
MAX_EVENTS = 3
_PULL = {"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName"}
_CONFIG = {"CreateContainerConfigError", "CreateContainerError"}
_ECHO = re.compile(r"Error: \w+")
"""The kubelet's ``Error: ImagePullBackOff`` events only repeat the waiting reason."""
_FIELD_PATH = re.compile(r"spec\.(?:init)?[cC]ontainers\{(?P<name>[^}]*)\}")


@dataclass(frozen=True)
class PodIssue:
    """One problem of one pod (or one of its containers), before de-duplication."""

    kind: str
    """The detector, which orders findings and groups replicas."""
    severity: Severity
    pod: str
    deployment: str
    who: str
    """``node classifier``, ``orchestrator``, ``explainer`` or ``container x``."""
    container: str
    """``container x`` or ``init container x``; empty for the pod itself."""
    problem: str
    advice: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Context:
    """What detectors read besides the status they diagnose."""

    namespace: str
    events: Sequence[Mapping[str, Any]]
    logs: Logs
    previous_logs: Logs


def _event_time(event: Mapping[str, Any]) -> str:
    """RFC 3339 timestamps in UTC sort as strings; the name breaks ties deterministically."""
    stamp = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return f"{stamp or ''} {name_of(event)}"


def _events(
    ctx: _Context,
    kind: str,
    name: str,
    reasons: Iterable[str],
    container: str | None = None,
) -> tuple[str, ...]:
    """The last distinct messages of events ``reasons`` about one object (one container)."""
    wanted = set(reasons)
    messages: list[str] = []
    for event in sorted(ctx.events, key=_event_time):
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != kind or involved.get("name") != name:
            continue
        if event.get("reason") not in wanted:
            continue
        path = _FIELD_PATH.fullmatch(str(involved.get("fieldPath") or ""))
        if container is not None and path is not None and path["name"] != container:
            continue
        message = str(event.get("message") or "").strip()
        if message and not _ECHO.fullmatch(message):
            messages = [m for m in messages if m != message] + [message]
    return tuple(messages[-MAX_EVENTS:])


def _lines(text: str | None) -> list[str]:
    return [line.rstrip() for line in (text or "").strip("\n").splitlines() if line.strip()]


def _log_tail(
    ctx: _Context, pod: str, container: str, previous: bool, message: str | None = None
) -> tuple[str, ...]:
    """The last log lines of the run that failed; its termination message (which
    ``FallbackToLogsOnError`` fills with the log's end) when the logs were not fetched."""
    first, second = (ctx.previous_logs, ctx.logs) if previous else (ctx.logs, ctx.previous_logs)
    lines = first.get((pod, container)) or second.get((pod, container)) or _lines(message)
    return tuple(line.rstrip("\n") for line in list(lines)[-MAX_LOG_LINES:])


def _exit(terminated: Mapping[str, Any]) -> str:
    code = terminated.get("exitCode")
    reason = terminated.get("reason")
    text = f"code {code}" if code is not None else "an unknown code"
    return f"{text} ({reason})" if reason else text


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _spec(pod: Mapping[str, Any], container: str, init: bool) -> Mapping[str, Any]:
    key = "initContainers" if init else "containers"
    for spec in (pod.get("spec") or {}).get(key) or ():
        if spec.get("name") == container:
            return spec
    return {}


# --- detectors of one container ----------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """One container status in its pod, as every detector reads it."""

    pod: Mapping[str, Any]
    cs: Mapping[str, Any]
    init: bool
    ctx: _Context

    @property
    def pod_name(self) -> str:
        return name_of(self.pod)

    @property
    def name(self) -> str:
        return str(self.cs.get("name", ""))

    @property
    def model(self) -> str | None:
        return model_node(self.name, containers_of(self.pod)) if self.init else None

    def issue(self, kind: str, problem: str, advice: str, evidence: Iterable[str] = ()) -> PodIssue:
        return self.issue_as(kind, "error", problem, advice, evidence)

    def issue_as(
        self, kind: str, severity: Severity, problem: str, advice: str, evidence: Iterable[str]
    ) -> PodIssue:
        model = self.model
        subject = who(self.pod, model if model is not None else self.name)
        container = f"init container {self.name}" if self.init else f"container {self.name}"
        return PodIssue(
            kind,
            severity,
            self.pod_name,
            deployment_of(self.pod),
            subject,
            container,
            problem,
            advice,
            tuple(dict.fromkeys(evidence)),
        )

    def events(self, *reasons: str) -> tuple[str, ...]:
        return _events(self.ctx, "Pod", self.pod_name, reasons, self.name)

    def logs_command(self, previous: bool = False) -> str:
        flag = " --previous" if previous else ""
        return f"`kubectl -n {self.ctx.namespace} logs {self.pod_name} -c {self.name}{flag}`"


def _image_pull(seen: _Seen) -> PodIssue | None:
    waiting = state_of(seen.cs, "waiting")
    reason = waiting.get("reason")
    if reason not in _PULL:
        return None
    image = str(seen.cs.get("image") or _spec(seen.pod, seen.name, seen.init).get("image", ""))
    events = seen.events("Failed", "BackOff", "ErrImageNeverPull")
    evidence = [waiting.get("message", ""), *(e for e in events if "image" in e.lower())]
    if reason == "ErrImageNeverPull":
        advice = (
            f'Its imagePullPolicy is Never and the node has no "{image}": load the image into '
            f"the cluster (`kind load docker-image {image}`) or set imagePullPolicy: IfNotPresent."
        )
    elif reason == "InvalidImageName":
        advice = f'"{image}" is not a valid image reference: fix the image in the componentSpec.'
    else:
        advice = (
            f"Check that the image name and tag exist (`docker pull {image}`) and that the "
            "cluster may pull it: registry credentials go in imagePullSecrets of the pod spec "
            "or its service account. For an image built locally, load it into the cluster "
            f"(`kind load docker-image {image}`) and set imagePullPolicy: IfNotPresent."
        )
    return seen.issue("image", f'the image "{image}" can\'t be pulled ({reason})', advice, evidence)


def _config(seen: _Seen) -> PodIssue | None:
    waiting = state_of(seen.cs, "waiting")
    if waiting.get("reason") not in _CONFIG:
        return None
    message = str(waiting.get("message", ""))
    if seen.model is not None:
        advice = (
            "The model download reads its credentials from the Secret named by the node's "
            f"envSecretRefName: create it in namespace {seen.ctx.namespace} (`kubectl -n "
            f"{seen.ctx.namespace} create secret generic NAME --from-literal=KEY=VALUE`) or "
            "fix the name."
        )
    else:
        advice = (
            "Create the Secret or ConfigMap its env or envFrom refers to in namespace "
            f"{seen.ctx.namespace}, or fix the reference in the componentSpec."
        )
    return seen.issue(
        "config",
        f"its container can't be created: {message}",
        advice,
        [message, *seen.events("Failed")],
    )


def _oom(seen: _Seen) -> PodIssue | None:
    last = (seen.cs.get("lastState") or {}).get("terminated") or {}
    current = state_of(seen.cs, "terminated")
    killed = current if current.get("reason") == "OOMKilled" else last
    if killed.get("reason") != "OOMKilled":
        return None
    limit = (
        (_spec(seen.pod, seen.name, seen.init).get("resources") or {}).get("limits") or {}
    ).get("memory")
    restarts = int(seen.cs.get("restartCount", 0))
    code = killed.get("exitCode", 137)
    problem = (
        f"it was killed for using more memory than it may (OOMKilled, exit code {code}"
        + (f", memory limit {limit}" if limit else "")
        + f"), restarted {_times(restarts)}"
    )
    if limit:
        advice = (
            f"Raise resources.limits.memory (and requests.memory) of container {seen.name} in "
            f"its componentSpec above {limit}, then apply the spec again."
        )
    else:
        advice = (
            f"It has no memory limit, so the node itself ran out of memory: set "
            f"resources.requests.memory of container {seen.name} to what the model needs, so "
            "the scheduler places it on a node with room."
        )
    ready = bool(seen.cs.get("ready"))
    evidence = _log_tail(seen.ctx, seen.pod_name, seen.name, True)
    return seen.issue_as("oom", "warning" if ready else "error", problem, advice, evidence)


def _init_failure(seen: _Seen) -> PodIssue | None:
    ended = failed_run(seen.cs) if seen.init else None
    if ended is None:
        return None
    terminated, previous = ended
    logs = _log_tail(seen.ctx, seen.pod_name, seen.name, previous, terminated.get("message"))
    restarts = int(seen.cs.get("restartCount", 0))
    tries = f", tried {restarts + 1} times" if restarts else ""
    if seen.model is not None:
        problem = (
            f"its model download failed: `infergraph fetch-model` exited with {_exit(terminated)}"
            f"{tries}; the node can't start until it succeeds"
        )
        advice = (
            "Check the node's modelUri (the bucket, path and scheme exist and are spelled "
            "right) and its storage credentials, the Secret named by envSecretRefName. "
            f"{seen.logs_command(previous)} shows the whole output; `infergraph fetch-model "
            "URI DIR` reproduces the download locally."
        )
        return seen.issue("model", problem, advice, logs)
    problem = f"it keeps failing with {_exit(terminated)}{tries}, so the pod can't start"
    advice = f"The log lines above say why; {seen.logs_command(previous)} shows more."
    return seen.issue("init", problem, advice, logs)


def _probe_events(seen: _Seen) -> tuple[str, ...]:
    return seen.events("Unhealthy", "Killing")


def _crash(seen: _Seen) -> PodIssue | None:
    ended = None if seen.init else failed_run(seen.cs)
    if ended is None or (state_of(seen.cs, "running") and _probe_events(seen)):
        return None  # a container its liveness probe restarts is not ready, not crashing
    terminated, previous = ended
    restarts = int(seen.cs.get("restartCount", 0))
    logs = _log_tail(seen.ctx, seen.pod_name, seen.name, previous, terminated.get("message"))
    problem = f"it keeps crashing: it exited with {_exit(terminated)}, restarted {_times(restarts)}"
    advice = f"The last log lines above say why it exits; {seen.logs_command(previous)} shows more."
    if seen.name == ENGINE_CONTAINER:
        advice += " `infergraph serve FILE` runs the same graph locally."
    else:
        advice += (
            " An exception while loading the model, a missing package or a wrong entry point "
            "is the usual cause: run the image locally (`docker run --rm IMAGE`) to see it."
        )
    return seen.issue("crash", problem, advice, logs)


def _unready(seen: _Seen) -> PodIssue | None:
    if seen.init or not state_of(seen.cs, "running") or seen.cs.get("ready"):
        return None
    probes = _probe_events(seen)
    logs = _log_tail(seen.ctx, seen.pod_name, seen.name, False)[-5:]
    restarts = int(seen.cs.get("restartCount", 0))
    if not probes:
        return seen.issue_as(
            "unready",
            "warning",
            "it is running but not ready yet",
            "It may still be loading its model: run describe again in a minute. If it stays "
            f"unready, {seen.logs_command()} says why.",
            logs,
        )
    failing = "readiness" if any(p.startswith("Readiness") for p in probes) else "liveness"
    problem = f"it is running but not ready: its {failing} probe fails"
    if restarts:
        problem += f" (restarted {_times(restarts)})"
    advice = (
        "A model that is still loading fails its probes: if it needs longer, raise "
        f"initialDelaySeconds or failureThreshold of its {failing}Probe. Otherwise it can't "
        f"serve on its port: {seen.logs_command()} says why."
    )
    return seen.issue("unready", problem, advice, [*probes, *logs])


_CONTAINER_DETECTORS = (_image_pull, _config, _oom, _init_failure, _crash, _unready)


def _container_issue(seen: _Seen) -> PodIssue | None:
    """The first problem the detectors see, most specific first: an OOM kill is also a crash."""
    for detector in _CONTAINER_DETECTORS:
        issue = detector(seen)
        if issue is not None:
            return issue
    return None


# --- detectors of one pod ----------------------------------------------------------------


def _pod_issue(
    pod: Mapping[str, Any], ctx: _Context, kind: str, problem: str, advice: str, evidence: Any
) -> PodIssue:
    return PodIssue(
        kind,
        "error",
        name_of(pod),
        deployment_of(pod),
        pod_who(pod),
        "",
        problem,
        advice,
        tuple(dict.fromkeys(evidence)),
    )


def _schedule_advice(message: str) -> str:
    if "Insufficient" in message:
        return (
            "The pod asks for more CPU or memory than any node has free: lower "
            "resources.requests (and limits) in the componentSpec, or add nodes; `kubectl "
            "describe nodes` shows what is allocated."
        )
    if "persistentvolumeclaim" in message.lower():
        return "Create the PersistentVolumeClaim it mounts (a pvc:// modelUri names one)."
    if "taint" in message or "affinity" in message or "selector" in message:
        return (
            "No node matches the pod's nodeSelector, affinity or tolerations: fix them in the "
            "componentSpec, or label the nodes to match."
        )
    return "The scheduler's message above says which nodes were ruled out and why."


def _unschedulable(pod: Mapping[str, Any], ctx: _Context) -> PodIssue | None:
    scheduled = condition_of(pod, "PodScheduled")
    if scheduled.get("status") != "False" or scheduled.get("reason") != "Unschedulable":
        return None
    message = str(scheduled.get("message", ""))
    evidence = [message, *_events(ctx, "Pod", name_of(pod), ["FailedScheduling"])]
    return _pod_issue(
        pod,
        ctx,
        "unschedulable",
        "its pod can't be scheduled on any node, so it stays Pending",
        _schedule_advice(" ".join(evidence)),
        evidence,
    )


def _mount(pod: Mapping[str, Any], ctx: _Context) -> PodIssue | None:
    waiting = {state_of(cs, "waiting").get("reason") for cs, _ in container_statuses(pod)}
    if not waiting & {"ContainerCreating", "PodInitializing"}:
        return None
    evidence = _events(ctx, "Pod", name_of(pod), ["FailedMount", "FailedAttachVolume"])
    if not evidence:
        return None
    return _pod_issue(
        pod,
        ctx,
        "mount",
        "its volumes can't be mounted, so its containers can't start",
        f"Create the Secret, ConfigMap or PersistentVolumeClaim named above in namespace "
        f"{ctx.namespace}, or fix the name in the componentSpec.",
        evidence,
    )


def pod_issues(
    pods: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    logs: Logs,
    previous_logs: Logs,
    namespace: str,
) -> list[PodIssue]:
    """Every problem of every live pod: its own, else one per container."""
    ctx = _Context(namespace, events, logs, previous_logs)
    out = []
    for pod in live_pods(pods):
        issue = _unschedulable(pod, ctx) or _mount(pod, ctx)
        if issue is not None:
            out.append(issue)
            continue
        for cs, init in container_statuses(pod):
            found = _container_issue(_Seen(pod, cs, init, ctx))
            if found is not None:
                out.append(found)
    return out
