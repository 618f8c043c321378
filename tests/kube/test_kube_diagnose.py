"""``kube.diagnose``: what ``infergraph describe`` says about a graph on a cluster.

Every fixture is shaped like ``kubectl get -o json`` output of a real cluster (kind, one
worker): a GraphDeployment ``iris`` in ``models`` with predictor ``default`` whose one
componentSpec runs node ``classifier`` (model downloaded by ``classifier-model-initializer``)
and the orchestrator ``seldon-container-engine``, as ``kube.render`` renders it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infergraph.kube.diagnose import Finding, Snapshot, diagnose, failing_containers, report

NS = "models"
DEPLOYMENT = "iris-default-0-classifier"
RS = f"{DEPLOYMENT}-7d9c8b6f5"
SERVICE = "iris-default-classifier"
IMAGE = "registry.example.com/iris:1.0"
RUNTIME = "ghcr.io/infergraph/infergraph:0.9.0"
STARTED = "2026-12-02T10:00:00Z"
SUFFIXES = ("x2x7k", "b9qzl", "m4tfp")


# --- builders: Kubernetes JSON as the API server returns it ------------------------------


def running(ready: bool = True, restarts: int = 0, last: dict[str, Any] | None = None):
    """A container status in state running."""
    return {
        "state": {"running": {"startedAt": STARTED}},
        "lastState": {"terminated": last} if last else {},
        "ready": ready,
        "restartCount": restarts,
        "started": True,
    }


def waiting(reason: str, message: str | None = None, restarts: int = 0, last=None):
    state: dict[str, Any] = {"reason": reason}
    if message is not None:
        state["message"] = message
    return {
        "state": {"waiting": state},
        "lastState": {"terminated": last} if last else {},
        "ready": False,
        "restartCount": restarts,
        "started": False,
    }


def terminated(code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": code,
        "reason": reason,
        "startedAt": "2026-12-02T10:01:00Z",
        "finishedAt": "2026-12-02T10:01:04Z",
        "containerID": "containerd://6f1c0d3b9a2e",
    }
    if message is not None:
        out["message"] = message
    return out


def done() -> dict[str, Any]:
    """A model initializer that finished."""
    return {
        "state": {"terminated": terminated(0, "Completed")},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
    }


def _status(name: str, image: str, base: dict[str, Any]) -> dict[str, Any]:
    out = {"name": name, "image": image, "imageID": "", **base}
    if "running" in base["state"] or "terminated" in base["state"]:
        out["imageID"] = f"{image.split(':')[0]}@sha256:4b1e7c2d"
        out["containerID"] = "containerd://9a8b7c6d5e4f"
    return out


def pod(
    suffix: str = SUFFIXES[0],
    classifier: dict[str, Any] | None = None,
    engine: dict[str, Any] | None = None,
    init: dict[str, Any] | None = None,
    phase: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deployment: str = DEPLOYMENT,
    memory_limit: str | None = "1Gi",
) -> dict[str, Any]:
    """A pod of ``deployment``, healthy unless a container status says otherwise."""
    classifier = classifier or running()
    engine = engine or running()
    init = init or done()
    statuses = [
        _status("classifier", IMAGE, classifier),
        _status("seldon-container-engine", RUNTIME, engine),
    ]
    ready = all(s["ready"] for s in statuses)
    initialized = init["ready"]
    name = f"{deployment}-7d9c8b6f5-{suffix}"
    resources: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "512Mi"}}
    if memory_limit:
        resources["limits"] = {"memory": memory_limit}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"{deployment}-7d9c8b6f5-",
            "namespace": NS,
            "uid": f"3f0a9c1e-{suffix}",
            "creationTimestamp": STARTED,
            "labels": {
                "app": deployment,
                "app.kubernetes.io/managed-by": "infergraph",
                "fluentd": "true",
                "infergraph.io/deployment": "iris",
                "infergraph.io/predictor": "default",
                "pod-template-hash": "7d9c8b6f5",
                "seldon-app": "iris-default",
                "seldon-app-svc-classifier": SERVICE,
                "seldon-deployment-id": "iris",
                "seldon.io/model": "true",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{deployment}-7d9c8b6f5",
                    "uid": "d2c4a6e8",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "initContainers": [
                {
                    "name": "classifier-model-initializer",
                    "image": RUNTIME,
                    "command": ["infergraph", "fetch-model", "s3://models/iris", "/mnt/models"],
                    "envFrom": [{"secretRef": {"name": "s3-credentials"}}],
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
            "containers": [
                {"name": "classifier", "image": IMAGE, "resources": resources},
                {
                    "name": "seldon-container-engine",
                    "image": RUNTIME,
                    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                },
            ],
            "restartPolicy": "Always",
            "nodeName": "kind-worker",
        },
        "status": {
            "phase": phase or ("Running" if initialized else "Pending"),
            "conditions": conditions
            or [
                {"type": "Initialized", "status": str(initialized)},
                {"type": "Ready", "status": str(ready and initialized)},
                {"type": "ContainersReady", "status": str(ready and initialized)},
                {"type": "PodScheduled", "status": "True"},
            ],
            "hostIP": "172.18.0.2",
            "podIP": "10.244.1.7",
            "startTime": STARTED,
            "qosClass": "Burstable",
            "initContainerStatuses": [_status("classifier-model-initializer", RUNTIME, init)],
            "containerStatuses": statuses,
        },
    }


def event(
    pod_name: str,
    reason: str,
    message: str,
    container: str | None = "classifier",
    kind: str = "Pod",
    type_: str = "Warning",
    count: int = 1,
    at: str = "2026-12-02T10:05:00Z",
) -> dict[str, Any]:
    involved: dict[str, Any] = {
        "kind": kind,
        "namespace": NS,
        "name": pod_name,
        "uid": "3f0a9c1e",
        "apiVersion": "v1" if kind == "Pod" else "autoscaling/v2",
        "resourceVersion": "48213",
    }
    if container is not None and kind == "Pod":
        field = "initContainers" if container.endswith("-initializer") else "containers"
        involved["fieldPath"] = f"spec.{field}{{{container}}}"
    source = "default-scheduler" if reason == "FailedScheduling" else "kubelet"
    if kind != "Pod":
        source = "horizontal-pod-autoscaler" if kind.startswith("Horizontal") else "replicaset"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod_name}.17e0c{len(message):04x}", "namespace": NS},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": source, "host": "kind-worker"},
        "firstTimestamp": "2026-12-02T10:00:05Z",
        "lastTimestamp": at,
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": source,
        "reportingInstance": "kind-worker",
    }


def deployment(
    ready: int = 3, replicas: int = 3, conditions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NS, "generation": 1},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"seldon-deployment-id": "iris", "app": DEPLOYMENT}},
            "template": {
                "metadata": {"labels": pod()["metadata"]["labels"]},
                "spec": {"containers": pod()["spec"]["containers"]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": replicas - ready,
            "conditions": conditions
            or [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{RS}" has successfully progressed.',
                },
            ],
        },
    }


def replicaset(conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"replicas": 3, "readyReplicas": 3, "observedGeneration": 1}
    if conditions:
        status = {"replicas": 0, "observedGeneration": 1, "conditions": conditions}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": RS,
            "namespace": NS,
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT}
            ],
        },
        "spec": {"replicas": 3},
        "status": status,
    }


def service(name: str, selector: dict[str, str], ports: tuple[int, int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"infergraph.io/predictor": "default", "seldon-deployment-id": "iris"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.14.2",
            "selector": selector,
            "ports": [
                {"name": "http", "port": ports[0], "targetPort": ports[0], "protocol": "TCP"},
                {"name": "grpc", "port": ports[1], "targetPort": ports[1], "protocol": "TCP"},
            ],
        },
    }


def endpoints(name: str, ready: int = 3, unready: int = 0, port: int = 9000) -> dict[str, Any]:
    def address(i: int) -> dict[str, Any]:
        pod_name = f"{DEPLOYMENT}-7d9c8b6f5-{SUFFIXES[i % 3]}"
        return {
            "ip": f"10.244.1.{7 + i}",
            "nodeName": "kind-worker",
            "targetRef": {"kind": "Pod", "name": pod_name, "namespace": NS, "uid": "3f0a9c1e"},
        }

    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": NS},
    }
    subset: dict[str, Any] = {"ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [address(i) for i in range(ready)]
    if unready:
        subset["notReadyAddresses"] = [address(i) for i in range(unready)]
    if ready or unready:
        out["subsets"] = [subset]
    return out


def hpa(active: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": DEPLOYMENT, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT},
            "minReplicas": 3,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 3,
            "conditions": [
                {
                    "type": "AbleToScale",
                    "status": "True",
                    "reason": "ReadyForNewScale",
                    "message": "recommended size matches current size",
                },
                active
                or {
                    "type": "ScalingActive",
                    "status": "True",
                    "reason": "ValidMetricFound",
                    "message": "the HPA was able to successfully calculate a replica count from "
                    "cpu resource utilization (percentage of request)",
                },
            ],
        },
    }


def resource(state: str | None = "Available", description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": "infergraph.io/v1",
        "kind": "GraphDeployment",
        "metadata": {"name": "iris", "namespace": NS, "generation": 1},
        "spec": {"predictors": [{"name": "default", "graph": {"name": "classifier"}}]},
    }
    if state is not None:
        out["status"] = {
            "state": state,
            "description": description or "every Deployment is available",
            "observedGeneration": 1,
            "address": {
                "url": "http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions"
            },
        }
    return out


def healthy(replicas: int = 3) -> Snapshot:
    pods = [pod(suffix) for suffix in SUFFIXES[:replicas]]
    return Snapshot(
        kind="GraphDeployment",
        namespace=NS,
        name="iris",
        resource=resource(),
        deployments=[deployment(replicas, replicas)],
        replicasets=[replicaset()],
        pods=pods,
        events=[
            event(
                pods[0]["metadata"]["name"],
                "Pulled",
                f'Container image "{IMAGE}" already present on machine',
                type_="Normal",
            ),
            # an hour-old failure of a pod that recovered: events outlive their problem
            event(pods[0]["metadata"]["name"], "BackOff", "Back-off restarting failed container"),
        ],
        services=[
            service(SERVICE, {"seldon-app-svc-classifier": SERVICE}, (9000, 9500)),
            service("iris-default", {"seldon-app": "iris-default"}, (8000, 5001)),
        ],
        endpoints=[endpoints(SERVICE, replicas), endpoints("iris-default", replicas, port=8000)],
        autoscalers=[hpa()],
    )


def with_pods(snapshot: Snapshot, *pods: dict[str, Any], ready: int = 0) -> Snapshot:
    out = copy.deepcopy(snapshot)
    out.pods = list(pods)
    out.deployments = [deployment(ready, len(pods))]
    return out


def name_of(suffix: str = SUFFIXES[0]) -> str:
    return f"{DEPLOYMENT}-7d9c8b6f5-{suffix}"


def only(findings: list[Finding], words: str) -> Finding:
    found = [f for f in findings if words in f.problem]
    assert len(found) == 1, [f.problem for f in findings]
    return found[0]


# --- healthy and missing -----------------------------------------------------------------


def test_a_healthy_deployment_has_no_findings_and_says_so() -> None:
    snapshot = healthy()
    assert diagnose(snapshot) == []
    text = report(snapshot, [])
    assert text.startswith("GraphDeployment iris (namespace models)\nState:        Available\n")
    assert f"  {DEPLOYMENT}  3/3 ready  (node classifier, orchestrator)" in text
    assert text.endswith("GraphDeployment iris is Available: 3 of 3 pods ready.\n")
    assert "Problems" not in text


def test_no_such_resource_names_kind_name_namespace_and_how_to_list() -> None:
    snapshot = Snapshot("SeldonDeployment", NS, "iris", None, [], [], [], [], [], [], [], {}, {})
    [finding] = diagnose(snapshot)
    assert finding.severity == "error"
    assert finding.subject == "SeldonDeployment iris"
    assert finding.problem == 'there is no SeldonDeployment "iris" in namespace models'
    assert "kubectl -n models get seldondeployments" in finding.advice
    text = report(snapshot, [finding])
    assert text.startswith("SeldonDeployment iris (namespace models): not found\n")


def test_a_resource_the_operator_never_saw_is_a_warning() -> None:
    snapshot = healthy()
    snapshot.resource = resource(state=None)
    snapshot.deployments = snapshot.pods = []
    [finding] = diagnose(snapshot)
    assert finding.severity == "warning"
    assert "operator" in finding.problem and "infergraph-system" in finding.advice


# --- the spec ----------------------------------------------------------------------------


def test_a_rejected_spec_quotes_the_description_and_points_at_validate() -> None:
    message = (
        "spec.predictors[0].traffic: the traffic of the predictors must sum to 100, not 90\n"
        "spec.predictors[1].graph.name: node 'classifer' has no container named 'classifer'"
    )
    snapshot = Snapshot("GraphDeployment", NS, "iris", resource("Failed", message))
    [finding] = diagnose(snapshot)
    assert finding.subject == "GraphDeployment iris"
    assert finding.problem.startswith("its spec was rejected: spec.predictors[0].traffic")
    assert finding.evidence == tuple(message.splitlines())
    assert "infergraph validate FILE" in finding.advice
    text = report(snapshot, [finding])
    assert "State:        Failed\n" in text
    assert "              spec.predictors[1].graph.name" in text


# --- containers --------------------------------------------------------------------------


def test_an_image_that_cant_be_pulled_names_image_node_and_the_three_causes() -> None:
    back_off = waiting("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')
    pods = [pod(s, classifier=back_off) for s in SUFFIXES]
    snapshot = with_pods(healthy(), *pods)
    not_found = (
        f'Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = failed to pull and '
        f'unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": {IMAGE}: not found'
    )
    snapshot.events = [
        event(name_of(), "Pulling", f'Pulling image "{IMAGE}"', type_="Normal"),
        event(name_of(), "Failed", not_found, at="2026-12-02T10:00:07Z"),
        event(name_of(), "Failed", "Error: ErrImagePull", at="2026-12-02T10:00:07Z"),
        event(name_of(), "BackOff", f'Back-off pulling image "{IMAGE}"', count=9),
        event(name_of(), "Failed", "Error: ImagePullBackOff", count=9),
    ]
    snapshot.endpoints = [endpoints(SERVICE, 0, 3), endpoints("iris-default", 0, 3, 8000)]
    findings = diagnose(snapshot)
    image = only(findings, "can't be pulled")
    assert image.severity == "error"
    assert image.subject == (  # the pod the events are about
        f"node classifier (3 of 3 pods, e.g. pod {name_of()}, container classifier)"
    )
    assert f'"{IMAGE}"' in image.problem and "ImagePullBackOff" in image.problem
    assert f'Back-off pulling image "{IMAGE}"' in image.evidence
    assert not_found in image.evidence
    for words in ("tag", "imagePullSecrets", "imagePullPolicy", "kind load docker-image"):
        assert words in image.advice
    # the orchestrator in the same pods is fine: the image problem is reported once
    assert [f.subject.split(" (")[0] for f in findings if f.severity == "error"] == [
        "node classifier"
    ]


def test_a_crash_loop_shows_exit_code_and_the_previous_instances_last_lines() -> None:
    crash = waiting(
        "CrashLoopBackOff",
        f"back-off 2m40s restarting failed container=classifier pod={name_of()}_models(3f0a9c1e)",
        restarts=5,
        last=terminated(1, "Error"),
    )
    traceback = [
        "Traceback (most recent call last):",
        '  File "/app/Model.py", line 7, in load',
        "    self.model = joblib.load('/mnt/models/model.joblib')",
        "ModuleNotFoundError: No module named 'sklearn'",
    ]
    snapshot = with_pods(healthy(1), pod(classifier=crash))
    snapshot.previous_logs = {(name_of(), "classifier"): ["starting", *traceback]}
    snapshot.events = [event(name_of(), "BackOff", "Back-off restarting failed container")]
    assert failing_containers(snapshot.pods) == [(name_of(), "classifier", True)]
    finding = only(diagnose(snapshot), "keeps crashing")
    assert finding.subject == f"node classifier (pod {name_of()}, container classifier)"
    assert "exited with code 1 (Error)" in finding.problem and "5 times" in finding.problem
    assert finding.evidence == ("starting", *traceback)
    assert f"kubectl -n models logs {name_of()} -c classifier --previous" in finding.advice


def test_a_crash_falls_back_on_the_termination_message() -> None:
    last = terminated(2, "Error", "usage: serve [-h] MODEL\nserve: error: MODEL is required\n")
    snapshot = with_pods(
        healthy(1), pod(classifier=waiting("CrashLoopBackOff", restarts=1, last=last))
    )
    finding = only(diagnose(snapshot), "keeps crashing")
    assert "code 2" in finding.problem and "once" in finding.problem
    assert finding.evidence == ("usage: serve [-h] MODEL", "serve: error: MODEL is required")


def test_oom_killed_says_raise_the_memory_limit() -> None:
    oom = waiting("CrashLoopBackOff", restarts=3, last=terminated(137, "OOMKilled"))
    snapshot = with_pods(healthy(1), pod(classifier=oom, memory_limit="512Mi"))
    findings = diagnose(snapshot)
    finding = only(findings, "more memory")
    assert finding.severity == "error"
    assert finding.subject == f"node classifier (pod {name_of()}, container classifier)"
    assert "OOMKilled" in finding.problem and "512Mi" in finding.problem
    assert "resources.limits.memory" in finding.advice and "512Mi" in finding.advice
    assert not [f for f in findings if "crashing" in f.problem]  # one cause, one finding


def test_an_earlier_oom_kill_of_a_container_now_ready_is_a_warning() -> None:
    recovered = running(ready=True, restarts=1, last=terminated(137, "OOMKilled"))
    snapshot = with_pods(healthy(1), pod(classifier=recovered), ready=1)
    [finding] = diagnose(snapshot)
    assert finding.severity == "warning" and "OOMKilled" in finding.problem


def test_a_failed_model_download_shows_the_init_containers_log_and_credentials_advice() -> None:
    log = [
        "fetching s3://models/iris into /mnt/models",
        "error: s3://models/iris: AccessDenied: Access Denied (status 403)",
    ]
    init = waiting(
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=classifier-model-initializer",
        restarts=2,
        last=terminated(1, "Error", "\n".join(log)),
    )
    initializing = waiting("PodInitializing")
    pods = [pod(s, classifier=initializing, engine=initializing, init=init) for s in SUFFIXES[:2]]
    snapshot = with_pods(healthy(2), *pods)
    snapshot.previous_logs = {(name_of(s), "classifier-model-initializer"): log for s in SUFFIXES}
    snapshot.endpoints = [endpoints(SERVICE, 0), endpoints("iris-default", 0, port=8000)]
    assert sorted(failing_containers(snapshot.pods)) == [
        (name_of("b9qzl"), "classifier-model-initializer", True),
        (name_of(), "classifier-model-initializer", True),
    ]
    findings = diagnose(snapshot)
    finding = only(findings, "model download failed")
    assert finding.subject == (
        f"node classifier (2 of 2 pods, e.g. pod {name_of('b9qzl')}, "
        "init container classifier-model-initializer)"
    )
    assert "`infergraph fetch-model` exited with code 1" in finding.problem
    assert finding.evidence == tuple(log)
    assert "modelUri" in finding.advice and "envSecretRefName" in finding.advice
    # the Services have no pod at all behind them: an error, after the cause
    assert [f.subject for f in findings] == [
        finding.subject,
        "Service iris-default",
        f"Service {SERVICE}",
    ]
    assert findings[2].problem == "it has no ready endpoints, so calls to node classifier fail"


def test_a_model_download_that_just_exited_uses_the_current_logs() -> None:
    init = {
        "state": {"terminated": terminated(1, "Error")},
        "lastState": {},
        "ready": False,
        "restartCount": 0,
    }
    snapshot = with_pods(
        healthy(1),
        pod(classifier=waiting("PodInitializing"), engine=waiting("PodInitializing"), init=init),
    )
    assert failing_containers(snapshot.pods) == [(name_of(), "classifier-model-initializer", False)]
    snapshot.logs = {(name_of(), "classifier-model-initializer"): ["error: no such bucket"]}
    finding = only(diagnose(snapshot), "model download failed")
    assert finding.evidence == ("error: no such bucket",)


def test_a_missing_credentials_secret_for_the_download() -> None:
    config = waiting("CreateContainerConfigError", 'secret "s3-credentials" not found')
    initializing = waiting("PodInitializing")
    snapshot = with_pods(healthy(1), pod(classifier=initializing, engine=initializing, init=config))
    finding = only(diagnose(snapshot), "can't be created")
    assert finding.subject.endswith("init container classifier-model-initializer)")
    assert 'secret "s3-credentials" not found' in finding.problem
    assert "envSecretRefName" in finding.advice and "kubectl -n models create secret" in (
        finding.advice
    )


def test_a_container_whose_readiness_probe_fails_quotes_the_probe() -> None:
    probe = "Readiness probe failed: dial tcp 10.244.1.7:9000: connect: connection refused"
    snapshot = with_pods(healthy(1), pod(classifier=running(ready=False)))
    snapshot.events = [event(name_of(), "Unhealthy", probe, count=14)]
    snapshot.logs = {(name_of(), "classifier"): ["loading model from /mnt/models"]}
    snapshot.endpoints = [endpoints(SERVICE, 0, 1), endpoints("iris-default", 0, 1, 8000)]
    assert failing_containers(snapshot.pods) == [(name_of(), "classifier", False)]
    findings = diagnose(snapshot)
    finding = only(findings, "readiness probe fails")
    assert finding.severity == "error"
    assert finding.subject == f"node classifier (pod {name_of()}, container classifier)"
    assert finding.evidence == (probe, "loading model from /mnt/models")
    assert "initialDelaySeconds" in finding.advice
    service_finding = only(findings, "calls to node classifier")
    assert service_finding.severity == "warning"  # a consequence of the finding above
    assert service_finding.subject == f"Service {SERVICE}"
    assert "(1 pod not ready)" in service_finding.problem


def test_a_container_its_liveness_probe_restarts_is_unready_not_crashing() -> None:
    killed = running(ready=False, restarts=4, last=terminated(137, "Error"))
    snapshot = with_pods(healthy(1), pod(classifier=killed))
    snapshot.events = [
        event(
            name_of(), "Unhealthy", "Liveness probe failed: dial tcp 10.244.1.7:9000: i/o timeout"
        ),
        event(
            name_of(),
            "Killing",
            "Container classifier failed liveness probe, will be restarted",
            type_="Normal",
        ),
    ]
    assert failing_containers(snapshot.pods) == [(name_of(), "classifier", True)]
    [finding] = [f for f in diagnose(snapshot) if f.subject.startswith("node")]
    assert "liveness probe fails" in finding.problem and "4 times" in finding.problem
    assert "livenessProbe" in finding.advice


def test_a_container_not_ready_yet_without_evidence_is_only_a_warning() -> None:
    snapshot = with_pods(healthy(1), pod(classifier=running(ready=False)))
    [finding] = diagnose(snapshot)
    assert finding.severity == "warning" and "not ready yet" in finding.problem


def test_an_unschedulable_pod_quotes_the_scheduler_and_advises_on_requests() -> None:
    message = (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )
    pending = pod(
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": STARTED,
            }
        ],
    )
    del pending["status"]["initContainerStatuses"], pending["status"]["containerStatuses"]
    del pending["status"]["podIP"], pending["status"]["hostIP"], pending["spec"]["nodeName"]
    snapshot = with_pods(healthy(1), pending)
    snapshot.events = [event(name_of(), "FailedScheduling", message, container=None)]
    finding = only(diagnose(snapshot), "can't be scheduled")
    assert finding.subject == f"node classifier and orchestrator (pod {name_of()})"
    assert finding.evidence == (message,)
    assert "resources.requests" in finding.advice


def test_a_volume_that_cant_be_mounted() -> None:
    creating = waiting("ContainerCreating")
    snapshot = with_pods(
        healthy(1), pod(classifier=creating, engine=creating, init=waiting("PodInitializing"))
    )
    message = (
        'MountVolume.SetUp failed for volume "infergraph-graph" : configmap '
        '"iris-default-graph" not found'
    )
    snapshot.events = [event(name_of(), "FailedMount", message, container=None)]
    finding = only(diagnose(snapshot), "can't be mounted")
    assert finding.evidence == (message,)


# --- workloads ---------------------------------------------------------------------------


def test_a_progress_deadline_exceeded_quotes_the_deployment_condition() -> None:
    snapshot = with_pods(healthy(1), pod(classifier=running(ready=False)))
    message = f'ReplicaSet "{RS}" has timed out progressing.'
    snapshot.deployments = [
        deployment(
            0,
            1,
            [
                {
                    "type": "Available",
                    "status": "False",
                    "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": message,
                },
            ],
        )
    ]
    snapshot.resource = resource("Failed", f"Deployment {DEPLOYMENT}: {message}")
    findings = diagnose(snapshot)
    finding = only(findings, "progress deadline")
    assert finding.subject == f"Deployment {DEPLOYMENT}"
    assert "node classifier, orchestrator" in finding.problem and "600 s" in finding.problem
    assert finding.evidence == (message,)
    assert not [f for f in findings if "rejected" in f.problem]  # it has children: not the spec
    assert findings[-1].severity == "warning"  # the unready container, after the error


def test_pods_a_quota_refuses() -> None:
    message = (
        f'pods "{RS}-x2x7k" is forbidden: exceeded quota: compute, requested: limits.cpu=2, '
        "used: limits.cpu=8, limited: limits.cpu=8"
    )
    snapshot = with_pods(healthy(), ready=0)
    snapshot.replicasets = [
        replicaset(
            [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": message,
                    "lastTransitionTime": STARTED,
                }
            ]
        )
    ]
    snapshot.endpoints = [endpoints(SERVICE, 0), endpoints("iris-default", 0, port=8000)]
    findings = diagnose(snapshot)
    assert findings[0].subject == f"Deployment {DEPLOYMENT}"
    assert findings[0].evidence == (message,) and "resourcequota" in findings[0].advice


# --- autoscalers -------------------------------------------------------------------------


def test_an_hpa_without_metrics_advises_metrics_server_and_requests() -> None:
    snapshot = healthy()
    missing = (
        "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    )
    snapshot.autoscalers = [
        hpa(
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetResourceMetric",
                "message": f"the HPA was unable to compute the replica count: failed to get cpu "
                f"utilization: {missing}",
            }
        )
    ]
    snapshot.events = [
        event(
            DEPLOYMENT,
            "FailedGetResourceMetric",
            f"failed to get cpu utilization: {missing}",
            kind="HorizontalPodAutoscaler",
            count=12,
        ),
        event(
            DEPLOYMENT,
            "FailedComputeMetricsReplicas",
            "invalid metrics (1 invalid out of 1), "
            f"first error is: failed to get cpu resource metric value: failed to get cpu "
            f"utilization: {missing}",
            kind="HorizontalPodAutoscaler",
            count=12,
        ),
    ]
    [finding] = diagnose(snapshot)
    assert finding.severity == "warning"
    assert finding.subject == f"HorizontalPodAutoscaler {DEPLOYMENT}"
    assert "FailedGetResourceMetric" in finding.problem and DEPLOYMENT in finding.problem
    assert len(finding.evidence) == 3 and all(missing in line for line in finding.evidence)
    assert "metrics-server" in finding.advice and "resources.requests" in finding.advice


def test_an_hpa_missing_requests_says_set_requests() -> None:
    snapshot = healthy()
    snapshot.autoscalers = [
        hpa(
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetResourceMetric",
                "message": "the HPA was unable to compute the replica count: failed to get cpu "
                f"utilization: missing request for cpu in container classifier of Pod {name_of()}",
            }
        )
    ]
    [finding] = diagnose(snapshot)
    assert finding.advice.startswith("Utilization is measured against requests")


def test_an_hpa_on_a_custom_metric_advises_an_adapter() -> None:
    snapshot = healthy()
    snapshot.autoscalers = [
        hpa(
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetPodsMetric",
                "message": "the HPA was unable to compute the replica count: unable to get "
                "metric requests_per_second: unable to fetch metrics from custom metrics API: "
                "the server could not find the metric requests_per_second for pods",
            }
        )
    ]
    [finding] = diagnose(snapshot)
    assert "prometheus-adapter" in finding.advice


# --- ordering, de-duplication, the report ------------------------------------------------


def _broken() -> Snapshot:
    """Two pods: one cannot pull the node's image, one crashes; the HPA reads no metrics."""
    back_off = waiting("ErrImagePull", f'rpc error: code = Unknown desc = failed to pull "{IMAGE}"')
    crash = waiting("CrashLoopBackOff", restarts=2, last=terminated(1, "Error"))
    snapshot = with_pods(
        healthy(),
        pod(SUFFIXES[0], classifier=back_off),
        pod(SUFFIXES[1], engine=crash),
        pod(SUFFIXES[2], classifier=back_off),
        ready=0,
    )
    snapshot.previous_logs = {(name_of(SUFFIXES[1]), "seldon-container-engine"): ["boom"]}
    snapshot.autoscalers = [
        hpa(
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetResourceMetric",
                "message": "the HPA was unable to compute the replica count: no metrics",
            }
        )
    ]
    return snapshot


