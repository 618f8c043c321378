"""Every example resource passes the generated CRD's schema, and a bad one fails by field.

The CRD schema and pydantic are two renderings of the same models, so they must agree: a
manifest ``infergraph validate`` accepts passes the schema (the examples, the test manifests,
every ``yaml`` block in the docs), and type mistakes fail both. Resources are checked with
``openapi_schema_validator``'s OpenAPI 3.0 validator against the ``openAPIV3Schema`` of
``deploy/crd.yaml``, closed with :func:`forbid_unknown_fields` so that unknown fields fail as
they do under kubectl's strict field validation. SeldonDeployments are checked through their
``spec``, which is the same schema.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from infergraph.graph.spec import SpecError, load_documents
from infergraph.kube.status_schema import (
    Address,
    Condition,
    ConditionStatus,
    ConditionType,
    DeploymentState,
    GraphDeploymentStatus,
)
from infergraph.kube.structural import DEFAULT_MAX_DEPTH, forbid_unknown_fields

openapi_schema_validator = pytest.importorskip("openapi_schema_validator")

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"GraphDeployment", "SeldonDeployment"}
_YAML_BLOCK = re.compile(r"^ *```yaml\n(.*?)^ *```", re.DOTALL | re.MULTILINE)  # in lists too


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "deploy" / "crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return forbid_unknown_fields(version["schema"]["openAPIV3Schema"])


SCHEMA = _schema()
VALIDATOR = openapi_schema_validator.OAS30Validator(SCHEMA)
SPEC_VALIDATOR = openapi_schema_validator.OAS30Validator(SCHEMA["properties"]["spec"])


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """Every problem the CRD schema finds, as ``field.path: message``."""
    if resource.get("kind") == "SeldonDeployment":
        errors = SPEC_VALIDATOR.iter_errors(resource.get("spec"))
        prefix: tuple[str, ...] = ("spec",)
    else:
        errors = VALIDATOR.iter_errors(resource)
        prefix = ()
    return sorted(f"{_path((*prefix, *e.absolute_path))}: {e.message}" for e in errors)


def _resources(path: Path, text: str | None = None) -> Iterator[dict[str, Any]]:
    for document in yaml.safe_load_all(path.read_text() if text is None else text):
        if isinstance(document, dict) and document.get("kind") in KINDS:
            yield document


def _valid_files() -> list[Any]:
    files = sorted((ROOT / "examples").glob("*/deployment.yaml"))
    files += sorted((ROOT / "tests" / "manifests").glob("*.yaml"))
    return [
        pytest.param(path, resource, id=f"{path.relative_to(ROOT)}#{index}")
        for path in files
        for index, resource in enumerate(_resources(path))
    ]


def _doc_blocks() -> list[Any]:
    params = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        for number, block in enumerate(_YAML_BLOCK.findall(path.read_text())):
            try:
                documents = list(yaml.safe_load_all(textwrap.dedent(block)))
            except yaml.YAMLError:
                continue  # a fragment with placeholders; not a resource
            # a block the docs show as a mistake (``# bad.yaml: ...``) must fail the schema too
            valid = not textwrap.dedent(block).startswith("# bad")
            for index, document in enumerate(documents):
                if isinstance(document, dict) and document.get("kind") in KINDS:
                    params.append(
                        pytest.param(
                            document, valid, id=f"{path.relative_to(ROOT)}#block{number}.{index}"
                        )
                    )
    return params


VALID_FILES = _valid_files()
DOC_RESOURCES = _doc_blocks()


def test_there_is_something_to_check() -> None:
    assert len(VALID_FILES) >= 10
    assert any("kubernetes.md" in p.id for p in DOC_RESOURCES)
    assert any("servers.md" in p.id for p in DOC_RESOURCES)


@pytest.mark.parametrize(("path", "resource"), VALID_FILES)
def test_example_manifests_pass_the_crd_schema(path: Path, resource: dict[str, Any]) -> None:
    assert schema_errors(resource) == []


@pytest.mark.parametrize(("resource", "valid"), DOC_RESOURCES)
def test_doc_resources_pass_the_crd_schema(resource: dict[str, Any], valid: bool) -> None:
    if not valid:  # the docs' example of a mistake: the schema and infergraph both refuse it
        assert schema_errors(resource) != []
        with pytest.raises(SpecError):
            load_documents(yaml.safe_dump(resource))
        return
    assert schema_errors(resource) == []
    load_documents(yaml.safe_dump(resource))  # and infergraph itself agrees


def test_a_seldondeployment_passes_as_a_graphdeployment() -> None:
    """The spec is the same; only apiVersion and kind differ."""
    path = ROOT / "examples" / "bandit" / "deployment.yaml"
    (resource,) = _resources(path)
    resource = {**resource, "apiVersion": "infergraph.io/v1", "kind": "GraphDeployment"}
    assert schema_errors(resource) == []


def test_status_as_the_operator_writes_it_passes() -> None:
    resource = _minimal()
    resource["status"] = {
        "state": "Available",
        "description": "",
        "observedGeneration": 3,
        "replicas": 2,
        "selector": "seldon-deployment-id=iris,app=iris-default-0-classifier",
        "address": {
            "url": "http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions"
        },
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Available",
                "message": "",
                "lastTransitionTime": "2026-12-02T07:00:00Z",
                "observedGeneration": 3,
            }
        ],
        "deploymentStatus": {
            "iris-default-0-classifier": {
                "name": "iris-default-0-classifier",
                "status": "Available",
                "replicas": 2,
                "availableReplicas": 2,
            }
        },
        "serviceStatus": {
            "iris-default": {
                "svcName": "iris-default",
                "httpEndpoint": "iris-default.models:8000",
                "grpcEndpoint": "iris-default.models:5001",
            }
        },
    }
    assert schema_errors(resource) == []


def _minimal() -> dict[str, Any]:
    return {
        "apiVersion": "infergraph.io/v1",
        "kind": "GraphDeployment",
        "metadata": {"name": "iris", "namespace": "models", "generation": 3},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "graph": {
                        "name": "classifier",
                        "implementation": "SKLEARN_SERVER",
                        "modelUri": "gs://bucket/iris",
                    },
                }
            ]
        },
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    """The minimal resource with ``value`` set at the dotted ``path`` (``[0]`` for lists)."""
    resource = _minimal()
    keys: list[Any] = [int(k) if k.isdigit() else k for k in re.split(r"\.|\[|\]\.?", path) if k]
    target: Any = resource
    for key in keys[:-1]:
        if isinstance(key, str) and key not in target:
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value
    return resource


PREDICTOR = "spec.predictors[0]"
GRAPH = f"{PREDICTOR}.graph"
BAD = [
    pytest.param(
        "spec.replicas",
        "two",
        "spec.replicas: 'two' is not of type 'integer'",
        id="replicas-string",
    ),
    pytest.param(
        "spec.replicas",
        -1,
        "spec.replicas: -1 is less than the minimum of 0",
        id="replicas-negative",
    ),
    pytest.param(
        "spec.protocol", "http", "spec.protocol: 'http' is not one of", id="protocol-enum"
    ),
    pytest.param(
        "spec.predictors", [], "spec.predictors: [] should be non-empty", id="no-predictors"
    ),
    pytest.param(
        f"{PREDICTOR}.traffic",
        "50",
        f"{PREDICTOR}.traffic: '50' is not of type 'integer'",
        id="traffic-string",
    ),
    pytest.param(
        f"{PREDICTOR}.shadow",
        "yes",
        f"{PREDICTOR}.shadow: 'yes' is not of type 'boolean'",
        id="shadow-string",
    ),
    pytest.param(
        f"{PREDICTOR}.labels",
        {"tier": 1},
        f"{PREDICTOR}.labels.tier: 1 is not of type 'string'",
        id="label-number",
    ),
    pytest.param(
        f"{GRAPH}.type", "MODLE", f"{GRAPH}.type: 'MODLE' is not one of", id="node-type-enum"
    ),
    pytest.param(
        f"{GRAPH}.modelURI",
        "gs://x",
        f"{GRAPH}: Additional properties are not allowed ('modelURI' was unexpected)",
        id="unknown-node-field",
    ),
    pytest.param(
        "spec.predictorz",
        [],
        "spec: Additional properties are not allowed ('predictorz' was unexpected)",
        id="unknown-spec-field",
    ),
    pytest.param(
        f"{GRAPH}.parameters",
        [{"name": "t", "value": 0.5, "type": "FLOAT"}],
        f"{GRAPH}.parameters[0].value: 0.5 is not of type 'string'",
        id="parameter-unquoted",
    ),
    pytest.param(
        f"{GRAPH}.parameters",
        [{"name": "t", "value": "1"}],
        f"{GRAPH}.parameters[0]: 'type' is a required property",
        id="parameter-no-type",
    ),
    pytest.param(
        f"{GRAPH}.children",
        [{"type": "MODEL"}],
        f"{GRAPH}.children[0]: 'name' is a required property",
        id="child-no-name",
    ),
    pytest.param(
        f"{GRAPH}.endpoint",
        {"service_port": 70000},
        f"{GRAPH}.endpoint.service_port: 70000 is greater than the maximum of 65535",
        id="port-range",
    ),
    pytest.param(
        f"{GRAPH}.logger",
        {"mode": "everything"},
        f"{GRAPH}.logger.mode: 'everything' is not one of",
        id="logger-mode",
    ),
    pytest.param(
        f"{PREDICTOR}.componentSpecs",
        [{"hpaSpec": {"minReplicas": 1}}],
        f"{PREDICTOR}.componentSpecs[0].hpaSpec: 'maxReplicas' is a required property",
        id="hpa-no-max",
    ),
    pytest.param(
        f"{PREDICTOR}.componentSpecs",
        [{"pdbSpec": {"minAvailable": True}}],
        f"{PREDICTOR}.componentSpecs[0].pdbSpec.minAvailable: True is not valid under any",
        id="pdb-bool",
    ),
    pytest.param(
        f"{PREDICTOR}.componentSpecs",
        [{"spec": {"containers": [{"image": "x"}]}}],
        f"{PREDICTOR}.componentSpecs[0].spec.containers[0]: 'name' is a required property",
        id="container-no-name",
    ),
    pytest.param(
        f"{PREDICTOR}.componentSpecs",
        [{"kedaSpec": {"maxReplicaCount": 3}}],
        f"{PREDICTOR}.componentSpecs[0].kedaSpec: 'triggers' is a required property",
        id="keda-no-triggers",
    ),
    pytest.param("status.state", "Ready", "status.state: 'Ready' is not one of", id="status-state"),
    pytest.param(
        "status.conditions",
        [
            {
                "type": "Ready",
                "status": "Maybe",
                "reason": "X",
                "message": "",
                "lastTransitionTime": "2026-12-02T07:00:00Z",
            }
        ],
        "status.conditions[0].status: 'Maybe' is not one of",
        id="condition-status",
    ),
    pytest.param(
        "status.conditions",
        [
            {
                "type": "Ready",
                "status": "True",
                "reason": "not camel",
                "message": "",
                "lastTransitionTime": "2026-12-02T07:00:00Z",
            }
        ],
        "status.conditions[0].reason: 'not camel' does not match",
        id="condition-reason",
    ),
    pytest.param(
        "status.conditions",
        [{"type": "Ready", "status": "True"}],
        "status.conditions[0]: 'lastTransitionTime' is a required property",
        id="condition-incomplete",
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD)
def test_a_bad_resource_fails_naming_the_field(path: str, value: Any, expected: str) -> None:
    errors = schema_errors(_with(path, value))
    assert any(error.startswith(expected) for error in errors), errors


# pydantic's lax mode turns "50" into 50 and "yes" into True; the API server does not. The
# status is not the user's to write, so pydantic ignores it.
LAX_IN_PYDANTIC = {"traffic-string", "shadow-string"}
SPEC_ONLY = [
    p for p in BAD if not p.id.startswith(("status", "condition")) and p.id not in LAX_IN_PYDANTIC
]


@pytest.mark.parametrize(("path", "value", "expected"), SPEC_ONLY)
def test_infergraph_rejects_the_same_resources(path: str, value: Any, expected: str) -> None:
    """pydantic (``infergraph validate``) refuses what the CRD schema refuses."""
    with pytest.raises(SpecError):
        load_documents(yaml.safe_dump(_with(path, value)))


def test_embedded_kubernetes_objects_keep_unknown_fields() -> None:
    resource = _with(
        f"{PREDICTOR}.componentSpecs",
        [
            {
                "metadata": {"name": "front", "finalizers": ["x"]},
                "spec": {
                    "nodeSelector": {"pool": "gpu"},
                    "containers": [
                        {
                            "name": "classifier",
                            "image": "x",
                            "readinessProbe": {"tcpSocket": {"port": 9000}},
                        }
                    ],
                },
                "hpaSpec": {
                    "maxReplicas": 3,
                    "metricsv2": [{"type": "Pods", "pods": {"any": "thing"}}],
                },
            }
        ],
    )
    assert schema_errors(resource) == []


def test_invalid_test_manifest_fails_by_field() -> None:
    (resource,) = _resources(ROOT / "tests" / "manifests" / "invalid" / "bad-types.yaml")
    errors = schema_errors(resource)
    graph = "spec.predictors[0].graph"
    assert any(e.startswith(f"{graph}.type: 'MODLE' is not one of") for e in errors), errors
    assert any("'modelURI' was unexpected" in e for e in errors), errors
    assert any(e.startswith(f"{graph}.parameters[0].value: 0.5 is not of type") for e in errors)


def test_a_deep_graph_is_accepted_below_the_unrolled_levels() -> None:
    node: dict[str, Any] = {"name": "leaf", "modelURI": "kept as written"}
    for level in range(12):
        node = {"name": f"n{level}", "type": "MODEL", "children": [node]}
    resource = _with(GRAPH, node)
    assert schema_errors(resource) == []


@pytest.mark.parametrize("depth", [1, 2, 5, 8, 9, 12])
def test_the_api_server_checks_nodes_down_to_the_unrolled_depth(depth: int) -> None:
    """A misspelt node type at ``depth`` fails while the schema spells that level out."""
    node: dict[str, Any] = {"name": f"n{depth}", "type": "MODLE"}
    for level in range(depth - 1, 0, -1):
        node = {"name": f"n{level}", "type": "MODEL", "children": [node]}
    errors = schema_errors(_with(GRAPH, node))
    checked = depth <= DEFAULT_MAX_DEPTH
    assert any("'MODLE' is not one of" in error for error in errors) is checked, errors


def test_status_written_from_the_model_passes_and_reads_back() -> None:
    """The operator builds status with the pydantic model; the schema takes its JSON."""
    status = GraphDeploymentStatus(
        state=DeploymentState.FAILED,
        description="Deployment is no longer progressing and not available.",
        observed_generation=4,
        conditions=[
            Condition(
                type=ConditionType.READY,
                status=ConditionStatus.FALSE,
                reason="ProgressDeadlineExceeded",
                message="iris-default-0-classifier: 0 of 2 replicas available",
                last_transition_time=datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
                observed_generation=4,
            )
        ],
        address=Address(
            url="http://iris-default.models.svc.cluster.local:8000/api/v1.0/predictions"
        ),
        replicas=0,
    )
    written = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    resource = {**_minimal(), "status": written}
    assert schema_errors(resource) == []
    assert written["conditions"][0]["lastTransitionTime"] == "2026-12-02T07:00:00Z"
    assert GraphDeploymentStatus.model_validate(written) == status
