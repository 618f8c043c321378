"""What ``infergraph describe NAME`` says, in plain words. Pure.

``describe`` reads the resource and everything it created (Deployments, ReplicaSets, pods,
events, Services, Endpoints, autoscalers and the log lines of failing containers) into a
:class:`Snapshot`; :func:`diagnose` turns it into :class:`Finding`\\ s that name the graph node,
say what is wrong and what to do, and :func:`report` prints them. Keeping this free of I/O
lets every diagnosis be tested on the JSON a real cluster returns, without a cluster.

A Deployment's replicas usually fail alike, so a problem is reported once per node with the
number of pods that show it ("3 of 3 pods"). Errors come first, then warnings, each in a
fixed order of detectors (causes before their consequences: a crashing container before the
Deployment that stopped progressing and the Service with no endpoints).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from infergraph.kube.diagnose_pods import PodIssue, pod_issues
from infergraph.kube.names import service_label
from infergraph.kube.pod_status import (
    deployment_of,
    failing_containers,
    live_pods,
    pod_ready,
    who,
)

__all__ = ["Finding", "Snapshot", "diagnose", "failing_containers", "report"]

_SVC_PREFIX = service_label("")
_ORDER = (
    "missing",
    "rejected",
    "unprocessed",
    "image",
    "config",
    "model",
    "init",
    "oom",
    "crash",
    "unready",
    "unschedulable",
    "mount",
    "replicas",
    "deadline",
    "endpoints",
    "autoscaler",
)
"""Detectors in report order: the resource, then causes, then their consequences."""


@dataclass
class Snapshot:
    """Everything ``describe`` read from the cluster, as plain Kubernetes JSON."""

    kind: str
    namespace: str
    name: str
    resource: dict[str, Any] | None
    """None: no such resource."""
    deployments: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    """core v1 Events about the resource and its children."""
    services: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    """core v1 Endpoints, named like their Services."""
    autoscalers: list[dict[str, Any]] = field(default_factory=list)
    """autoscaling/v2 HorizontalPodAutoscalers."""
    logs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(pod, container) -> last log lines, of the containers :func:`failing_containers` names."""
    previous_logs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """The same, of the previous (crashed) instance."""


@dataclass(frozen=True)
class Finding:
    """One problem: who has it, what it is, what to do, and the lines that show it."""

    severity: Literal["error", "warning"]
    subject: str
    problem: str
    advice: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Ranked:
    kind: str
    finding: Finding

    def key(self) -> tuple[int, int, str, str]:
        f = self.finding
        return (f.severity != "error", _ORDER.index(self.kind), f.subject, f.problem)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return {}


def _lines(text: Any) -> tuple[str, ...]:
    return tuple(line.rstrip() for line in str(text or "").splitlines() if line.strip())


def _events(snapshot: Snapshot, kind: str, name: str, reasons: Iterable[str]) -> list[str]:
    """Distinct messages of the events ``reasons`` about one object, oldest first."""
    wanted = set(reasons)
    found = [
        e
        for e in snapshot.events
        if (e.get("involvedObject") or {}).get("kind") == kind
        and (e.get("involvedObject") or {}).get("name") == name
        and e.get("reason") in wanted
    ]
    found.sort(key=lambda e: f"{e.get('lastTimestamp') or e.get('eventTime') or ''} {_name(e)}")
    messages = (str(e.get("message") or "").strip() for e in found)
    return list(dict.fromkeys(m for m in messages if m))


def _template_who(deployment: Mapping[str, Any]) -> str:
    """The nodes a Deployment runs, read from its pod template as from a pod."""
    template = (deployment.get("spec") or {}).get("template") or {}
    containers = ((template.get("spec") or {}).get("containers")) or ()
    names = dict.fromkeys(who(template, str(c.get("name"))) for c in containers)
    return ", ".join(names)


# --- the resource ------------------------------------------------------------------------