def test_findings_are_deduplicated_and_ordered_errors_first() -> None:
    findings = diagnose(_broken())
    assert [(f.severity, f.subject) for f in findings] == [
        (
            "error",
            f"node classifier (2 of 3 pods, e.g. pod {name_of(SUFFIXES[2])}, container classifier)",
        ),
        (
            "error",
            f"orchestrator (1 of 3 pods: pod {name_of(SUFFIXES[1])}, "
            "container seldon-container-engine)",
        ),
        ("warning", f"HorizontalPodAutoscaler {DEPLOYMENT}"),
    ]
    assert findings[1].evidence == ("boom",)
    assert "infergraph serve FILE" in findings[1].advice  # the orchestrator loads no model
    assert "metrics-server" in findings[2].advice


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_the_result_does_not_depend_on_the_order_things_were_listed(order) -> None:
    snapshot = _broken()
    shuffled = copy.deepcopy(snapshot)
    shuffled.pods = [snapshot.pods[i] for i in order]
    assert diagnose(shuffled) == diagnose(snapshot)
    assert report(shuffled, diagnose(shuffled)) == report(snapshot, diagnose(snapshot))


def test_the_report_prints_subject_problem_evidence_and_advice() -> None:
    snapshot = _broken()
    text = report(snapshot, diagnose(snapshot))
    assert "\nProblems (2 errors, 1 warning):\n" in text
    assert f"  {DEPLOYMENT}  0/3 ready  (node classifier, orchestrator)" in text
    assert (
        f"\n  ERROR   orchestrator (1 of 3 pods: pod {name_of(SUFFIXES[1])}, container "
        "seldon-container-engine)\n          it keeps crashing: it exited with code 1 "
        "(Error), restarted 2 times\n            | boom\n          → The last log lines"
    ) in text
    assert "\n  WARNING HorizontalPodAutoscaler" in text
    assert "\x1b" not in text  # no colour
    assert text == report(snapshot, diagnose(snapshot))


def test_failing_containers_ignores_healthy_pods() -> None:
    assert failing_containers(healthy().pods) == []
