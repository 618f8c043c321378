"""The install manifests in ``deploy/``: valid for Kubernetes 1.28 to 1.33, least privilege.

No API server runs here, so each object is checked against Kubernetes' published schemas
(kubernetes-validate, strict: unknown fields fail too). A missing schema for a built-in kind
is an error, not a skip. The RBAC rules are compared with the exact list of what the
operator does, so a new verb needs a reason written next to it in ``deploy/rbac.yaml``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infergraph._version import __version__

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSIONS = ["1.28", "1.29", "1.30", "1.31", "1.32", "1.33"]
MANIFESTS = sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
CHILD_VERBS = ["create", "patch", "delete", "list", "watch"]
ROUTING_VERBS = ["create", "patch", "delete", "list"]  # not watched: the CRDs may be missing


def _objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _one(kind: str, path: Path) -> dict[str, Any]:
    (found,) = [doc for doc in _objects(path) if doc["kind"] == kind]
    return found


OBJECTS = [
    pytest.param(doc, id=f"{path.name}:{doc['kind']}/{doc['metadata']['name']}")
    for path in MANIFESTS
    for doc in _objects(path)
]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("document", OBJECTS)
def test_manifest_is_valid_kubernetes(document: dict[str, Any], version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(document, version, strict=True)


def test_every_kind_has_a_schema() -> None:
    """kubernetes-validate only warns about a kind it has no schema for; we fail instead."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    bogus = {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "x"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(bogus, "1.28", strict=True)


def test_a_broken_deployment_is_caught() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    operator = _one("Deployment", DEPLOY / "operator.yaml")
    operator["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(operator, "1.30", strict=True)


def test_kustomization_lists_the_install() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"] == [
        "crd.yaml",
        "namespace.yaml",
        "rbac.yaml",
        "operator.yaml",
    ]
    for name in kustomization["resources"]:
        assert (DEPLOY / name).is_file(), name
    opt_in = {"rbac-routing.yaml", "rbac-seldon.yaml", "seldondeployments-crd.yaml"}
    assert {p.name for p in MANIFESTS} == set(kustomization["resources"]) | opt_in


def test_kustomize_builds_the_install_offline() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc)
    assert kinds == sorted(
        [
            "CustomResourceDefinition",
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
        ]
    )


def _rules(path: Path, name: str) -> dict[tuple[str, str], list[str]]:
    (role,) = [
        d for d in _objects(path) if d["kind"] == "ClusterRole" and d["metadata"]["name"] == name
    ]
    out: dict[tuple[str, str], list[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in out, (group, resource)
                out[group, resource] = rule["verbs"]
    return out


def test_operator_rbac_is_exactly_what_it_needs() -> None:
    assert _rules(DEPLOY / "rbac.yaml", "infergraph-operator") == {
        ("infergraph.io", "graphdeployments"): ["get", "list", "watch"],
        ("infergraph.io", "graphdeployments/status"): ["patch"],
        ("infergraph.io", "graphdeployments/finalizers"): ["update"],
        ("", "configmaps"): CHILD_VERBS,
        ("", "services"): CHILD_VERBS,
        ("apps", "deployments"): CHILD_VERBS,
        ("autoscaling", "horizontalpodautoscalers"): CHILD_VERBS,
        ("policy", "poddisruptionbudgets"): CHILD_VERBS,
        ("", "events"): ["create"],
    }


def test_optional_routing_rbac() -> None:
    assert _rules(DEPLOY / "rbac-routing.yaml", "infergraph-operator-routing") == {
        ("keda.sh", "scaledobjects"): ROUTING_VERBS,
        ("gateway.networking.k8s.io", "httproutes"): ROUTING_VERBS,
        ("networking.istio.io", "virtualservices"): ROUTING_VERBS,
        ("networking.istio.io", "destinationrules"): ROUTING_VERBS,
    }


def test_optional_seldon_rbac() -> None:
    assert _rules(DEPLOY / "rbac-seldon.yaml", "infergraph-operator-seldon") == {
        ("machinelearning.seldon.io", "seldondeployments"): ["get", "list", "watch"],
        ("machinelearning.seldon.io", "seldondeployments/status"): ["patch"],
        ("machinelearning.seldon.io", "seldondeployments/finalizers"): ["update"],
    }


def test_no_wildcards_and_no_secrets() -> None:
    for path in (DEPLOY / "rbac.yaml", DEPLOY / "rbac-routing.yaml", DEPLOY / "rbac-seldon.yaml"):
        text = path.read_text()
        assert '"*"' not in text and "secrets" not in text.replace("Secrets", "")


def test_every_verb_says_why() -> None:
    """Each verb the operator's ClusterRole grants is explained by a comment (``#   verb:``)."""
    text = (DEPLOY / "rbac.yaml").read_text()
    explained = set()
    for comment in re.findall(r"^\s*#\s+([a-z, ]+?)(?: \([^)]*\))?:", text, re.MULTILINE):
        explained |= {verb.strip() for verb in comment.split(",")}
    granted = {
        verb
        for verbs in _rules(DEPLOY / "rbac.yaml", "infergraph-operator").values()
        for verb in verbs
    }
    assert granted <= explained, granted - explained


def test_bindings_point_at_the_service_account() -> None:
    account = _one("ServiceAccount", DEPLOY / "rbac.yaml")["metadata"]
    for path, role in (
        (DEPLOY / "rbac.yaml", "infergraph-operator"),
        (DEPLOY / "rbac-routing.yaml", "infergraph-operator-routing"),
        (DEPLOY / "rbac-seldon.yaml", "infergraph-operator-seldon"),
    ):
        binding = _one("ClusterRoleBinding", path)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]


def test_operator_runs_once_and_recreates() -> None:
    operator = _one("Deployment", DEPLOY / "operator.yaml")
    spec = operator["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert (
        pod["serviceAccountName"]
        == _one("ServiceAccount", DEPLOY / "rbac.yaml")["metadata"]["name"]
    )
    (container,) = pod["containers"]
    assert container["args"] == ["operator"]
    assert container["image"] == f"infergraph:{__version__}"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    namespace = _one("Namespace", DEPLOY / "namespace.yaml")["metadata"]["name"]
    assert operator["metadata"]["namespace"] == namespace


def test_operator_meets_the_restricted_pod_security_standard() -> None:
    pod = _one("Deployment", DEPLOY / "operator.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "limits" in container["resources"]
