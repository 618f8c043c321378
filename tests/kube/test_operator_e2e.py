"""``infergraph operator`` end to end: kopf and the reconciler against the API emulator.

The emulator (tests/helpers/kube_emulator.py) keeps objects with uid, resourceVersion and
generation, isolates status, garbage-collects by owner reference and treats server-side apply as an
upsert that changes nothing when nothing changed. It has no controllers: a Deployment becomes
available only when a test writes its status, as a kube-controller-manager would. It does not
check RBAC, admission or real field ownership; the RBAC test below compares the verbs the
operator used with what deploy/rbac.yaml grants instead.
"""

from __future__ import annotations

import asyncio
import copy
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from infergraph.graph.spec import parse_resource
from infergraph.kube.api import KINDS
from infergraph.kube.operator import OperatorOptions
from infergraph.kube.options import RenderOptions
from infergraph.kube.render import render
from tests.helpers.kube_emulator import KubeEmulator, declare_core, eventually
from tests.helpers.operator_harness import (
    TEST_AGENT,
    OperatorThread,
    client,
    create,
    merge_patch,
    write_kubeconfig,
)
from tests.helpers.ports import released_ports

pytestmark = pytest.mark.kmock(cls=KubeEmulator)

ROOT = Path(__file__).parents[2]
NS = "default"
GRAPHS = KINDS["GraphDeployment"].path(NS)
FAST_RETRY = (0.2, 0.5, 1.0)


def graph_deployment(name: str = "iris", replicas: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "infergraph.io/v1",
        "kind": "GraphDeployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "replicas": replicas,
                    "graph": {
                        "name": "classifier",
                        "implementation": "SKLEARN_SERVER",
                        "modelUri": "gs://seldon-models/sklearn/iris",
                    },
                }
            ]
        },
    }
    body["spec"].update(spec)
    return body


def two_node(name: str = "pipeline") -> dict[str, Any]:
    body = graph_deployment(name)
    body["spec"]["predictors"][0]["componentSpecs"] = [
        {
            "spec": {
                "containers": [
                    {"name": "scaler", "image": "acme/scaler:1"},
                    {"name": "model", "image": "acme/model:1"},
                ]
            }
        }
    ]
    body["spec"]["predictors"][0]["graph"] = {
        "name": "scaler",
        "type": "TRANSFORMER",
        "children": [{"name": "model", "type": "MODEL"}],
    }
    return body


def expected(
    resource: dict[str, Any], options: RenderOptions | None = None
) -> list[dict[str, Any]]:
    return render(parse_resource(resource), options or RenderOptions(namespace=NS))


def resource_path(obj: dict[str, Any]) -> str:
    return KINDS[obj["kind"]].path(NS, obj["metadata"]["name"])


def plural(kind: str) -> str:
    k = KINDS[kind]
    return f"{k.api_version}/{k.plural}"


def stored(kmock: KubeEmulator, kind: str, name: str) -> dict[str, Any] | None:
    return kmock.object(plural(kind), NS, name)


def children(kmock: KubeEmulator, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for kind in (
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ):
        for obj in kmock.objects_of(plural(kind), NS):
            labels = obj.get("metadata", {}).get("labels") or {}
            if labels.get("infergraph.io/deployment") == name:
                found[kind, obj["metadata"]["name"]] = obj
    return found


def available(deployment: dict[str, Any]) -> dict[str, Any]:
    """The status a Deployment controller writes once every replica is up."""
    replicas = deployment.get("spec", {}).get("replicas", 1)
    return {
        "status": {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
    }


def deadline_exceeded(deployment: dict[str, Any]) -> dict[str, Any]:
    name = deployment["metadata"]["name"]
    return {
        "status": {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": 1,
            "updatedReplicas": 1,
            "unavailableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{name}-5d8f" has timed out progressing.',
                },
            ],
        }
    }


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (resource.get("status") or {}).get("conditions") or ():
        if item["type"] == kind:
            return dict(item)
    raise AssertionError(f"no {kind} condition in {resource.get('status')}")