def _missing(snapshot: Snapshot) -> _Ranked:
    plural = f"{snapshot.kind.lower()}s"
    return _Ranked(
        "missing",
        Finding(
            "error",
            f"{snapshot.kind} {snapshot.name}",
            f'there is no {snapshot.kind} "{snapshot.name}" in namespace {snapshot.namespace}',
            f"`kubectl -n {snapshot.namespace} get {plural}` lists those there are (`kubectl get "
            f"{plural} -A` in every namespace); check the name and the namespace (-n).",
        ),
    )


def _resource(snapshot: Snapshot, resource: Mapping[str, Any]) -> list[_Ranked]:
    subject = f"{snapshot.kind} {snapshot.name}"
    status = resource.get("status") or {}
    if not status.get("state"):
        return [
            _Ranked(
                "unprocessed",
                Finding(
                    "warning",
                    subject,
                    "it has no status yet: the operator has not processed it",
                    "Check that the operator runs: `kubectl -n infergraph-system get pods` and "
                    "`kubectl -n infergraph-system logs deployment/infergraph-operator`.",
                ),
            )
        ]
    invalid = _condition(resource, "Ready").get("reason") == "InvalidSpec"
    if status.get("state") != "Failed" or not (invalid or not snapshot.deployments):
        return []
    description = _lines(status.get("description")) or ("no reason given",)
    advice = (
        "Fix the spec and apply it again; `infergraph validate FILE` checks a file with the "
        "same rules, without a cluster."
    )
    if snapshot.deployments:
        advice += " Until then the Deployments keep running the last spec that was accepted."
    problem = f"its spec was rejected: {description[0]}"
    return [_Ranked("rejected", Finding("error", subject, problem, advice, description))]


# --- pods --------------------------------------------------------------------------------


def _pod_subject(issue: PodIssue, affected: int, total: int) -> str:
    where = f"pod {issue.pod}"
    if total > 1 or affected > 1:
        where = f"{affected} of {total} pods" + (": " if affected == 1 else ", e.g. ") + where
    return (
        f"{issue.who} ({where}, {issue.container})" if issue.container else f"{issue.who} ({where})"
    )


def _pods(snapshot: Snapshot) -> list[_Ranked]:
    """Pod issues, one per (problem, node, container, Deployment) over the replicas."""
    issues = pod_issues(
        snapshot.pods, snapshot.events, snapshot.logs, snapshot.previous_logs, snapshot.namespace
    )
    totals: dict[str, int] = defaultdict(int)
    for pod in live_pods(snapshot.pods):
        totals[deployment_of(pod)] += 1
    groups: dict[tuple[str, str, str, str], list[PodIssue]] = defaultdict(list)
    for issue in issues:
        groups[(issue.kind, issue.deployment, issue.who, issue.container)].append(issue)
    out = []
    for (kind, deployment, _, _), group in groups.items():
        first = min(group, key=lambda i: (-len(i.evidence), i.pod))  # the best-documented
        affected = len({i.pod for i in group})
        subject = _pod_subject(first, affected, max(affected, totals[deployment]))
        finding = Finding(first.severity, subject, first.problem, first.advice, first.evidence)
        out.append(_Ranked(kind, finding))
    return out


# --- workloads ---------------------------------------------------------------------------


