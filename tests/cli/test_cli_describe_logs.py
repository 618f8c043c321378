"""``infergraph describe`` and ``infergraph logs``, run as commands against the API emulator.

The emulator is seeded with what a real cluster shows for each failure (the pods, events,
Deployments and logs of tests/kube/test_kube_diagnose.py's builders); the commands run as users
run them, in a subprocess, from a kubeconfig, and their output is what is asserted.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from infergraph.kube.api import KINDS
from infergraph.kube.diagnose import Snapshot
from tests.helpers.doc_blocks import shown
from tests.helpers.kube_emulator import KubeEmulator, declare_core
from tests.helpers.operator_harness import client, write_kubeconfig
from tests.kube.test_kube_diagnose import (
    DEPLOYMENT,
    IMAGE,
    NS,
    SERVICE,
    SUFFIXES,
    endpoints,
    event,
    healthy,
    hpa,
    name_of,
    pod,
    running,
    terminated,
    waiting,
    with_pods,
)

pytestmark = pytest.mark.kmock(cls=KubeEmulator)

LABELS = {
    "app.kubernetes.io/managed-by": "infergraph",
    "infergraph.io/deployment": "iris",
    "seldon-deployment-id": "iris",
}
STATUS = {"GraphDeployment", "Deployment", "ReplicaSet", "HorizontalPodAutoscaler", "Pod"}


async def seed(kmock: KubeEmulator, snapshot: Snapshot) -> None:
    """Create every object of ``snapshot`` in the emulator, status included, and its logs."""
    http = client(str(kmock.url).rstrip("/"))
    async with http:
        objects: list[dict[str, Any]] = [
            *([snapshot.resource] if snapshot.resource else []),
            *snapshot.deployments,
            *snapshot.replicasets,
            *snapshot.pods,
            *snapshot.services,
            *snapshot.endpoints,
            *snapshot.autoscalers,
            *snapshot.events,
        ]
        for number, obj in enumerate(objects):
            body = {k: v for k, v in obj.items() if k != "status" or obj["kind"] not in STATUS}
            metadata = dict(body.get("metadata") or {})
            if obj["kind"] == "Event":
                metadata.setdefault("name", f"iris.{number:04d}")
            elif obj["kind"] != "Pod":
                metadata["labels"] = {**LABELS, **(metadata.get("labels") or {})}
            metadata.pop("generation", None)
            body["metadata"] = {**metadata, "namespace": NS}
            kind = KINDS[obj["kind"]]
            response = await http.post(kind.path(NS), json=body)
            assert response.status_code == 201, response.text
            if obj["kind"] in STATUS and "status" in obj:
                response = await http.patch(
                    kind.path(NS, metadata["name"]) + "/status",
                    json={"status": obj["status"]},
                    headers={"Content-Type": "application/merge-patch+json"},
                )
                assert response.status_code == 200, response.text
    for (pod_name, container), lines in snapshot.logs.items():
        kmock.seed_logs(NS, pod_name, container, _stamped(lines))
    for (pod_name, container), lines in snapshot.previous_logs.items():
        kmock.seed_logs(NS, pod_name, container, _stamped(lines), previous=True)


def _stamped(lines: list[str], second: int = 0) -> list[tuple[str, str]]:
    return [
        (f"2026-12-02T10:00:{second:02d}.{index:06d}000Z", text) for index, text in enumerate(lines)
    ]


async def infergraph(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECONFIG"] = str(kubeconfig)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infergraph.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def kubeconfig(kmock: KubeEmulator, tmp_path: Path) -> Path:
    declare_core(kmock)
    return write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url).rstrip("/"), NS)


async def describe(kmock: KubeEmulator, kubeconfig: Path, snapshot: Snapshot) -> str:
    await seed(kmock, snapshot)
    code, out, err = await infergraph(kubeconfig, "describe", "iris")
    assert code == 1, (out, err)
    assert err == ""
    return out


async def test_healthy(kmock: KubeEmulator, kubeconfig: Path) -> None:
    await seed(kmock, healthy())
    code, out, err = await infergraph(kubeconfig, "describe", "iris")
    assert (code, err) == (0, ""), out
    assert "GraphDeployment iris is Available: 3 of 3 pods ready." in out


async def test_image_pull(kmock: KubeEmulator, kubeconfig: Path) -> None:
    back_off = waiting("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')
    snapshot = with_pods(healthy(), *[pod(s, classifier=back_off) for s in SUFFIXES])
    snapshot.events = [event(name_of(), "Failed", f'Failed to pull image "{IMAGE}": not found')]
    out = await describe(kmock, kubeconfig, snapshot)
    assert "node classifier (3 of 3 pods" in out
    assert f'the image "{IMAGE}" can\'t be pulled' in out
    assert f'Failed to pull image "{IMAGE}": not found' in out
    assert "imagePullSecrets" in out


async def test_crash_loop_with_last_log_lines(kmock: KubeEmulator, kubeconfig: Path) -> None:
    crash = waiting(
        "CrashLoopBackOff",
        "back-off 2m40s restarting failed container=classifier",
        restarts=5,
        last=terminated(1, "Error"),
    )
    snapshot = with_pods(healthy(1), pod(classifier=crash))
    snapshot.previous_logs = {
        (name_of(), "classifier"): ["loading /mnt/models/model.joblib", "KeyError: 'coef_'"]
    }
    out = await describe(kmock, kubeconfig, snapshot)
    assert "it keeps crashing: it exited with code 1" in out
    assert "KeyError: 'coef_'" in out  # read from the previous instance's log
    assert "--previous" in out


async def test_model_download_failed(kmock: KubeEmulator, kubeconfig: Path) -> None:
    log = ["fetching s3://models/iris into /mnt/models", "error: AccessDenied (status 403)"]
    init = waiting(
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=classifier-model-initializer",
        restarts=2,
        last=terminated(1, "Error"),
    )
    initializing = waiting("PodInitializing")
    snapshot = with_pods(healthy(1), pod(classifier=initializing, engine=initializing, init=init))
    snapshot.previous_logs = {(name_of(), "classifier-model-initializer"): log}
    out = await describe(kmock, kubeconfig, snapshot)
    assert "model download failed" in out
    assert "error: AccessDenied (status 403)" in out
    assert "envSecretRefName" in out


async def test_not_ready_and_no_endpoints(kmock: KubeEmulator, kubeconfig: Path) -> None:
    probe = "Readiness probe failed: dial tcp 10.244.1.7:9000: connect: connection refused"
    snapshot = with_pods(healthy(1), pod(classifier=running(ready=False)))
    snapshot.events = [event(name_of(), "Unhealthy", probe, count=14)]
    snapshot.endpoints = [endpoints(SERVICE, 0, 0), endpoints("iris-default", 1, 0, 8000)]
    out = await describe(kmock, kubeconfig, snapshot)
    assert "readiness probe fails" in out
    assert probe in out
    assert f"Service {SERVICE}" in out


async def test_hpa_without_metrics(kmock: KubeEmulator, kubeconfig: Path) -> None:
    snapshot = healthy()
    snapshot.autoscalers = [
        hpa(
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetResourceMetric",
                "message": "the HPA was unable to compute the replica count: unable to get "
                "metrics for resource cpu: no metrics returned from resource metrics API",
            }
        )
    ]
    await seed(kmock, snapshot)
    code, out, _ = await infergraph(kubeconfig, "describe", "iris")
    assert code == 0  # a warning: serving works, scaling does not
    assert f"HorizontalPodAutoscaler {DEPLOYMENT}" in out
    assert "metrics-server" in out


async def test_rejected_spec(kmock: KubeEmulator, kubeconfig: Path) -> None:
    snapshot = healthy()
    assert snapshot.resource is not None
    message = (
        "invalid deployment spec (1 problem):\n  spec.predictors[0].graph.implementation: "
        "unknown server 'NO_SUCH_SERVER'"
    )
    snapshot.resource["status"] = {"state": "Failed", "description": message}
    for field in ("deployments", "replicasets", "pods", "services", "endpoints", "autoscalers"):
        setattr(snapshot, field, [])
    snapshot.events = []
    out = await describe(kmock, kubeconfig, snapshot)
    assert "unknown server 'NO_SUCH_SERVER'" in out
    assert "infergraph validate" in out


async def test_no_such_deployment_and_no_cluster(kmock: KubeEmulator, kubeconfig: Path):
    code, out, err = await infergraph(kubeconfig, "describe", "nothing")
    assert code == 2 and out == ""
    assert "nothing" in err and NS in err
    code, _, err = await infergraph(kubeconfig, "logs", "nothing")
    assert code == 2 and "no GraphDeployment" in err
    missing = kubeconfig.parent / "absent"
    code, _, err = await infergraph(missing, "describe", "iris")
    assert code == 2
    assert "absent" in err and "Traceback" not in err
    # A kubeconfig whose server is down: one line, no traceback.
    down = write_kubeconfig(kubeconfig.parent / "down", "http://127.0.0.1:9")
    code, _, err = await infergraph(down, "logs", "iris")
    assert code == 2 and "cannot reach the Kubernetes API server" in err, err
    assert "Traceback" not in err


async def test_logs_are_labelled_by_node_and_merged_by_time(
    kmock: KubeEmulator, kubeconfig: Path
) -> None:
    snapshot = healthy(2)
    await seed(kmock, snapshot)
    first, second = name_of(SUFFIXES[0]), name_of(SUFFIXES[1])
    kmock.seed_logs(
        NS,
        first,
        "seldon-container-engine",
        [
            ("2026-12-02T10:00:01.000000001Z", "POST /api/v1.0/predictions"),
            ("2026-12-02T10:00:01.000300000Z", "200 OK 3 ms"),
        ],
    )
    kmock.seed_logs(
        NS,
        first,
        "classifier",
        [
            ("2026-12-02T10:00:01.000100000Z", "predict 1 row"),
        ],
    )
    kmock.seed_logs(
        NS,
        second,
        "classifier",
        [
            ("2026-12-02T10:00:00.500000000Z", "model loaded"),
        ],
    )
    kmock.seed_logs(
        NS,
        first,
        "classifier-model-initializer",
        [
            ("2026-12-02T09:59:59.000000000Z", "fetched s3://models/iris"),
        ],
    )
    code, out, err = await infergraph(kubeconfig, "logs", "iris")
    assert (code, err) == (0, ""), err
    lines = [line.split(" | ") for line in out.splitlines()]
    texts = [text for _, text in lines]
    assert texts == [
        "fetched s3://models/iris",
        "model loaded",
        "POST /api/v1.0/predictions",
        "predict 1 row",
        "200 OK 3 ms",
    ]
    labels = [label.strip() for label, _ in lines]
    assert labels[0] == f"classifier:init/{first.removeprefix(DEPLOYMENT + '-')}"
    assert labels[1] == f"classifier/{second.removeprefix(DEPLOYMENT + '-')}"
    assert labels[2].startswith("orchestrator/")

    code, out, err = await infergraph(
        kubeconfig, "logs", "iris", "--node", "classifier", "--tail", "1"
    )
    assert code == 0, err
    assert [line.split(" | ")[1] for line in out.splitlines()] == [
        "fetched s3://models/iris",
        "model loaded",
        "predict 1 row",
    ]
    code, _, err = await infergraph(kubeconfig, "logs", "iris", "--node", "nope")
    assert code == 2 and "its nodes: classifier, orchestrator" in err, err
    code, _, err = await infergraph(kubeconfig, "logs", "iris", "--since", "ten")
    assert code == 2 and "30s, 10m, 2h or 1d" in err


async def test_logs_follow(kmock: KubeEmulator, kubeconfig: Path) -> None:
    snapshot = healthy(1)
    await seed(kmock, snapshot)
    pod_name = name_of()
    kmock.seed_logs(NS, pod_name, "classifier", [("2026-12-02T10:00:00.000000000Z", "ready")])
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECONFIG"] = str(kubeconfig)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infergraph.cli.main",
        "logs",
        "iris",
        "--node",
        "classifier",
        "--follow",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert first.decode().rstrip().endswith("| ready")
        kmock.append_logs(
            NS, pod_name, "classifier", [("2026-12-02T10:00:05.000000000Z", "predict 4 rows")]
        )
        later = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert later.decode().rstrip().endswith("| predict 4 rows")
        for container in ("classifier", "classifier-model-initializer"):
            kmock.close_logs(NS, pod_name, container)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


DOCS = Path(__file__).parents[2] / "docs" / "kubernetes.md"


def _check_docs(which: int, out: str) -> None:
    """docs/kubernetes.md's ``which``-th block labelled for this file must be ``out``;
    INFERGRAPH_REGENERATE_DOCS=1 writes it instead."""
    block = shown("docs/kubernetes.md", "tests/cli/test_cli_describe_logs.py")[which]
    if os.environ.get("INFERGRAPH_REGENERATE_DOCS") == "1":
        DOCS.write_text(
            DOCS.read_text().replace(f"```text\n{block.text}```\n", f"```text\n{out}```\n")
        )
    assert block.text == out, f"{block.where} should show:\n{out}"


async def test_the_failing_deployment_in_the_docs(kmock: KubeEmulator, kubeconfig: Path) -> None:
    """docs/kubernetes.md shows `describe` and `logs` on a failing deployment: this is that
    deployment, and the docs show exactly what the commands print for it."""
    log = [
        "fetching s3://models/sklearn/iris into /mnt/models",
        "error: s3://models/sklearn/iris: AccessDenied: Access Denied (status 403); check "
        "the credentials in envSecretRefName",
    ]
    init = waiting(
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=classifier-model-initializer",
        restarts=3,
        last=terminated(1, "Error"),
    )
    initializing = waiting("PodInitializing")
    snapshot = with_pods(
        healthy(2),
        *[pod(s, classifier=initializing, engine=initializing, init=init) for s in SUFFIXES[:2]],
    )
    assert snapshot.resource is not None
    snapshot.resource["status"] = {
        "state": "Creating",
        "description": f"Deployment {DEPLOYMENT}: 0 of 2 replicas available",
        "observedGeneration": 1,
    }
    snapshot.events = []
    # pods still initializing have an IP: their endpoints are listed as not ready
    snapshot.endpoints = [endpoints(SERVICE, 0, 2), endpoints("iris-default", 0, 2, 8000)]
    await seed(kmock, snapshot)
    for suffix in SUFFIXES[:2]:
        kmock.seed_logs(
            NS, name_of(suffix), "classifier-model-initializer", _stamped(log, 7), previous=True
        )
        kmock.seed_logs(NS, name_of(suffix), "classifier-model-initializer", _stamped(log, 49))
    code, out, err = await infergraph(kubeconfig, "describe", "iris", "-n", NS)
    assert code == 1 and err == ""
    _check_docs(0, out)
    code, out, err = await infergraph(kubeconfig, "logs", "iris", "-n", NS, "--node", "classifier")
    assert code == 0 and err == ""
    _check_docs(1, out)