class Cluster:
    """The emulator, an HTTP client to it, and the operator running against it."""

    def __init__(self, kmock: KubeEmulator, kubeconfig: Path, **options: Any) -> None:
        self.kmock = kmock
        self.server = str(kmock.url).rstrip("/")
        self.http = client(self.server)
        self.kubeconfig = kubeconfig
        self.options = OperatorOptions(
            namespaces=(NS,),
            kubeconfig=str(kubeconfig),
            resync_seconds=3600,
            retry_seconds=FAST_RETRY,
            **options,
        )
        self.operator: OperatorThread | None = None

    async def start(self) -> None:
        seen = len(list(self.kmock))
        self.operator = OperatorThread(self.options)
        self.operator.start()

        async def watching() -> None:
            # kopf lists, then watches; objects created in between would arrive twice
            watched = {str(r.resource) for r in list(self.kmock)[seen:] if r.params.get("watch")}
            assert any("graphdeployments" in w for w in watched), watched
            assert any("deployments" in w and "graph" not in w for w in watched), watched

        await eventually(watching, timeout=15)
        await asyncio.sleep(0.3)

    async def stop(self) -> None:
        if self.operator is not None:
            await self.operator.stop()
            self.operator = None

    async def apply_cr(self, body: dict[str, Any]) -> dict[str, Any]:
        return await create(self.http, GRAPHS, body)

    def cr(self, name: str, kind: str = "GraphDeployment") -> dict[str, Any]:
        found = self.kmock.object(plural(kind), NS, name)
        assert found is not None, f"{kind} {name} is gone"
        return found

    async def set_status(self, deployment: dict[str, Any], status: dict[str, Any]) -> None:
        await merge_patch(self.http, resource_path(deployment) + "/status", status)

    async def all_available(self, name: str) -> None:
        for (kind, _), obj in children(self.kmock, name).items():
            if kind == "Deployment":
                await self.set_status(obj, available(obj))


@pytest.fixture
async def cluster(kmock: KubeEmulator, tmp_path: Path) -> AsyncIterator[Cluster]:
    declare_core(kmock)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url).rstrip("/"))
    env = Cluster(kmock, kubeconfig)
    await env.start()
    try:
        yield env
    finally:
        await env.stop()
        await env.http.aclose()


async def until_children(cluster: Cluster, resource: dict[str, Any]) -> dict:
    want = {(o["kind"], o["metadata"]["name"]) for o in expected(resource)}

    async def check() -> dict:
        found = children(cluster.kmock, resource["metadata"]["name"])
        assert set(found) == want, sorted(set(found) ^ want)
        return found

    return await eventually(check, timeout=10)


