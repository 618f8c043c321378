"""deploy/rbac*.yaml grant the operator exactly the verbs it uses, no more, no fewer.

One scenario drives the operator through everything it does to every kind it touches (create,
update, prune, status, events; Istio, then Gateway API routes, then neither; an HPA, a PDB and
a KEDA ScaledObject added and removed), and the verbs of its requests, read off the emulator's
request log, are compared with the ClusterRoles. A server-side apply that creates an object
needs ``create`` as well as ``patch``, so every apply counts as both.
"""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from infergraph.kube.api import KINDS
from infergraph.kube.options import RenderOptions
from tests.helpers.kube_emulator import KubeEmulator, declare_core, eventually
from tests.helpers.operator_harness import TEST_AGENT, create, merge_patch, write_kubeconfig
from tests.kube.test_operator_e2e import NS, Cluster, children, expected

pytestmark = pytest.mark.kmock(cls=KubeEmulator)

DEPLOY = Path(__file__).parents[2] / "deploy"
ROLES = ("rbac.yaml", "rbac-routing.yaml", "rbac-seldon.yaml")

EXEMPT = {
    ("infergraph.io", "graphdeployments/finalizers", "update"): (
        "never called: children carry blockOwnerDeletion, which the "
        "OwnerReferencesPermissionEnforcement admission plugin allows only to whoever may "
        "update the owner's finalizers"
    ),
    ("machinelearning.seldon.io", "seldondeployments/finalizers", "update"): "the same",
}


def granted() -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name in ROLES:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            if doc and doc["kind"] == "ClusterRole":
                for rule in doc["rules"]:
                    for group in rule["apiGroups"]:
                        for resource in rule["resources"]:
                            rules[group, resource] |= set(rule["verbs"])
    return rules


def verb(request: Any) -> set[str]:
    method = request.method.name
    if method == "GET":
        if request.name:
            return {"get"}
        return {"watch"} if request.params.get("watch") in ("true", "1") else {"list"}
    if method == "PATCH":
        creates = "apply-patch" in request.headers.get("Content-Type", "")
        return {"patch", "create"} if creates and not request.subresource else {"patch"}
    return {"POST": {"create"}, "DELETE": {"delete"}, "PUT": {"update"}}.get(method, {method})


def used(kmock: KubeEmulator) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in kmock:
        if request.headers.get("User-Agent") == TEST_AGENT:
            continue  # the test's own requests
        if request.resource is None or request.resource.plural is None:
            continue  # discovery (/api, /apis/GROUP/VERSION), which every account may read
        group = request.resource.group or ""
        plural = request.resource.plural + (
            f"/{request.subresource}" if request.subresource else ""
        )
        out[group, plural] |= verb(request)
    return out


def spec() -> dict[str, Any]:
    component = {
        "hpaSpec": {
            "minReplicas": 1,
            "maxReplicas": 3,
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
        "pdbSpec": {"minAvailable": 1},
        "spec": {"containers": [{"name": "classifier", "image": "acme/model:1"}]},
    }
    keda = {
        "kedaSpec": {
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "threshold": "10",
                        "query": "sum(rate(requests[1m]))",
                    },
                }
            ],
        },
        "spec": {"containers": [{"name": "classifier", "image": "acme/model:2"}]},
    }
    graph = {"name": "classifier", "type": "MODEL"}
    return {
        "apiVersion": "infergraph.io/v1",
        "kind": "GraphDeployment",
        "metadata": {"name": "rbac", "namespace": NS},
        "spec": {
            "predictors": [
                {"name": "main", "traffic": 80, "componentSpecs": [component], "graph": graph},
                {"name": "canary", "traffic": 20, "componentSpecs": [keda], "graph": graph},
            ]
        },
    }


async def converge(env: Cluster, body: dict[str, Any], ingress: str) -> None:
    options = RenderOptions(namespace=NS, ingress=ingress)  # type: ignore[arg-type]
    want = {(o["kind"], o["metadata"]["name"]) for o in expected(body, options)}

    async def check() -> None:
        found = {
            key
            for kind in (
                "ConfigMap",
                "Service",
                "Deployment",
                "HorizontalPodAutoscaler",
                "PodDisruptionBudget",
                "ScaledObject",
                "VirtualService",
                "DestinationRule",
                "HTTPRoute",
            )
            for key in _named(env.kmock, kind)
        }
        assert found == want, sorted(found ^ want)

    await eventually(check, timeout=15)


def _named(kmock: KubeEmulator, kind: str) -> set[tuple[str, str]]:
    k = KINDS[kind]
    return {
        (kind, o["metadata"]["name"])
        for o in kmock.objects_of(f"{k.api_version}/{k.plural}", NS)
        if (o["metadata"].get("labels") or {}).get("infergraph.io/deployment") == "rbac"
    }


async def test_rbac_grants_exactly_what_the_operator_uses(
    kmock: KubeEmulator, tmp_path: Path
) -> None:
    declare_core(kmock)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url).rstrip("/"))
    env = Cluster(kmock, kubeconfig, seldon_compat=True, render=RenderOptions(ingress="istio"))
    await env.start()
    try:
        body = spec()
        await create(env.http, KINDS["GraphDeployment"].path(NS), body)
        await converge(env, body, "istio")
        await env.all_available("rbac")
        # A child deleted by hand, then the canary and the autoscaling removed: prune.
        service = next(o for (k, _), o in children(kmock, "rbac").items() if k == "Service")
        await env.http.delete(KINDS["Service"].path(NS, service["metadata"]["name"]))
        smaller = copy.deepcopy(body)
        smaller["spec"]["predictors"] = [smaller["spec"]["predictors"][0]]
        smaller["spec"]["predictors"][0]["traffic"] = 100
        component = smaller["spec"]["predictors"][0]["componentSpecs"][0]
        del component["hpaSpec"], component["pdbSpec"]
        await merge_patch(
            env.http, KINDS["GraphDeployment"].path(NS, "rbac"), {"spec": smaller["spec"]}
        )
        await converge(env, smaller, "istio")
        # Istio routes give way to Gateway API routes, then to none.
        await env.http.patch(
            KINDS["GraphDeployment"].path(NS, "rbac"),
            json={"spec": body["spec"]},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        await converge(env, body, "istio")
        for ingress in ("gateway-api", "none"):
            await env.stop()
            env.options = type(env.options)(
                **{**env.options.__dict__, "render": RenderOptions(ingress=ingress)}  # type: ignore[arg-type]
            )
            await env.start()
            await converge(env, body, ingress)
        sdep = yaml.safe_load(
            (Path(__file__).parents[1] / "manifests" / "seldon-abtest.yaml").read_text()
        )
        sdep["metadata"]["namespace"] = NS
        await create(env.http, KINDS["SeldonDeployment"].path(NS), sdep)

        async def seldon_status() -> None:
            found = kmock.object("machinelearning.seldon.io/v1/seldondeployments", NS, "abtest")
            assert (found or {}).get("status", {}).get("state") == "Creating"

        await eventually(seldon_status, timeout=10)
        await asyncio.sleep(0.3)
    finally:
        await env.stop()
        await env.http.aclose()

    have, need = granted(), used(kmock)
    missing = {(g, r, v) for (g, r), verbs in need.items() for v in verbs - have.get((g, r), set())}
    assert not missing, f"the operator used verbs RBAC does not grant: {sorted(missing)}"
    extra = {
        (g, r, v)
        for (g, r), verbs in have.items()
        for v in verbs - need.get((g, r), set())
        if (g, r, v) not in EXEMPT
    }
    assert not extra, f"RBAC grants verbs the operator never used: {sorted(extra)}"
