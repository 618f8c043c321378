"""Every rendered object against the published schemas of the APIs it targets.

Built-in kinds are checked with kubernetes-validate's bundled strict schemas for every
Kubernetes minor version infergraph supports (1.28 to 1.33), through ``jsonschema`` so that
all errors are reported, not only the first; a kind with no schema in one of those versions
(a removed API such as ``autoscaling/v2beta1``) is a failure, not the warning
kubernetes-validate gives. Custom resources (KEDA ScaledObject, Istio VirtualService and
DestinationRule, Gateway API HTTPRoute) are checked two ways: against the typed npm models
``@kubernetes-models/*`` (the projects' published schemas, run by node), and everywhere
against a structural schema of the CRD fields rendered objects use.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from infergraph.kube.render import render
from tests.helpers.kube_cases import CASES, deployment, options

VERSIONS = ("1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
BUILTIN_GROUPS = {"", "apps", "autoscaling", "policy"}


def _rendered() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for case, path, changes in CASES:
        for obj in render(deployment(path), options(**changes)):
            out.append((f"{case}:{obj['kind']}/{obj['metadata']['name']}", obj))
    return out


RENDERED = _rendered()


def _group_version(obj: dict[str, Any]) -> tuple[str, str]:
    group, _, version = obj["apiVersion"].rpartition("/")
    return group, version


@functools.cache
def _schema_folder(version: str) -> Any:
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    pattern = re.compile(rf"v{re.escape(version)}\.\d+-local-strict\Z")
    folders = sorted((p for p in base.iterdir() if pattern.match(p.name)), key=lambda p: p.name)
    assert folders, f"kubernetes-validate has no strict schemas for Kubernetes {version}"
    return folders[-1]


@functools.cache
def _validator(version: str, kind: str, group: str, api_version: str) -> jsonschema.Validator:
    folder = _schema_folder(version)
    prefix = kind.lower() + (f"-{group.split('.')[0]}" if group else "")
    schema_file = folder / f"{prefix}-{api_version}.json"
    assert schema_file.is_file(), (
        f"Kubernetes {version} has no schema for {group or 'core'}/{api_version} {kind}"
    )
    schema = json.loads(schema_file.read_text())
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


BUILTIN = [
    pytest.param(obj, id=name) for name, obj in RENDERED if _group_version(obj)[0] in BUILTIN_GROUPS
]
CUSTOM = [(name, obj) for name, obj in RENDERED if _group_version(obj)[0] not in BUILTIN_GROUPS]


def test_every_kind_is_checked() -> None:
    kinds = {obj["kind"] for _, obj in RENDERED}
    assert kinds == {
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ScaledObject",
        "VirtualService",
        "DestinationRule",
        "HTTPRoute",
    }


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("obj", BUILTIN)
def test_builtin_objects_validate_strictly(obj: dict[str, Any], version: str) -> None:
    group, api_version = _group_version(obj)
    validator = _validator(version, obj["kind"], group, api_version)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_kubernetes_validate_itself_agrees() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for _, obj in RENDERED:
        if _group_version(obj)[0] in BUILTIN_GROUPS:
            for version in (VERSIONS[0], VERSIONS[-1]):
                kubernetes_validate.validate(obj, version, strict=True)


def test_the_strict_schemas_do_reject_mistakes() -> None:
    deployment_ = next(copy.deepcopy(o) for _, o in RENDERED if o["kind"] == "Deployment")
    deployment_["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    deployment_["spec"]["replicas"] = "two"
    hpa = next(copy.deepcopy(o) for _, o in RENDERED if o["kind"] == "HorizontalPodAutoscaler")
    hpa["spec"]["metrics"] = [{"type": "Resource", "resource": {"name": "cpu"}}]
    for obj in (deployment_, hpa):
        group, api_version = _group_version(obj)
        validator = _validator(VERSIONS[0], obj["kind"], group, api_version)
        assert list(validator.iter_errors(obj))
    with pytest.raises(AssertionError, match="no schema"):
        _validator("1.28", "HorizontalPodAutoscaler", "autoscaling", "v2beta1")


def _custom(kind: str) -> list[Any]:
    return [pytest.param(obj, id=name) for name, obj in CUSTOM if obj["kind"] == kind]


# Structural checks that run everywhere: the parts of the CRDs' schemas (Gateway API
# v1.3 ``httproutes``, KEDA 2.x ``scaledobjects``) that rendered objects use, with their
# limits, enums and required fields, written from the projects' API reference.
_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_BACKEND = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": _NAME,
        "namespace": {"type": "string"},
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
    },
}
HTTPROUTE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "parentRefs": {
                    "type": "array",
                    "maxItems": 32,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "group": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": _NAME,
                            "namespace": {"type": "string"},
                            "sectionName": {"type": "string"},
                            "port": _PORT,
                        },
                    },
                },
                "hostnames": {"type": "array", "items": {"type": "string"}},
                "rules": {
                    "type": "array",
                    "maxItems": 16,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "matches": {
                                "type": "array",
                                "maxItems": 64,
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "path": {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "properties": {
                                                "type": {
                                                    "enum": [
                                                        "Exact",
                                                        "PathPrefix",
                                                        "RegularExpression",
                                                    ]
                                                },
                                                "value": {
                                                    "type": "string",
                                                    "pattern": "^/",
                                                    "maxLength": 1024,
                                                },
                                            },
                                        }
                                    },
                                },
                            },
                            "filters": {
                                "type": "array",
                                "maxItems": 16,
                                "items": {
                                    "type": "object",
                                    "required": ["type"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {
                                            "enum": [
                                                "RequestHeaderModifier",
                                                "ResponseHeaderModifier",
                                                "RequestMirror",
                                                "RequestRedirect",
                                                "URLRewrite",
                                                "ExtensionRef",
                                            ]
                                        },
                                        "requestMirror": {
                                            "type": "object",
                                            "required": ["backendRef"],
                                            "additionalProperties": False,
                                            "properties": {
                                                "backendRef": _BACKEND,
                                                "percent": {
                                                    "type": "integer",
                                                    "minimum": 0,
                                                    "maximum": 100,
                                                },
                                            },
                                        },
                                        "urlRewrite": {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "properties": {
                                                "hostname": {"type": "string"},
                                                "path": {
                                                    "type": "object",
                                                    "required": ["type"],
                                                    "properties": {
                                                        "type": {
                                                            "enum": [
                                                                "ReplaceFullPath",
                                                                "ReplacePrefixMatch",
                                                            ]
                                                        },
                                                        "replacePrefixMatch": {
                                                            "type": "string",
                                                            "maxLength": 1024,
                                                        },
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                            "backendRefs": {"type": "array", "maxItems": 16, "items": _BACKEND},
                        },
                    },
                },
            },
        },
    },
}
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _NAME},
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            }
                        },
                    },
                },
                **{
                    key: {"type": "integer", "minimum": 0}
                    for key in (
                        "pollingInterval",
                        "cooldownPeriod",
                        "minReplicaCount",
                        "maxReplicaCount",
                        "idleReplicaCount",
                    )
                },
            },
        },
    },
}


@pytest.mark.parametrize("obj", _custom("HTTPRoute"))
def test_http_route_is_well_formed(obj: dict[str, Any]) -> None:
    errors = list(jsonschema.Draft202012Validator(HTTPROUTE).iter_errors(obj))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    for rule in obj["spec"]["rules"]:  # a CEL rule of the CRD
        if any(f["type"] == "URLRewrite" for f in rule.get("filters", [])):
            assert all(m["path"]["type"] == "PathPrefix" for m in rule["matches"])


@pytest.mark.parametrize("obj", _custom("ScaledObject"))
def test_scaled_object_is_well_formed(obj: dict[str, Any]) -> None:
    errors = list(jsonschema.Draft202012Validator(SCALED_OBJECT).iter_errors(obj))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


# The projects' own published schemas, through the typed npm models @kubernetes-models/*
# (pinned in tests/kube_models/package.json; ajv, offline once installed). Point
# INFERGRAPH_KUBE_MODELS at a folder where ``npm ci`` ran in a copy of tests/kube_models,
# or let the test install them (marked slow: it needs node, npm and the npm registry).
MODELS = Path(__file__).parents[1] / "kube_models"


@pytest.fixture(scope="module")
def kube_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("INFERGRAPH_KUBE_MODELS")
    if given:
        return Path(given)
    if not shutil.which("node") or not shutil.which("npm"):
        _absent("node and npm are needed for the @kubernetes-models checks (apt-get install npm)")
    folder = tmp_path_factory.mktemp("kube_models")
    shutil.copy(MODELS / "package.json", folder)
    install = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if install.returncode != 0:
        _absent(f"npm install failed: {install.stderr.strip()[-300:]}")
    return folder


def _absent(why: str) -> None:
    """Skip when run by hand; CI installs everything and runs every test."""
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def _node_check(folder: Path, objects: list[dict[str, Any]]) -> list[str]:
    shutil.copy(MODELS / "validate.mjs", folder / "validate.mjs")
    run = subprocess.run(
        ["node", str(folder / "validate.mjs")],
        input=json.dumps(objects),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout.splitlines()


@pytest.mark.slow
def test_custom_resources_match_their_projects_schemas(kube_models: Path) -> None:
    objects = [obj for _, obj in CUSTOM]
    lines = _node_check(kube_models, objects)
    assert len(lines) == len(objects)
    assert [line for line in lines if not line.startswith("ok ")] == []


@pytest.mark.slow
def test_the_npm_models_do_reject_bad_objects(kube_models: Path) -> None:
    route = next(copy.deepcopy(obj) for _, obj in CUSTOM if obj["kind"] == "HTTPRoute")
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    scaled = next(copy.deepcopy(obj) for _, obj in CUSTOM if obj["kind"] == "ScaledObject")
    scaled["spec"]["maxReplicaCount"] = "ten"
    service = next(copy.deepcopy(obj) for _, obj in CUSTOM if obj["kind"] == "VirtualService")
    service["spec"]["http"][0]["route"][0]["weight"] = "eighty"
    lines = _node_check(kube_models, [route, scaled, service])
    assert all(line.startswith("FAIL ") for line in lines), lines