async def test_create_applies_every_rendered_object_with_owner_and_labels(cluster: Cluster):
    body = two_node()
    created = await cluster.apply_cr(body)
    found = await until_children(cluster, body)
    uid = created["metadata"]["uid"]
    for (kind, name), obj in found.items():
        refs = obj["metadata"]["ownerReferences"]
        assert refs == [
            {
                "apiVersion": "infergraph.io/v1",
                "kind": "GraphDeployment",
                "name": "pipeline",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], (kind, name)
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "infergraph"
        assert labels["seldon-deployment-id"] == "pipeline"
    # What was applied is what `infergraph render` prints, field for field.
    for want in expected(body):
        got = found[want["kind"], want["metadata"]["name"]]
        assert {k: got.get(k) for k in want if k not in ("metadata", "status")} == {
            k: v for k, v in want.items() if k not in ("metadata", "status")
        }

    async def creating() -> None:
        status = cluster.cr("pipeline").get("status") or {}
        assert status.get("state") == "Creating"
        assert status["observedGeneration"] == 1
        assert condition(cluster.cr("pipeline"), "Ready")["status"] == "False"

    await eventually(creating)


async def test_ready_only_once_deployments_are_available(cluster: Cluster):
    body = two_node()
    await cluster.apply_cr(body)
    await until_children(cluster, body)
    await asyncio.sleep(0.5)
    assert cluster.cr("pipeline")["status"]["state"] == "Creating"
    await cluster.all_available("pipeline")

    async def ready() -> None:
        resource = cluster.cr("pipeline")
        status = resource["status"]
        assert status["state"] == "Available", status
        ready = condition(resource, "Ready")
        assert ready["status"] == "True"
        assert ready["observedGeneration"] == resource["metadata"]["generation"]
        assert condition(resource, "DeploymentsReady")["status"] == "True"
        assert condition(resource, "Stalled")["status"] == "False"
        assert status["address"]["url"] == (
            "http://pipeline-default.default.svc.cluster.local:8000/api/v1.0/predictions"
        )

    await eventually(ready)


async def test_update_reapplies_and_prunes(cluster: Cluster):
    body = graph_deployment("iris", replicas=1)
    await cluster.apply_cr(body)
    await until_children(cluster, body)
    deployment = next(o for o in expected(body) if o["kind"] == "Deployment")
    name = deployment["metadata"]["name"]

    # replicas
    patched = await merge_patch(
        cluster.http,
        KINDS["GraphDeployment"].path(NS, "iris"),
        {"spec": {"predictors": [{**body["spec"]["predictors"][0], "replicas": 3}]}},
    )
    assert patched["metadata"]["generation"] == 2

    async def scaled() -> None:
        assert stored(cluster.kmock, "Deployment", name)["spec"]["replicas"] == 3
        assert cluster.cr("iris")["status"]["observedGeneration"] == 2

    await eventually(scaled)

    # a new predictor: its objects appear; then removed: they go
    canary = copy.deepcopy(body["spec"]["predictors"][0])
    canary.update(name="canary", traffic=10, replicas=1)
    main = {**body["spec"]["predictors"][0], "replicas": 3, "traffic": 90}
    updated = copy.deepcopy(body)
    updated["spec"]["predictors"] = [main, canary]
    await merge_patch(
        cluster.http, KINDS["GraphDeployment"].path(NS, "iris"), {"spec": updated["spec"]}
    )
    found = await until_children(cluster, updated)
    assert any(name.startswith("iris-canary") for _, name in found)

    back = copy.deepcopy(body)
    back["spec"]["predictors"] = [{**body["spec"]["predictors"][0], "replicas": 3}]
    await merge_patch(
        cluster.http, KINDS["GraphDeployment"].path(NS, "iris"), {"spec": back["spec"]}
    )
    found = await until_children(cluster, back)
    assert not any("canary" in name for _, name in found)
    assert cluster.cr("iris")["metadata"]["generation"] == 4


async def test_changed_graph_is_reapplied(cluster: Cluster):
    body = two_node()
    await cluster.apply_cr(body)
    await until_children(cluster, body)
    changed = copy.deepcopy(body)
    containers = changed["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"]
    containers.append({"name": "explain", "image": "acme/explain:1"})
    changed["spec"]["predictors"][0]["graph"]["children"][0]["children"] = [
        {"name": "explain", "type": "OUTPUT_TRANSFORMER"}
    ]
    await merge_patch(
        cluster.http, KINDS["GraphDeployment"].path(NS, "pipeline"), {"spec": changed["spec"]}
    )
    found = await until_children(cluster, changed)
    want = {(o["kind"], o["metadata"]["name"]): o for o in expected(changed)}
    for key, obj in want.items():
        assert found[key].get("spec") == obj.get("spec"), key
        assert found[key].get("data") == obj.get("data"), key
    assert ("Service", "pipeline-default-explain") in found
    # and the node removed again: its Service goes, the pod template loses its container
    await merge_patch(
        cluster.http, KINDS["GraphDeployment"].path(NS, "pipeline"), {"spec": body["spec"]}
    )
    found = await until_children(cluster, body)
    assert ("Service", "pipeline-default-explain") not in found


async def test_child_deleted_or_edited_by_hand_is_put_back(cluster: Cluster):
    body = two_node()
    await cluster.apply_cr(body)
    found = await until_children(cluster, body)
    service = next(o for (k, _), o in found.items() if k == "Service")
    deployment = next(o for (k, _), o in found.items() if k == "Deployment")
    response = await cluster.http.delete(resource_path(service))
    assert response.status_code == 200
    await merge_patch(cluster.http, resource_path(deployment), {"spec": {"replicas": 7}})

    async def restored() -> None:
        back = stored(cluster.kmock, "Service", service["metadata"]["name"])
        assert back is not None
        assert back["metadata"]["uid"] != service["metadata"]["uid"]
        again = stored(cluster.kmock, "Deployment", deployment["metadata"]["name"])
        assert again["spec"]["replicas"] == 1

    await eventually(restored)


async def test_restart_changes_nothing(cluster: Cluster):
    body = two_node()
    await cluster.apply_cr(body)
    await until_children(cluster, body)
    await cluster.all_available("pipeline")

    async def settled() -> None:
        assert cluster.cr("pipeline")["status"]["state"] == "Available"

    await eventually(settled)
    await asyncio.sleep(0.5)
    await cluster.stop()
    before = {
        k: o["metadata"]["resourceVersion"] for k, o in children(cluster.kmock, "pipeline").items()
    }
    cr_version = cluster.cr("pipeline")["metadata"]["resourceVersion"]
    mark = len(list(cluster.kmock))
    await cluster.start()
    await asyncio.sleep(1.5)
    after = {
        k: o["metadata"]["resourceVersion"] for k, o in children(cluster.kmock, "pipeline").items()
    }
    assert after == before
    assert cluster.cr("pipeline")["metadata"]["resourceVersion"] == cr_version
    # the new operator did look: it applied every child again, and that changed nothing
    applies = [r for r in list(cluster.kmock)[mark:] if r.method.name == "PATCH"]
    assert len(applies) >= len(before)


async def test_progress_deadline_makes_it_failed(cluster: Cluster):
    body = graph_deployment("iris")
    await cluster.apply_cr(body)
    found = await until_children(cluster, body)
    deployment = next(o for (k, _), o in found.items() if k == "Deployment")
    await cluster.set_status(deployment, deadline_exceeded(deployment))

    async def failed() -> None:
        resource = cluster.cr("iris")
        status = resource["status"]
        assert status["state"] == "Failed"
        assert "has timed out progressing" in status["description"]
        assert condition(resource, "Stalled")["status"] == "True"
        assert condition(resource, "Stalled")["reason"] == "ProgressDeadlineExceeded"
        assert condition(resource, "Ready")["status"] == "False"

    await eventually(failed)

    async def warned() -> None:
        reasons = [
            (e.get("type"), e.get("reason"))
            for e in cluster.kmock.objects_of("v1/events", NS)
            if e["involvedObject"]["name"] == "iris"
        ]
        assert ("Warning", "Failed") in reasons, reasons

    await eventually(warned)


async def test_bad_spec_is_failed_and_applies_nothing(cluster: Cluster):
    bad = graph_deployment("broken")
    bad["spec"]["predictors"][0]["graph"]["implementation"] = "NO_SUCH_SERVER"
    await cluster.apply_cr(bad)

    async def failed() -> None:
        resource = cluster.cr("broken")
        assert resource["status"]["state"] == "Failed"
        assert "NO_SUCH_SERVER" in resource["status"]["description"]
        assert condition(resource, "Stalled")["reason"] == "InvalidSpec"

    await eventually(failed)
    assert children(cluster.kmock, "broken") == {}

    # A good deployment given a bad update keeps its children as they were.
    good = graph_deployment("iris")
    await cluster.apply_cr(good)
    before = await until_children(cluster, good)
    broken = copy.deepcopy(good)
    broken["spec"]["predictors"][0]["graph"]["implementation"] = "NO_SUCH_SERVER"
    broken["spec"]["predictors"][0]["replicas"] = 4
    await merge_patch(
        cluster.http, KINDS["GraphDeployment"].path(NS, "iris"), {"spec": broken["spec"]}
    )

    async def rejected() -> None:
        resource = cluster.cr("iris")
        assert resource["status"]["state"] == "Failed"
        assert resource["status"]["observedGeneration"] == 2

    await eventually(rejected)
    after = children(cluster.kmock, "iris")
    assert {k: o["metadata"]["resourceVersion"] for k, o in after.items()} == {
        k: o["metadata"]["resourceVersion"] for k, o in before.items()
    }


async def test_deleting_the_resource_collects_its_children(cluster: Cluster):
    body = graph_deployment("iris")
    await cluster.apply_cr(body)
    await until_children(cluster, body)
    response = await cluster.http.delete(KINDS["GraphDeployment"].path(NS, "iris"))
    assert response.status_code == 200

    async def gone() -> None:
        assert children(cluster.kmock, "iris") == {}

    await eventually(gone)


async def test_writes_are_server_side_apply_only(cluster: Cluster):
    body = two_node()
    await cluster.apply_cr(body)
    await until_children(cluster, body)
    await cluster.all_available("pipeline")

    async def ready() -> None:
        assert cluster.cr("pipeline")["status"]["state"] == "Available"

    await eventually(ready)
    operator = [r for r in cluster.kmock if r.headers.get("User-Agent") != TEST_AGENT]
    writes = [r for r in operator if r.method.name not in ("GET", "HEAD")]
    assert writes
    for r in writes:
        method = r.method.name
        assert method != "PUT", r.url
        if method == "PATCH":
            assert "apply-patch" in r.headers.get("Content-Type", ""), r.url
            assert r.params.get("fieldManager") == "infergraph-operator", r.url
            assert r.params.get("force") == "true", r.url
        else:
            assert (method, "events") == (method, str(r.url.path).rsplit("/", 1)[-1]) or (
                method == "DELETE"
            ), (method, r.url)


async def test_other_controller_ids_are_left_alone(cluster: Cluster):
    body = graph_deployment("theirs")
    body["metadata"]["labels"] = {"infergraph.io/controller-id": "team-b"}
    await cluster.apply_cr(body)
    mine = graph_deployment("mine")
    await cluster.apply_cr(mine)
    await until_children(cluster, mine)
    await asyncio.sleep(0.5)
    assert children(cluster.kmock, "theirs") == {}
    assert "status" not in cluster.cr("theirs") or not cluster.cr("theirs")["status"]


@pytest.mark.parametrize("namespaced", [True])
async def test_seldon_deployments_with_seldon_compat(
    kmock: KubeEmulator, tmp_path: Path, namespaced: bool
):
    declare_core(kmock)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url).rstrip("/"))
    env = Cluster(kmock, kubeconfig, seldon_compat=True)
    await env.start()
    try:
        text = (ROOT / "tests" / "manifests" / "seldon-abtest.yaml").read_text()
        sdep = yaml.safe_load(text)
        sdep["metadata"]["namespace"] = NS
        created = await create(env.http, KINDS["SeldonDeployment"].path(NS), sdep)
        found = await until_children(env, sdep)
        for obj in found.values():
            ref = obj["metadata"]["ownerReferences"][0]
            assert (ref["kind"], ref["uid"]) == ("SeldonDeployment", created["metadata"]["uid"])

        async def status() -> None:
            assert env.cr("abtest", "SeldonDeployment")["status"]["state"] == "Creating"

        await eventually(status)
    finally:
        await env.stop()
        await env.http.aclose()


