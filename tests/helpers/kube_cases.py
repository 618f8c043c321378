"""The deployments the render tests use, each with the options it is rendered with."""

from __future__ import annotations

from pathlib import Path

import pytest

from infergraph.graph.spec import Deployment, load_documents
from infergraph.kube.options import RenderOptions

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "kube"
MANIFESTS = Path(__file__).parents[1] / "manifests"

# A fixed version, so that a release does not change every golden file.
VERSION = "0.0.0-test"

CASES = [
    # (id, file, options)
    ("bandit", ROOT / "examples" / "bandit" / "deployment.yaml", {}),
    ("abtest", MANIFESTS / "seldon-abtest.yaml", {}),
    ("combiner", MANIFESTS / "seldon-combiner.yaml", {}),
    ("v1alpha2", MANIFESTS / "seldon-v1alpha2.yaml", {}),
    ("full-separate-engine", MANIFESTS / "graph-deployment.yaml", {}),
    ("sklearn-model-uri", FIXTURES / "sklearn-model-uri.yaml", {}),
    (
        "sklearn-namespace-prefix",
        FIXTURES / "sklearn-model-uri.yaml",
        {"namespace": "staging", "image_prefix": "ghcr.io/acme/"},
    ),
    ("hpa-v2beta1", FIXTURES / "hpa-v2beta1.yaml", {}),
    ("keda", FIXTURES / "keda.yaml", {}),
    ("long-names-no-engine", FIXTURES / "long-names.yaml", {}),
    ("pvc-grpc-shadow", FIXTURES / "pvc-model.yaml", {}),
    ("canary-shadow-router", MANIFESTS / "seldon-canary-shadow.yaml", {}),
    ("canary-shadow-istio", MANIFESTS / "seldon-canary-shadow.yaml", {"ingress": "istio"}),
    (
        "canary-shadow-gateway-api",
        MANIFESTS / "seldon-canary-shadow.yaml",
        {"ingress": "gateway-api"},
    ),
]


def options(**changes: object) -> RenderOptions:
    return RenderOptions(version=VERSION, **changes)  # type: ignore[arg-type]


def deployment(path: Path) -> Deployment:
    (only,) = load_documents(path)
    return only


def params() -> list[object]:
    return [pytest.param(path, changes, id=case) for case, path, changes in CASES]
