"""Argo CD's health check for GraphDeployment, run in Lua 5.1 as Argo CD runs it.

Argo CD evaluates ``health.lua`` with gopher-lua (Lua 5.1) and only the base, table and a
reduced os library; the other standard libraries are removed here too, so a script that
leans on ``string`` or ``math`` fails this test instead of failing in Argo CD. The docs'
``argocd-cm`` snippet must carry the same script, and the ``ignoreDifferences`` snippet must
parse into what Argo CD expects.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

lua51 = pytest.importorskip("lupa.lua51")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "deploy" / "argocd" / "health.lua").read_text()
DOC = (ROOT / "docs" / "kubernetes.md").read_text()
HEALTH_KEY = "resource.customizations.health.infergraph.io_GraphDeployment"
_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def health(resource: dict[str, Any]) -> tuple[str, str]:
    """``(status, message)`` of ``resource``, from the script in a fresh Argo-like runtime."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.execute(
        "string, math, io, debug, coroutine, require, dofile, loadfile = "
        "nil, nil, nil, nil, nil, nil, nil, nil\n"
        "local time, date = os.time, os.date\n"
        "os = {time = time, date = date}"
    )
    runtime.globals().obj = runtime.table_from(resource, recursive=True)
    result = runtime.execute(SCRIPT)
    assert set(result.keys()) == {"status", "message"}, dict(result)
    return result["status"], result["message"]


def _resource(status: dict[str, Any] | None, generation: int | None = 2) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "iris", "namespace": "models"}
    if generation is not None:
        metadata["generation"] = generation
    resource: dict[str, Any] = {"apiVersion": "infergraph.io/v1", "kind": "GraphDeployment"}
    resource["metadata"] = metadata
    resource["spec"] = {"predictors": []}
    if status is not None:
        resource["status"] = status
    return resource


def _ready(status: str, message: str = "", reason: str = "Available") -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-12-02T07:00:00Z",
        "observedGeneration": 2,
    }


def _status(state: str | None, *conditions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": 2, **fields}
    if state is not None:
        status["state"] = state
    if conditions:
        status["conditions"] = list(conditions)
    return status


DEPLOYMENTS_READY = {**_ready("True"), "type": "DeploymentsReady"}

CASES = [
    pytest.param(
        _resource(None),
        ("Progressing", "Waiting for the infergraph operator to report status"),
        id="no-status",
    ),
    pytest.param(
        _resource({}),
        ("Progressing", "The infergraph operator has not yet observed generation 2"),
        id="empty-status",
    ),
    pytest.param(
        _resource(_status("Available", _ready("True"), observedGeneration=1)),
        ("Progressing", "The infergraph operator has not yet observed generation 2"),
        id="stale-available",
    ),
    pytest.param(
        _resource(_status("Failed", description="boom", observedGeneration=1)),
        ("Progressing", "The infergraph operator has not yet observed generation 2"),
        id="stale-failed-may-be-fixed",
    ),
    pytest.param(
        _resource(_status("Creating", _ready("False", "2 of 3 replicas available", "Progressing"))),
        ("Progressing", "2 of 3 replicas available"),
        id="creating-with-ready-message",
    ),
    pytest.param(
        _resource(_status("Creating", description="Creating deployments")),
        ("Progressing", "Creating deployments"),
        id="creating-with-description",
    ),
    pytest.param(
        _resource(_status("Creating")),
        ("Progressing", "Creating"),
        id="creating-bare",
    ),
    pytest.param(
        _resource(_status(None, _ready("Unknown", "Reconciling"))),
        ("Progressing", "Reconciling"),
        id="no-state-yet",
    ),
    pytest.param(
        _resource(_status("Available", _ready("True"))),
        ("Healthy", "Available"),
        id="available",
    ),
    pytest.param(
        _resource(_status("Available", DEPLOYMENTS_READY, _ready("True", "All 3 replicas ready"))),
        ("Healthy", "All 3 replicas ready"),
        id="available-ready-among-other-conditions",
    ),
    pytest.param(
        _resource(_status("Available", _ready("True"), description="Serving")),
        ("Healthy", "Serving"),
        id="available-with-description",
    ),
    pytest.param(
        _resource(_status("Available", _ready("True")), generation=None),
        ("Healthy", "Available"),
        id="available-no-generation",
    ),
    pytest.param(
        _resource(_status("Available", DEPLOYMENTS_READY)),
        ("Progressing", "Creating"),
        id="available-without-ready-condition",
    ),
    pytest.param(
        _resource(_status("Available", _ready("False", "Rolling out"))),
        ("Progressing", "Rolling out"),
        id="available-but-not-ready",
    ),
    pytest.param(
        _resource(
            _status(
                "Failed",
                _ready("False", "", "Failed"),
                description="Deployment is no longer progressing and not available.",
            )
        ),
        ("Degraded", "Deployment is no longer progressing and not available."),
        id="failed",
    ),
    pytest.param(
        _resource(_status("Failed", description="")),
        ("Degraded", "The deployment failed"),
        id="failed-without-description",
    ),
]


@pytest.mark.parametrize(("resource", "expected"), CASES)
def test_health(resource: dict[str, Any], expected: tuple[str, str]) -> None:
    assert health(resource) == expected


def test_the_sandbox_really_lacks_the_string_library() -> None:
    runtime = lua51.LuaRuntime()
    runtime.execute("string = nil")
    with pytest.raises(lua51.LuaError):
        runtime.execute("return string.find('a', 'a')")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.DOTALL | re.MULTILINE)
    assert match, f"docs/kubernetes.md has no '## {title}' section"
    return match.group(1)


def _argo_blocks() -> list[dict[str, Any]]:
    return [yaml.safe_load(block) for block in _YAML_BLOCK.findall(_section("Argo CD"))]


def _block(kind: str) -> dict[str, Any]:
    (found,) = [block for block in _argo_blocks() if block.get("kind") == kind]
    return found


def test_docs_install_exactly_this_script() -> None:
    config_map = _block("ConfigMap")
    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"] == {HEALTH_KEY: SCRIPT}


def test_docs_config_map_is_valid_kubernetes() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for version in ("1.28", "1.33"):
        kubernetes_validate.validate(_block("ConfigMap"), version, strict=True)


def test_docs_ignore_the_replicas_an_autoscaler_owns() -> None:
    application = _block("Application")
    assert application["apiVersion"] == "argoproj.io/v1alpha1"
    spec = application["spec"]
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]
    ignored = {(d["group"], d["kind"]): d["jsonPointers"] for d in spec["ignoreDifferences"]}
    assert ignored == {
        ("infergraph.io", "GraphDeployment"): ["/spec/replicas"],
        ("apps", "Deployment"): ["/spec/replicas"],
    }
    for difference in spec["ignoreDifferences"]:
        assert set(difference) == {"group", "kind", "jsonPointers"}


def test_docs_install_section_exists() -> None:
    install = _section("Install")
    assert "kubectl apply -k deploy/" in install
    assert "real cluster" in install