def _owner(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or ():
        if ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def _replicasets(snapshot: Snapshot) -> list[_Ranked]:
    """ReplicaSets that can't create their pods: a quota or an admission rule refused them."""
    out = []
    for rs in snapshot.replicasets:
        failure = _condition(rs, "ReplicaFailure")
        if failure.get("status") != "True" or not (rs.get("spec") or {}).get("replicas", 1):
            continue
        message = str(failure.get("message", ""))
        if "exceeded quota" in message:
            advice = (
                "The namespace's ResourceQuota has no room left: lower the pods' requests, "
                "limits or replicas, or raise the quota (`kubectl -n "
                f"{snapshot.namespace} describe resourcequota`)."
            )
        else:
            advice = "The message says which rule refused the pods: change the pod spec to pass it."
        deployment = _owner(rs, "Deployment") or _name(rs)
        finding = Finding(
            "error",
            f"Deployment {deployment}",
            f"its pods can't be created ({failure.get('reason', 'FailedCreate')})",
            advice,
            (message, *_events(snapshot, "ReplicaSet", _name(rs), ["FailedCreate"])),
        )
        out.append(_Ranked("replicas", _dedup_evidence(finding)))
    return out


def _dedup_evidence(finding: Finding) -> Finding:
    evidence = tuple(dict.fromkeys(line for line in finding.evidence if line))
    return Finding(finding.severity, finding.subject, finding.problem, finding.advice, evidence)


def _deadlines(snapshot: Snapshot) -> list[_Ranked]:
    out = []
    for deployment in snapshot.deployments:
        progressing = _condition(deployment, "Progressing")
        if progressing.get("status") != "False":
            continue
        if progressing.get("reason") != "ProgressDeadlineExceeded":
            continue
        seconds = (deployment.get("spec") or {}).get("progressDeadlineSeconds", 600)
        problem = (
            f"its rollout ({_template_who(deployment)}) did not finish within its progress "
            f"deadline of {seconds} s"
        )
        advice = (
            "The rollout stopped waiting: the problems with its pods say why. Fix them and "
            "apply the spec again, which starts a new rollout; the deadline is the predictor's "
            "progressDeadlineSeconds."
        )
        evidence = _lines(progressing.get("message"))
        finding = Finding("error", f"Deployment {_name(deployment)}", problem, advice, evidence)
        out.append(_Ranked("deadline", finding))
    return out


# --- Services and autoscalers ------------------------------------------------------------


def _served(service: Mapping[str, Any]) -> str:
    """What a Service fronts, in words: a node, a predictor's entry point, or itself."""
    selector = (service.get("spec") or {}).get("selector") or {}
    nodes = [key.removeprefix(_SVC_PREFIX) for key in selector if key.startswith(_SVC_PREFIX)]
    if nodes:
        return f"node {nodes[0]}"
    if "seldon-app" in selector:
        predictor = (_meta(service).get("labels") or {}).get("infergraph.io/predictor")
        return f"predictor {predictor}" if predictor else "the predictor"
    return f"Service {_name(service)}"


def _endpoints(snapshot: Snapshot) -> list[_Ranked]:
    """Services none of whose pods is ready: every call to them fails."""
    endpoints = {_name(e): e for e in snapshot.endpoints}
    out = []
    for service in snapshot.services:
        name = _name(service)
        selector = (service.get("spec") or {}).get("selector") or {}
        if name not in endpoints or not selector:
            continue
        subsets = endpoints[name].get("subsets") or ()
        if any(s.get("addresses") for s in subsets):
            continue
        unready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
        served = _served(service)
        problem = f"it has no ready endpoints, so calls to {served} fail"
        if unready:
            problem += f" ({unready} pod{'s' if unready > 1 else ''} not ready)"
            advice = f"Its pods are not ready: the problems with {served} say why."
            severity: Literal["error", "warning"] = "warning"
        else:
            labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            advice = (
                f"No running pod matches its selector: check that the pods exist and carry "
                f"the labels (`kubectl -n {snapshot.namespace} get pods -l {labels}`)."
            )
            severity = "error"
        out.append(_Ranked("endpoints", Finding(severity, f"Service {name}", problem, advice)))
    return out


def _metrics_advice(reason: str, text: str) -> str:
    """What to do, by the metric's source: resource metrics come from metrics-server, the
    others from an adapter."""
    if "missing request for" in text:
        return (
            "Utilization is measured against requests: set resources.requests for the metric "
            "on every container of the pod (the node's in the componentSpec)."
        )
    if "ResourceMetric" in reason or "resource metrics API" in text:
        return (
            "Install metrics-server (`kubectl get apiservice v1beta1.metrics.k8s.io` shows "
            "whether it runs; on kind it needs --kubelet-insecure-tls) and set "
            "resources.requests for the metric on the containers. Right after pods start, "
            "their metrics take a minute to appear."
        )
    return (
        "Install an adapter that serves the metric the HPA names (prometheus-adapter for "
        "custom metrics, or KEDA), and check the metric's name."
    )


def _autoscalers(snapshot: Snapshot) -> list[_Ranked]:
    out = []
    for hpa in snapshot.autoscalers:
        active = _condition(hpa, "ScalingActive")
        if active.get("status") != "False" or active.get("reason") == "ScalingDisabled":
            continue
        name = _name(hpa)
        target = ((hpa.get("spec") or {}).get("scaleTargetRef") or {}).get("name", name)
        reasons = ["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]
        reasons += ["FailedGetPodsMetric", "FailedGetExternalMetric", "FailedGetObjectMetric"]
        evidence = (
            *_lines(active.get("message")),
            *_events(snapshot, "HorizontalPodAutoscaler", name, reasons),
        )
        finding = Finding(
            "warning",
            f"HorizontalPodAutoscaler {name}",
            f"it can't read its metrics ({active.get('reason')}), so it doesn't scale "
            f"Deployment {target}",
            _metrics_advice(str(active.get("reason", "")), " ".join(evidence)),
            tuple(dict.fromkeys(evidence)),
        )
        out.append(_Ranked("autoscaler", finding))
    return out


# --- the whole -----------------------------------------------------------------------------


def diagnose(snapshot: Snapshot) -> list[Finding]:
    """Every problem ``snapshot`` shows: errors first, then warnings, in a fixed order."""
    if snapshot.resource is None:
        return [_missing(snapshot).finding]
    ranked = [
        *_resource(snapshot, snapshot.resource),
        *_pods(snapshot),
        *_replicasets(snapshot),
        *_deadlines(snapshot),
        *_endpoints(snapshot),
        *_autoscalers(snapshot),
    ]
    findings = [r.finding for r in sorted(ranked, key=_Ranked.key)]
    return list(dict.fromkeys(findings))


def _ready_pods(snapshot: Snapshot) -> tuple[int, int]:
    pods = live_pods(snapshot.pods)
    return sum(pod_ready(pod) for pod in pods), len(pods)


def _header(snapshot: Snapshot) -> list[str]:
    title = f"{snapshot.kind} {snapshot.name} (namespace {snapshot.namespace})"
    if snapshot.resource is None:
        return [f"{title}: not found"]
    status = snapshot.resource.get("status") or {}
    lines = [title, f"State:        {status.get('state') or 'unknown (no status)'}"]
    description = _lines(status.get("description"))
    if description:
        lines.append(f"Description:  {description[0]}")
        lines += [f"              {line}" for line in description[1:]]
    url = (status.get("address") or {}).get("url")
    if url:
        lines.append(f"Address:      {url}")
    if snapshot.deployments:
        lines.append("Deployments:")
        width = max(len(_name(d)) for d in snapshot.deployments)
        for deployment in sorted(snapshot.deployments, key=_name):
            lines.append(f"  {_name(deployment):<{width}}  {_replicas(deployment)}")
    return lines


def _replicas(deployment: Mapping[str, Any]) -> str:
    desired = (deployment.get("spec") or {}).get("replicas", 1)
    ready = (deployment.get("status") or {}).get("readyReplicas") or 0
    return f"{ready}/{desired} ready  ({_template_who(deployment)})"


def _finding_lines(finding: Finding) -> list[str]:
    lines = [f"  {finding.severity.upper():<7} {finding.subject}", f"          {finding.problem}"]
    lines += [f"            | {line}" for line in finding.evidence]
    lines.append(f"          → {finding.advice}")
    return lines


def report(snapshot: Snapshot, findings: Sequence[Finding]) -> str:
    """The text ``describe`` prints: a header, then the problems or the healthy line."""
    lines = _header(snapshot)
    if findings:
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        lines += ["", f"Problems ({counts}):"]
        for finding in findings:
            lines += ["", *_finding_lines(finding)]
    else:
        ready, total = _ready_pods(snapshot)
        state = (snapshot.resource or {}).get("status", {}).get("state") or "unknown"
        lines += ["", f"{snapshot.kind} {snapshot.name} is {state}: {ready} of {total} pods ready."]
        if state != "Available":
            lines.append("No problems found yet.")
    return "\n".join(lines) + "\n"
