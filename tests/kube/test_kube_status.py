"""``kube.status``: the status of a deployment, from what its children report. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infergraph.graph.spec import parse_resource
from infergraph.kube.options import RenderOptions
from infergraph.kube.render import render
from infergraph.kube.status import child_key, compute_status, rejected_status, same_status
from infergraph.kube.status_schema import GraphDeploymentStatus

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def resource(generation: int = 1, hpa: bool = False) -> dict[str, Any]:
    component: dict[str, Any] = {
        "spec": {"containers": [{"name": "classifier", "image": "acme/model:1"}]}
    }
    if hpa:
        component["hpaSpec"] = {
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60},
                    },
                }
            ],
        }
    return {
        "apiVersion": "infergraph.io/v1",
        "kind": "GraphDeployment",
        "metadata": {"name": "iris", "namespace": "models", "generation": generation, "uid": "u"},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "replicas": 2,
                    "componentSpecs": [component],
                    "graph": {"name": "classifier", "type": "MODEL"},
                }
            ]
        },
    }


def desired(body: dict[str, Any]) -> list[dict[str, Any]]:
    return render(parse_resource(body), RenderOptions())


def observed(objects: list[dict[str, Any]], **deployment_status: Any) -> dict:
    out = {}
    for obj in objects:
        copy = {**obj, "metadata": {**obj["metadata"], "generation": 1}}
        if obj["kind"] == "Deployment":
            copy["status"] = deployment_status
        out[child_key(obj)] = copy
    return out


def rolled_out(replicas: int = 2) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True"}],
    }


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_creating_until_every_deployment_is_available() -> None:
    body = resource()
    objects = desired(body)
    status = compute_status(body, objects, observed(objects), NOW)
    assert status["state"] == "Creating"
    assert "0 of 2 replicas available" in status["description"]
    assert conditions(status)["Ready"]["status"] == "False"
    assert conditions(status)["DeploymentsReady"]["status"] == "False"
    assert conditions(status)["ServicesReady"]["status"] == "True"
    GraphDeploymentStatus.model_validate(status)  # the shape the CRD allows


def test_available_with_address_replicas_and_selector() -> None:
    body = resource()
    objects = desired(body)
    status = compute_status(body, objects, observed(objects, **rolled_out()), NOW)
    assert status["state"] == "Available"
    assert all(
        c["status"] == ("False" if t == "Stalled" else "True")
        for t, c in conditions(status).items()
    )
    assert status["address"]["url"] == (
        "http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions"
    )
    assert status["replicas"] == 2
    assert "seldon-deployment-id=iris" in status["selector"]
    (entry,) = status["deploymentStatus"].values()
    assert entry == {
        "name": entry["name"],
        "status": "Available",
        "replicas": 2,
        "availableReplicas": 2,
    }
    assert status["serviceStatus"]["iris-default"]["httpEndpoint"] == "iris-default.models:8000"
    GraphDeploymentStatus.model_validate(status)


def test_an_old_template_is_not_ready_even_with_pods_available() -> None:
    body = resource()
    objects = desired(body)
    seen = observed(objects, **{**rolled_out(), "observedGeneration": 0})
    for obj in seen.values():
        obj["metadata"]["generation"] = 2
    status = compute_status(body, objects, seen, NOW)
    assert status["state"] == "Creating"
    assert "not rolled out yet" in status["description"]


def test_a_missing_child_is_not_ready() -> None:
    body = resource()
    objects = desired(body)
    seen = observed(objects, **rolled_out())
    service = next(k for k in seen if k[0] == "Service")
    del seen[service]
    status = compute_status(body, objects, seen, NOW)
    assert status["state"] == "Creating"
    assert conditions(status)["ServicesReady"]["status"] == "False"
    assert service[1] in conditions(status)["ServicesReady"]["message"]


def test_progress_deadline_exceeded_is_failed_and_stalled() -> None:
    body = resource()
    objects = desired(body)
    failing = {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "False"},
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "iris-default-0-classifier-5d8f" has timed out progressing.',
            },
        ],
    }
    status = compute_status(body, objects, observed(objects, **failing), NOW)
    assert status["state"] == "Failed"
    assert "has timed out progressing" in status["description"]
    assert conditions(status)["Stalled"]["status"] == "True"
    assert conditions(status)["Stalled"]["reason"] == "ProgressDeadlineExceeded"
    assert conditions(status)["Ready"]["reason"] == "Failed"


def test_an_hpa_scaled_deployment_counts_its_own_replicas() -> None:
    body = resource(hpa=True)
    objects = desired(body)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    seen = observed(objects, **rolled_out(3))
    seen[child_key(deployment)]["spec"]["replicas"] = 3  # what the HPA set
    status = compute_status(body, objects, seen, NOW)
    assert status["state"] == "Available"
    assert conditions(status)["AutoscalersReady"]["status"] == "True"
    assert status["replicas"] == 3


def test_transition_times_move_only_when_a_condition_changes() -> None:
    body = resource()
    objects = desired(body)
    first = compute_status(body, objects, observed(objects), NOW)
    body["status"] = first
    again = compute_status(body, objects, observed(objects), LATER)
    assert again == first
    assert same_status(first, again)
    ready = compute_status(body, objects, observed(objects, **rolled_out()), LATER)
    assert not same_status(first, ready)
    assert conditions(ready)["Ready"]["lastTransitionTime"] == "2026-12-02T11:00:00Z"
    assert conditions(ready)["ServicesReady"]["lastTransitionTime"] == "2026-12-02T10:00:00Z"


def test_rejected_spec_is_failed_stalled_and_drops_the_rest() -> None:
    body = resource(generation=3)
    body["status"] = compute_status(body, desired(body), {}, NOW)
    status = rejected_status(body, "spec.predictors[0].graph: unknown node 'x'", LATER)
    assert status["state"] == "Failed"
    assert status["observedGeneration"] == 3
    assert conditions(status)["Stalled"]["reason"] == "InvalidSpec"
    assert "unknown node 'x'" in status["description"]
    assert not same_status(body["status"], status)
    long = rejected_status(body, "x" * 40000, LATER)
    assert len(conditions(long)["Ready"]["message"]) == 32768
    GraphDeploymentStatus.model_validate(status)
