"""The Kubernetes API emulator (tests/helpers/kube_emulator.py) behaves like a kube-apiserver.

Everything goes through plain HTTP (httpx) against kmock's running server, as an operator's client
would; one test runs a real kopf operator against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.helpers.kube_emulator import KubeEmulator, declare_core, eventually, running_operator

pytestmark = pytest.mark.kmock(cls=KubeEmulator)

NS = "/api/v1/namespaces/default"
CM = f"{NS}/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
NextEvent = Callable[[], Awaitable[dict[str, Any]]]


@pytest.fixture
async def api(kmock: KubeEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the emulator, with the core resources declared."""
    declare_core(kmock)
    async with httpx.AsyncClient(base_url=str(kmock.url).rstrip("/"), timeout=5) as client:
        yield client
    assert kmock.errors == []  # nothing failed inside the emulator (API errors are answers)


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
    }


async def create(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def apply(
    api: httpx.AsyncClient, path: str, body: dict[str, Any] | str, manager: str = "test"
) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    params = {"fieldManager": manager, "force": "true"}
    return await api.patch(path, content=content, headers=APPLY, params=params)


async def patch(
    api: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str] = MERGE
) -> httpx.Response:
    return await api.patch(path, content=json.dumps(body), headers=headers)


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@contextlib.asynccontextmanager
async def watching(api: httpx.AsyncClient, path: str, **params: str) -> AsyncIterator[NextEvent]:
    """A watch stream; the yielded coroutine function reads its next event (or times out)."""
    async with api.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()

        async def next_event() -> dict[str, Any]:
            line = ""
            while not line:
                line = await asyncio.wait_for(anext(lines), 3)
            return json.loads(line)

        yield next_event


async def current_rv(api: httpx.AsyncClient, path: str) -> str:
    return (await api.get(path)).json()["metadata"]["resourceVersion"]


# ---- metadata, create, conflicts -----------------------------------------------------------