async def test_the_operator_command_runs_and_stops_on_sigterm(kmock: KubeEmulator, tmp_path: Path):
    """``infergraph operator`` as a process, as deploy/operator.yaml runs it: it reconciles,
    serves kopf's liveness endpoint, and a SIGTERM (a pod being stopped) ends it cleanly."""
    declare_core(kmock)
    server = str(kmock.url).rstrip("/")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server)
    (port,) = released_ports(1)  # kopf's liveness endpoint binds without SO_REUSEPORT
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infergraph.cli.main",
        "operator",
        "-n",
        NS,
        "--kubeconfig",
        str(kubeconfig),
        "--liveness",
        f"http://127.0.0.1:{port}/healthz",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    http = client(server)
    try:

        async def watching() -> None:
            assert any(r.params.get("watch") and "graphdeployments" in str(r.url) for r in kmock)

        await eventually(watching, timeout=30)
        await asyncio.sleep(0.3)
        body = graph_deployment("iris")
        await create(http, GRAPHS, body)

        async def applied() -> None:
            assert len(children(kmock, "iris")) == len(expected(body))
            assert kmock.objects_of("v1/events", NS)  # posted after the children and status

        await eventually(applied, timeout=15)
        await asyncio.sleep(0.5)  # the log line of that reconcile follows its events
        async with httpx.AsyncClient() as probe:
            assert (await probe.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        assert proc.stdout is not None
        output = (await proc.stdout.read()).decode()
        await http.aclose()
    assert "Traceback" not in output, output
    assert "GraphDeployment default/iris: Creating; created" in output, output
    assert "HTTP Request" not in output  # one line per change, not per request


async def test_other_namespaces_are_not_watched(cluster: Cluster):
    other = graph_deployment("iris")
    other["metadata"]["namespace"] = "elsewhere"
    await create(cluster.http, KINDS["GraphDeployment"].path("elsewhere"), other)
    mine = graph_deployment("mine")
    await cluster.apply_cr(mine)
    await until_children(cluster, mine)
    await asyncio.sleep(0.5)
    assert cluster.kmock.objects_of(plural("Deployment"), "elsewhere") == []
    found = cluster.kmock.object(plural("GraphDeployment"), "elsewhere", "iris")
    assert found is not None and not found.get("status")