async def test_create_assigns_server_metadata(api: httpx.AsyncClient) -> None:
    obj = await create(api, CM, configmap("a"))
    meta = obj["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert isinstance(meta["resourceVersion"], str) and meta["resourceVersion"].isdigit()
    assert meta["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["namespace"] == "default"
    assert (obj["apiVersion"], obj["kind"]) == ("v1", "ConfigMap")
    assert (await api.get(f"{CM}/a")).json() == obj

    duplicate = await api.post(CM, json=configmap("a"))
    assert duplicate.status_code == 409
    assert duplicate.json()["reason"] == "AlreadyExists"
    assert duplicate.json()["message"] == 'configmaps "a" already exists'

    generated = await create(api, CM, {"metadata": {"generateName": "gen-"}})
    assert re.fullmatch(r"gen-[a-z0-9]{5}", generated["metadata"]["name"])
    assert rv(generated) > rv(obj)

    mismatch = await api.post(CM, json={"metadata": {"name": "b", "namespace": "other"}})
    assert mismatch.status_code == 400


async def test_unknown_things_answer_like_the_apiserver(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"{NS}/widgets")).status_code == 404
    missing = await api.get(f"{CM}/nope")
    assert missing.status_code == 404
    assert missing.json()["message"] == 'configmaps "nope" not found'
    assert missing.json()["kind"] == "Status"
    await create(api, CM, configmap("a"))
    wrong_type = await api.patch(f"{CM}/a", json={"data": {}})  # application/json
    assert wrong_type.status_code == 415


async def test_put_is_refused_and_recorded(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    await create(api, CM, configmap("a"))
    response = await api.put(f"{CM}/a", json=configmap("a"))
    assert response.status_code == 405
    assert response.json()["reason"] == "MethodNotAllowed"
    assert ("PUT", f"{CM}/a", {}, "application/json") in kmock.writes()
    assert [write[0] for write in kmock.writes()] == ["POST", "PUT"]


async def test_version_with_and_without_slash(api: httpx.AsyncClient) -> None:
    for path in ("/version", "/version/"):
        response = await api.get(path)
        assert response.status_code == 200
        assert response.json()["major"] == "1"


async def test_kmock_reactions_and_seeding_still_work(
    api: httpx.AsyncClient, kmock: KubeEmulator
) -> None:
    kmock["get /api/v1/namespaces/default/configmaps/canned"] << {"canned": True}
    assert (await api.get(f"{CM}/canned")).json() == {"canned": True}
    kmock["post /api/v1/namespaces/default/configmaps"] << 500
    assert (await api.post(CM, json=configmap("stored"))).status_code == 500
    assert kmock.object("v1/configmaps", "default", "stored") is not None  # stored anyway
    kmock.objects["v1/configmaps", "default", "seeded"] = {"metadata": {"name": "seeded"}}
    patched = await patch(api, f"{CM}/seeded", {"data": {"a": "1"}})
    assert patched.json()["data"] == {"a": "1"} and patched.json()["metadata"]["resourceVersion"]


# ---- resourceVersion, generation, no-op writes --------------------------------------------


async def test_generation_counts_spec_changes_only(api: httpx.AsyncClient) -> None:
    created = await create(api, DEPLOY, deployment("d"))
    scaled = (await patch(api, f"{DEPLOY}/d", {"spec": {"replicas": 3}})).json()
    assert scaled["metadata"]["generation"] == 2
    assert rv(scaled) > rv(created)
    labelled = (await patch(api, f"{DEPLOY}/d", {"metadata": {"labels": {"x": "y"}}})).json()
    assert labelled["metadata"]["generation"] == 2
    assert rv(labelled) > rv(scaled)
    status = await patch(api, f"{DEPLOY}/d/status", {"status": {"replicas": 3}})
    assert status.json()["metadata"]["generation"] == 2


async def test_a_write_that_changes_nothing_bumps_nothing(api: httpx.AsyncClient) -> None:
    created = await create(api, DEPLOY, deployment("d"))
    async with watching(api, DEPLOY, resourceVersion=created["metadata"]["resourceVersion"]) as ev:
        same = await patch(api, f"{DEPLOY}/d", {"spec": {"replicas": 1}})
        assert same.status_code == 200
        assert rv(same.json()) == rv(created)
        for _ in range(2):
            reapplied = await apply(api, f"{DEPLOY}/d", deployment("d"))
            assert reapplied.status_code == 200
        assert rv(reapplied.json()) == rv(created)  # no managedFields: nothing to record
        await patch(api, f"{DEPLOY}/d", {"spec": {"replicas": 2}})
        # The first live event is the real change, not the no-ops before it.
        first = await ev()
        assert first["type"] == "MODIFIED" and rv(first["object"]) == rv(created) + 1
        assert first["object"]["spec"]["replicas"] == 2


async def test_noop_apply_emits_no_event(api: httpx.AsyncClient) -> None:
    first = await apply(
        api, f"{CM}/a", {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "1"}}
    )
    assert first.status_code == 201
    since = first.json()["metadata"]["resourceVersion"]
    async with watching(api, CM, resourceVersion=since) as ev:
        again = await apply(
            api, f"{CM}/a", {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "1"}}
        )
        assert rv(again.json()) == int(since)
        await apply(api, f"{CM}/a", {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "2"}})
        event = await ev()
        assert (event["type"], event["object"]["data"]) == ("MODIFIED", {"k": "2"})


# ---- status isolation, scale ---------------------------------------------------------------


async def test_status_subresource_is_isolated(api: httpx.AsyncClient) -> None:
    await create(api, DEPLOY, {**deployment("d"), "status": {"replicas": 9}})
    assert "status" not in (await api.get(f"{DEPLOY}/d")).json()  # dropped on create
    both = {"spec": {"replicas": 5}, "status": {"readyReplicas": 1}}
    via_status = (await patch(api, f"{DEPLOY}/d/status", both)).json()
    assert via_status["spec"]["replicas"] == 1
    assert via_status["status"] == {"readyReplicas": 1}
    assert via_status["metadata"]["generation"] == 1
    via_main = (
        await patch(api, f"{DEPLOY}/d", {"spec": {"replicas": 5}, "status": {"x": 1}})
    ).json()
    assert via_main["spec"]["replicas"] == 5
    assert via_main["status"] == {"readyReplicas": 1}
    assert (await api.get(f"{DEPLOY}/d/status")).json()["status"] == {"readyReplicas": 1}
    # Without a status subresource, status is a plain field of the object.
    await create(api, CM, configmap("c"))
    assert (await patch(api, f"{CM}/c", {"status": {"a": 1}})).json()["status"] == {"a": 1}
    assert (await patch(api, f"{CM}/c/status", {"status": {}})).status_code == 404


async def test_scale_subresource(api: httpx.AsyncClient) -> None:
    await create(api, DEPLOY, deployment("d", replicas=2))
    scale = (await api.get(f"{DEPLOY}/d/scale")).json()
    assert scale["kind"] == "Scale"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=d"
    scaled = await patch(api, f"{DEPLOY}/d/scale", {"spec": {"replicas": 4}})
    assert scaled.json()["spec"]["replicas"] == 4
    obj = (await api.get(f"{DEPLOY}/d")).json()
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2


# ---- server-side apply ---------------------------------------------------------------------


async def test_apply_creates_then_merges(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    created = await apply(api, f"{DEPLOY}/d", deployment("d"), manager="op")
    assert created.status_code == 201
    assert created.json()["metadata"]["uid"]
    body = {**deployment("d"), "spec": {"template": {"metadata": {"labels": {"app": "d"}}}}}
    merged = (await apply(api, f"{DEPLOY}/d", body, manager="other")).json()
    assert merged["spec"]["replicas"] == 1  # kept: "other" never applied it
    assert merged["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    assert merged["spec"]["template"] == {"metadata": {"labels": {"app": "d"}}}
    assert kmock.managers["apps/v1/deployments", "default", "d"] == {"op", "other"}
    assert kmock.applied_by("apps/v1/deployments", "default", "d", "op") == deployment("d")


async def test_apply_removes_what_the_manager_no_longer_applies(api: httpx.AsyncClient) -> None:
    def cm(labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
        meta = {"name": "a", "labels": labels}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

    await apply(api, f"{CM}/a", cm({"x": "1", "y": "1"}, {"a": "1", "b": "1"}), manager="op")
    await patch(api, f"{CM}/a", {"metadata": {"labels": {"by-hand": "1"}}})
    await apply(api, f"{CM}/a", cm({"shared": "1"}, {"b": "1"}), manager="other")
    await apply(api, f"{CM}/a", cm({"x": "1", "shared": "1"}, {"a": "1", "b": "1"}), manager="op")
    # "op" drops y (its own), shared (also other's), and data.b (also other's).
    after = (await apply(api, f"{CM}/a", cm({"x": "1"}, {"a": "1"}), manager="op")).json()
    assert after["metadata"]["labels"] == {"x": "1", "by-hand": "1", "shared": "1"}
    assert after["data"] == {"a": "1", "b": "1"}
    # Applying no labels at all removes only op's labels; the map survives with the others.
    final = await apply(api, f"{CM}/a", {"apiVersion": "v1", "kind": "ConfigMap"}, manager="op")
    assert final.json()["metadata"]["labels"] == {"by-hand": "1", "shared": "1"}
    assert final.json()["data"] == {"b": "1"}


async def test_apply_accepts_yaml_and_needs_a_field_manager(api: httpx.AsyncClient) -> None:
    body = textwrap.dedent(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: y}
        data: {k: v}
        """
    )
    created = await apply(api, f"{CM}/y", body)
    assert created.status_code == 201 and created.json()["data"] == {"k": "v"}
    missing = await api.patch(f"{CM}/y", content=body, headers=APPLY)
    assert missing.status_code == 422  # the apiserver's errors.NewInvalid, reason Invalid
    assert missing.json()["reason"] == "Invalid"
    assert (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value'
        in (missing.json()["message"])
    )
    no_kind = await apply(api, f"{CM}/y", {"apiVersion": "v1", "data": {}})
    assert no_kind.status_code == 400
    other_name = await apply(
        api, f"{CM}/y", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}}
    )
    assert other_name.status_code == 400


async def test_apply_to_status(api: httpx.AsyncClient) -> None:
    await create(api, DEPLOY, deployment("d"))
    status = {**deployment("d"), "spec": {"replicas": 7}, "status": {"replicas": 1, "ready": 1}}
    first = (await apply(api, f"{DEPLOY}/d/status", status, manager="ctl")).json()
    assert first["spec"]["replicas"] == 1 and first["status"] == {"replicas": 1, "ready": 1}
    status["status"] = {"replicas": 2}
    second = (await apply(api, f"{DEPLOY}/d/status", status, manager="ctl")).json()
    assert second["status"] == {"replicas": 2}
    assert second["metadata"]["generation"] == 1
    status["metadata"] = {"name": "nope"}
    assert (await apply(api, f"{DEPLOY}/nope/status", status)).status_code == 404


# ---- merge patch, JSON patch, preconditions ------------------------------------------------


async def test_merge_and_json_patches(api: httpx.AsyncClient) -> None:
    obj = await create(api, CM, {"metadata": {"name": "a"}, "data": {"k": "v", "drop": "x"}})
    merged = (await patch(api, f"{CM}/a", {"data": {"drop": None, "new": "n"}})).json()
    assert merged["data"] == {"k": "v", "new": "n"}
    ops = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": merged["metadata"]["resourceVersion"],
        },
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]
    patched = await patch(api, f"{CM}/a", ops, JSON_PATCH)
    assert patched.status_code == 200 and patched.json()["metadata"]["finalizers"] == ["x/y"]
    stale = await patch(api, f"{CM}/a", ops, JSON_PATCH)  # the resourceVersion moved on
    assert stale.status_code == 422
    missing_path = await patch(api, f"{CM}/a", [{"op": "remove", "path": "/spec/x"}], JSON_PATCH)
    assert missing_path.status_code == 422
    conflict = await patch(
        api, f"{CM}/a", {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}}
    )
    assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
    system = (await patch(api, f"{CM}/a", {"metadata": {"uid": "forged", "generation": 99}})).json()
    assert system["metadata"]["uid"] == obj["metadata"]["uid"]
    assert system["metadata"]["generation"] == merged["metadata"]["generation"] == 2


# ---- selectors on list and watch -----------------------------------------------------------


async def test_label_selectors_on_list(api: httpx.AsyncClient) -> None:
    await create(api, CM, configmap("one", app="web", tier="front"))
    await create(api, CM, configmap("two", app="web", tier="back", canary="yes"))
    await create(api, CM, configmap("three", app="db"))

    async def names(selector: str) -> list[str]:
        response = await api.get(CM, params={"labelSelector": selector})
        assert response.status_code == 200, response.text
        return [item["metadata"]["name"] for item in response.json()["items"]]

    assert await names("app=web") == ["one", "two"]
    assert await names("app==web,tier!=back") == ["one"]
    assert await names("tier!=back") == ["one", "three"]  # != matches a missing label
    assert await names("canary") == ["two"]
    assert await names("!canary") == ["one", "three"]
    assert await names("tier in (front, back),app") == ["one", "two"]
    assert await names("app notin (web)") == ["three"]
    assert await names("") == ["one", "three", "two"]
    assert (await api.get(CM, params={"labelSelector": "a in b"})).status_code == 400


async def test_field_selectors_on_list(api: httpx.AsyncClient) -> None:
    await create(api, CM, configmap("one"))
    await create(api, "/api/v1/namespaces/other/configmaps", configmap("one"))
    await create(api, CM, configmap("two"))
    everywhere = await api.get("/api/v1/configmaps", params={"fieldSelector": "metadata.name=one"})
    assert [i["metadata"]["namespace"] for i in everywhere.json()["items"]] == ["default", "other"]
    only = {"fieldSelector": "metadata.name=one,metadata.namespace=other"}
    assert len((await api.get("/api/v1/configmaps", params=only)).json()["items"]) == 1
    not_one = await api.get(CM, params={"fieldSelector": "metadata.name!=one"})
    assert [i["metadata"]["name"] for i in not_one.json()["items"]] == ["two"]

    for name, kind, uid in [("e1", "Pod", "u1"), ("e2", "Deployment", "u2"), ("e3", "Pod", "u3")]:
        involved = {"kind": kind, "name": f"{kind.lower()}-x", "uid": uid}
        await create(api, f"{NS}/events", {"metadata": {"name": name}, "involvedObject": involved})
    selector = "involvedObject.kind=Pod,involvedObject.name=pod-x,involvedObject.uid=u3"
    events = await api.get(f"{NS}/events", params={"fieldSelector": selector})
    assert [i["metadata"]["name"] for i in events.json()["items"]] == ["e3"]


async def test_label_selector_on_watch_follows_membership(api: httpx.AsyncClient) -> None:
    since = await current_rv(api, CM)
    async with watching(api, CM, labelSelector="app=web", resourceVersion=since) as ev:
        await create(api, CM, configmap("other", app="db"))  # never seen
        await create(api, CM, configmap("w", app="web"))
        assert (await ev())["type"] == "ADDED"
        await patch(api, f"{CM}/w", {"metadata": {"labels": {"app": "db"}}})
        leaving = await ev()
        assert leaving["type"] == "DELETED" and leaving["object"]["metadata"]["name"] == "w"
        await patch(api, f"{CM}/other", {"metadata": {"labels": {"app": "web"}}})
        joining = await ev()
        assert joining["type"] == "ADDED" and joining["object"]["metadata"]["name"] == "other"


async def test_watch_resumes_from_the_list_resource_version(api: httpx.AsyncClient) -> None:
    await create(api, CM, configmap("old"))
    listed = (await api.get(CM)).json()
    assert listed["kind"] == "ConfigMapList"
    since = listed["metadata"]["resourceVersion"]
    assert int(since) == rv(listed["items"][0])
    await create(api, CM, configmap("between"))  # after the list, before the watch
    async with watching(api, CM, resourceVersion=since) as ev:
        event = await ev()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "between")
        await create(api, CM, configmap("live"))
        assert (await ev())["object"]["metadata"]["name"] == "live"
    async with watching(api, CM) as ev:  # no resourceVersion: the current state first
        names = {(await ev())["object"]["metadata"]["name"] for _ in range(3)}
        assert names == {"old", "between", "live"}


async def test_watch_initial_events_end_with_a_bookmark(api: httpx.AsyncClient) -> None:
    await create(api, CM, configmap("a"))
    params = {"sendInitialEvents": "true", "allowWatchBookmarks": "true"}
    async with watching(api, CM, **params) as ev:
        assert (await ev())["type"] == "ADDED"
        bookmark = await ev()
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"
        }


async def test_watch_of_one_object_ends_after_timeout_seconds(api: httpx.AsyncClient) -> None:
    await create(api, CM, configmap("a"))
    await create(api, CM, configmap("b"))
    params = {"watch": "true", "timeoutSeconds": "1"}
    response = await asyncio.wait_for(api.get(f"{CM}/b", params=params), 3)
    events = [json.loads(line) for line in response.text.splitlines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


# ---- deletion: finalizers, garbage collection, namespaces ----------------------------------


def owned_by(owner: dict[str, Any]) -> list[dict[str, Any]]:
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "controller": True}
    return [{**ref, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]


async def test_garbage_collection_cascades(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    owner = await create(api, DEPLOY, deployment("owner"))
    child = await create(
        api, CM, {"metadata": {"name": "child", "ownerReferences": owned_by(owner)}}
    )
    grandchild = {"name": "grandchild", "ownerReferences": owned_by(child)}
    await create(api, f"{NS}/secrets", {"metadata": grandchild})
    other = await create(api, CM, configmap("co-owned"))
    both = owned_by(owner) + owned_by(other)
    await create(api, f"{NS}/secrets", {"metadata": {"name": "co", "ownerReferences": both}})

    since = await current_rv(api, CM)
    async with watching(api, CM, resourceVersion=since) as ev:
        assert (await api.delete(f"{DEPLOY}/owner")).status_code == 200
        gone = await ev()
        assert (gone["type"], gone["object"]["metadata"]["name"]) == ("DELETED", "child")
        assert rv(gone["object"]) > int(since)
    assert kmock.object("v1/configmaps", "default", "child") is None
    assert kmock.object("v1/secrets", "default", "grandchild") is None
    assert kmock.object("v1/secrets", "default", "co") is not None  # one owner is still there
    assert (await api.get(f"{DEPLOY}/owner")).status_code == 404


async def test_orphan_propagation_keeps_dependents(
    api: httpx.AsyncClient, kmock: KubeEmulator
) -> None:
    owner = await create(api, DEPLOY, deployment("owner"))
    await create(api, CM, {"metadata": {"name": "child", "ownerReferences": owned_by(owner)}})
    await api.request("DELETE", f"{DEPLOY}/owner", json={"propagationPolicy": "Orphan"})
    child = kmock.object("v1/configmaps", "default", "child")
    assert child is not None and "ownerReferences" not in child["metadata"]


async def test_finalizers_delay_deletion(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    owner = await create(api, CM, {"metadata": {"name": "a", "finalizers": ["x/y"]}})
    await create(
        api, f"{NS}/secrets", {"metadata": {"name": "s", "ownerReferences": owned_by(owner)}}
    )
    deleting = await api.delete(f"{CM}/a")
    assert deleting.status_code == 200
    assert deleting.json()["metadata"]["deletionTimestamp"].endswith("Z")
    assert (await api.get(f"{CM}/a")).status_code == 200
    assert kmock.object("v1/secrets", "default", "s") is not None  # the owner still exists
    adding = await patch(api, f"{CM}/a", {"metadata": {"finalizers": ["x/y", "new/one"]}})
    assert adding.status_code == 422
    await patch(api, f"{CM}/a", {"metadata": {"finalizers": []}})
    assert (await api.get(f"{CM}/a")).status_code == 404
    assert kmock.object("v1/secrets", "default", "s") is None
    assert kmock.objects["v1/configmaps", "default", "a"].deleted  # kmock's own view agrees


async def test_namespaces(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    created = await create(api, "/api/v1/namespaces", {"metadata": {"name": "team"}})
    assert "namespace" not in created["metadata"] and created["status"] == {"phase": "Active"}
    await create(api, "/api/v1/namespaces", {"metadata": {"name": "other"}})
    listed = (await api.get("/api/v1/namespaces")).json()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["other", "team"]
    assert (await api.get("/api/v1/namespaces/team")).json()["metadata"]["uid"]
    await create(api, "/api/v1/namespaces/team/configmaps", configmap("inside"))
    assert (await api.delete("/api/v1/namespaces/team")).status_code == 200
    assert (await api.get("/api/v1/namespaces/team")).status_code == 404
    assert kmock.objects_of("v1/configmaps") == []
    assert [ns["metadata"]["name"] for ns in kmock.objects_of("v1/namespaces")] == ["other"]


async def test_dry_run_changes_nothing(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    dry = await api.post(CM, json=configmap("a"), params={"dryRun": "All"})
    assert dry.status_code == 201 and dry.json()["metadata"]["uid"]
    assert kmock.object("v1/configmaps", "default", "a") is None


# ---- pod logs ------------------------------------------------------------------------------

LOG = f"{NS}/pods/web/log"


def stamp(seconds_ago: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds, as the kubelet


async def create_pod(api: httpx.AsyncClient, *containers: str) -> None:
    spec = {"containers": [{"name": name, "image": "x"} for name in containers]}
    await create(api, f"{NS}/pods", {"metadata": {"name": "web"}, "spec": spec})


async def test_pod_logs(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    await create_pod(api, "main")
    lines = [(stamp(600), "old"), (stamp(30), "recent"), (stamp(1), "newest")]
    kmock.seed_logs("default", "web", "main", lines)
    plain = await api.get(LOG)
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text == "old\nrecent\nnewest\n"
    stamped = await api.get(
        LOG, params={"container": "main", "timestamps": "true", "tailLines": "2"}
    )
    assert stamped.text == f"{lines[1][0]} recent\n{lines[2][0]} newest\n"
    assert (await api.get(LOG, params={"sinceSeconds": "60"})).text == "recent\nnewest\n"
    assert (await api.get(LOG, params={"tailLines": "0"})).text == ""

    missing_previous = await api.get(LOG, params={"previous": "true"})
    assert missing_previous.status_code == 400  # as the apiserver: BadRequest, not 404
    message = 'previous terminated container "main" in pod "web" not found'
    assert missing_previous.json()["message"] == message
    kmock.seed_logs("default", "web", "main", [(stamp(900), "crashed")], previous=True)
    assert (await api.get(LOG, params={"previous": "true"})).text == "crashed\n"

    unknown = await api.get(f"{NS}/pods/ghost/log")
    assert unknown.status_code == 404 and unknown.json()["message"] == 'pods "ghost" not found'
    assert (await api.get(LOG, params={"container": "nope"})).status_code == 400


async def test_pod_logs_need_a_container_name_when_ambiguous(api: httpx.AsyncClient) -> None:
    await create_pod(api, "a", "b")
    response = await api.get(LOG)
    assert response.status_code == 400
    message = "a container name must be specified for pod web, choose one of: [a b]"
    assert response.json()["message"] == message
    assert (await api.get(LOG, params={"container": "b"})).text == ""


async def test_pod_logs_follow(api: httpx.AsyncClient, kmock: KubeEmulator) -> None:
    await create_pod(api, "main")
    kmock.seed_logs("default", "web", "main", [(stamp(1), "seeded")])
    params = {"follow": "true", "timestamps": "true"}
    async with api.stream("GET", LOG, params=params) as response:
        assert response.headers["content-type"].startswith("text/plain")
        lines = response.aiter_lines()
        assert (await asyncio.wait_for(anext(lines), 3)).endswith(" seeded")
        kmock.append_logs("default", "web", "main", [("2026-12-02T10:00:00.123456789Z", "later")])
        assert await asyncio.wait_for(anext(lines), 3) == "2026-12-02T10:00:00.123456789Z later"
        kmock.close_logs("default", "web", "main")
        assert [line async for line in lines] == []  # the stream ends
    # A closed container's log is not followed: the answer ends at once.
    done = await asyncio.wait_for(api.get(LOG, params={"follow": "true"}), 3)
    assert done.text == "seeded\nlater\n"


async def test_pod_logs_follow_ends_when_the_client_leaves(
    api: httpx.AsyncClient, kmock: KubeEmulator
) -> None:
    await create_pod(api, "main")
    async with api.stream("GET", LOG, params={"follow": "true"}) as response:
        assert response.status_code == 200
        await eventually(lambda: _assert_followers(kmock, 1))
    await eventually(lambda: _assert_followers(kmock, 0))


def _assert_followers(kmock: KubeEmulator, count: int) -> None:
    assert len(kmock._log_followers["default", "web", "main"]) == count


# ---- a real kopf operator ------------------------------------------------------------------

OPERATOR = '''
import base64
import json
import os

import httpx
import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.scanning.disabled = True
    settings.posting.enabled = False


@kopf.on.login()
def login(**_):
    return kopf.ConnectionInfo(server=os.environ["KMOCK_URL"], insecure=True)


@kopf.on.event("configmaps")
async def mirror(event, body, name, namespace, **_):
    """Apply a Secret owned by the ConfigMap, on every event: the server drops the no-ops."""
    if event["type"] == "DELETED":
        return
    data = {key: base64.b64encode(text.encode()).decode() for key, text in body["data"].items()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-mirror"}}
    secret["data"] = data
    kopf.adopt(secret, owner=body)
    async with httpx.AsyncClient(base_url=os.environ["KMOCK_URL"]) as client:
        response = await client.patch(
            f"/api/v1/namespaces/{namespace}/secrets/{name}-mirror",
            content=json.dumps(secret),
            headers={"Content-Type": "application/apply-patch+yaml"},
            params={"fieldManager": "tiny-operator", "force": "true"},
        )
        response.raise_for_status()
'''


async def test_kopf_operator_applies_and_the_emulator_collects(
    api: httpx.AsyncClient, kmock: KubeEmulator, tmp_path: Any
) -> None:
    path = tmp_path / "tiny_operator.py"
    path.write_text(OPERATOR)
    argv = ["run", "--standalone", "-n", "default", str(path)]
    async with running_operator(kmock, argv):
        owner = await create(api, CM, configmap("cfg"))

        def mirrored() -> dict[str, Any]:
            secret = kmock.object("v1/secrets", "default", "cfg-mirror")
            assert secret is not None
            return secret

        secret = await eventually(mirrored)
        (ref,) = secret["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"]) == (
            "ConfigMap",
            "cfg",
            owner["metadata"]["uid"],
        )
        assert ref["controller"] is True
        assert kmock.managers["v1/secrets", "default", "cfg-mirror"] == {"tiny-operator"}

        # A ConfigMap event that changes nothing in the Secret: applied again, stored as is.
        applies = len(kmock.writes())
        # (An annotation: kopf.adopt copies the owner's labels to the child.)
        await patch(api, f"{CM}/cfg", {"metadata": {"annotations": {"touched": "yes"}}})
        await eventually(lambda: _assert_more_writes(kmock, applies + 1))
        unchanged = kmock.object("v1/secrets", "default", "cfg-mirror")
        assert unchanged is not None and rv(unchanged) == rv(secret)

        assert (await api.delete(f"{CM}/cfg")).status_code == 200
        await eventually(lambda: _assert_gone(kmock, "v1/secrets", "cfg-mirror"))
    assert not [write for write in kmock.writes() if write[0] == "PUT"]


def _assert_more_writes(kmock: KubeEmulator, count: int) -> None:
    assert len(kmock.writes()) > count


def _assert_gone(kmock: KubeEmulator, resource: str, name: str) -> None:
    assert kmock.object(resource, "default", name) is None
