"""The GraphDeployment CRD: generated from the spec models, structural, small, and in sync.

What an API server would say about the CRD is approximated offline in two ways: the CRD object
validates against Kubernetes' own schema of CustomResourceDefinition (kubernetes-validate,
strict, 1.28 to 1.33), and :func:`_structural_problems` checks the rules of a structural
schema that the API server enforces and that schema does not express.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import create_model

from infergraph.cli.main import main
from infergraph.graph.spec.kube_types import IntOrString, KubeModel, KubeObject, SpecModel
from infergraph.kube.crd import (
    GRAPH_DEPLOYMENT,
    SELDON_DEPLOYMENT,
    CrdNames,
    crd,
    crd_yaml,
    openapi_schema,
)
from infergraph.kube.structural import (
    DEFAULT_MAX_DEPTH,
    INT_OR_STRING,
    PRESERVE,
    UnsupportedSchema,
    forbid_unknown_fields,
    structural,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSIONS = ["1.28", "1.29", "1.30", "1.31", "1.32", "1.33"]
CHECKED_IN = [
    pytest.param(GRAPH_DEPLOYMENT, DEPLOY / "crd.yaml", id="graphdeployments"),
    pytest.param(SELDON_DEPLOYMENT, DEPLOY / "seldondeployments-crd.yaml", id="seldondeployments"),
]


def _walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")


def _structural_problems(schema: dict[str, Any]) -> list[str]:
    """The API server's structural-schema rules that matter for a generated schema."""
    problems = []
    for path, node in _walk(schema):
        where = path or "<root>"
        for key in ("$ref", "$defs", "definitions", "title", "default", "examples", "const"):
            if key in node:
                problems.append(f"{where}: {key}")
        if "type" not in node and not node.get(PRESERVE) and not node.get(INT_OR_STRING):
            problems.append(f"{where}: no type")
        if node.get(INT_OR_STRING):
            if node.get("anyOf") != [{"type": "integer"}, {"type": "string"}]:
                problems.append(f"{where}: int-or-string with another anyOf")
        elif any(key in node for key in ("anyOf", "allOf", "oneOf", "not")):
            problems.append(f"{where}: a logical junctor outside int-or-string")
        extra = node.get("additionalProperties")
        if extra is not None and ("properties" in node or not isinstance(extra, dict)):
            problems.append(f"{where}: additionalProperties {extra!r}")
        if node.get("x-kubernetes-list-type") == "map":
            keys = node.get("x-kubernetes-list-map-keys", [])
            required = node["items"].get("required", [])
            problems += [
                f"{where}: list-map key {k} not required" for k in keys if k not in required
            ]
    return problems


def test_the_crd_names_the_resource() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "graphdeployments.infergraph.io"
    assert spec["group"] == "infergraph.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "GraphDeployment",
        "listKind": "GraphDeploymentList",
        "plural": "graphdeployments",
        "singular": "graphdeployment",
        "shortNames": ["gdep"],
        "categories": ["infergraph"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)


def test_status_and_scale_subresources() -> None:
    (version,) = crd()["spec"]["versions"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    properties = version["schema"]["openAPIV3Schema"]["properties"]
    assert properties["spec"]["properties"]["replicas"]["type"] == "integer"
    assert properties["status"]["properties"]["replicas"]["type"] == "integer"
    assert properties["status"]["properties"]["selector"]["type"] == "string"


def test_printer_columns() -> None:
    (version,) = crd()["spec"]["versions"]
    columns = {c["name"]: (c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]}
    assert columns == {
        "State": ("string", ".status.state"),
        "Replicas": ("integer", ".status.replicas"),
        "Address": ("string", ".status.address.url"),
        "Age": ("date", ".metadata.creationTimestamp"),
    }
    schema = openapi_schema()
    assert schema["properties"]["status"]["properties"]["address"]["properties"]["url"]


def test_the_schema_is_structural() -> None:
    assert _structural_problems(openapi_schema()) == []


def test_metadata_is_left_to_the_api_server() -> None:
    assert openapi_schema()["properties"]["metadata"] == {"type": "object"}


def test_unknown_fields_are_kept_only_inside_kubernetes_objects() -> None:
    preserved = sorted(
        path
        for path, node in _walk(openapi_schema())
        if node.get(PRESERVE) and "Deeper than" not in node.get("description", "")
    )
    predictor = ".spec.predictors[]"
    component = f"{predictor}.componentSpecs[]"
    container = f"{component}.spec.containers[]"
    explainer = f"{predictor}.explainer.containerSpec"
    assert preserved == sorted(
        [
            f"{component}.hpaSpec.metrics[]",
            f"{component}.hpaSpec.metricsv2[]",
            f"{component}.kedaSpec.advanced",
            f"{component}.kedaSpec.fallback",
            f"{component}.kedaSpec.triggers[]",
            f"{component}.metadata",
            f"{component}.spec",
            container,
            f"{container}.env[]",
            f"{container}.env[].valueFrom",
            f"{container}.ports[]",
            f"{container}.resources",
            explainer,
            f"{explainer}.env[]",
            f"{explainer}.env[].valueFrom",
            f"{explainer}.ports[]",
            f"{explainer}.resources",
            f"{predictor}.engineResources",
            f"{predictor}.svcOrchSpec.env[]",
            f"{predictor}.svcOrchSpec.env[].valueFrom",
            f"{predictor}.svcOrchSpec.resources",
        ]
    )


def test_the_graph_is_unrolled_then_kept_as_written() -> None:
    node = openapi_schema()["properties"]["spec"]["properties"]["predictors"]["items"]
    node = node["properties"]["graph"]
    depth = 1
    while "properties" in node:
        assert node["required"] == ["name"]
        assert node["properties"]["type"]["enum"][0] == "UNKNOWN_TYPE"
        node = node["properties"]["children"]["items"]
        depth += 1
    assert depth == DEFAULT_MAX_DEPTH + 1
    assert node[PRESERVE] is True and node["type"] == "object"


def test_the_schema_carries_the_models_rules() -> None:
    spec = openapi_schema()["properties"]["spec"]
    assert spec["required"] == ["predictors"]
    assert spec["properties"]["predictors"]["minItems"] == 1
    assert spec["properties"]["protocol"]["enum"] == ["seldon", "tensorflow", "kfserving", "v2"]
    assert spec["properties"]["transport"]["nullable"] is True
    predictor = spec["properties"]["predictors"]["items"]
    assert predictor["required"] == ["name", "graph"]
    component = predictor["properties"]["componentSpecs"]["items"]["properties"]
    assert component["pdbSpec"]["properties"]["minAvailable"] == {
        INT_OR_STRING: True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "nullable": True,
    }
    assert component["hpaSpec"]["required"] == ["maxReplicas"]
    assert component["replicas"] == {"type": "integer", "minimum": 0, "nullable": True}
    endpoint = predictor["properties"]["graph"]["properties"]["endpoint"]["properties"]
    assert {"service_host", "service_port", "httpPort", "grpcPort", "type"} == set(endpoint)


def test_status_schema() -> None:
    status = openapi_schema()["properties"]["status"]["properties"]
    assert status["state"]["enum"] == ["Creating", "Available", "Failed"]
    assert status["observedGeneration"]["minimum"] == 0
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    condition = conditions["items"]
    assert sorted(condition["required"]) == [
        "lastTransitionTime",
        "message",
        "reason",
        "status",
        "type",
    ]
    assert set(condition["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert condition["properties"]["lastTransitionTime"]["format"] == "date-time"
    deployments = status["deploymentStatus"]["additionalProperties"]["properties"]
    assert {"name", "status", "replicas", "availableReplicas"} <= set(deployments)
    services = status["serviceStatus"]["additionalProperties"]["properties"]
    assert {"svcName", "httpEndpoint", "grpcEndpoint"} <= set(services)


def test_no_defaults_reach_the_crd() -> None:
    assert [path for path, node in _walk(openapi_schema()) if "default" in node] == []
    assert "\n default:" not in crd_yaml().replace(" ", "").replace("\n", "\n ")


@pytest.mark.parametrize(
    ("names", "limit"),
    [
        pytest.param(GRAPH_DEPLOYMENT, 100_000, id="graphdeployments"),
        pytest.param(SELDON_DEPLOYMENT, 300_000, id="seldondeployments-three-versions"),
    ],
)
def test_the_crd_is_small(names: CrdNames, limit: int) -> None:
    """Client-side ``kubectl apply`` stores the whole object in an annotation of at most
    256 KiB; Seldon's 1.9 MB CRD needed --server-side."""
    size = len(crd_yaml(names).encode())
    assert size < limit, size
    assert len(json.dumps(crd(names))) < 256 * 1024


@pytest.mark.parametrize(("names", "path"), CHECKED_IN)
def test_checked_in_crd_is_in_sync(names: CrdNames, path: Path) -> None:
    assert path.read_text() == crd_yaml(names), (
        f"{path.relative_to(ROOT)} is out of date: run "
        f"infergraph crd{'' if names == GRAPH_DEPLOYMENT else ' --kind ' + names.kind} > "
        f"{path.relative_to(ROOT)}"
    )


@pytest.mark.parametrize(("names", "path"), CHECKED_IN)
def test_checked_in_crd_parses_back(names: CrdNames, path: Path) -> None:
    assert yaml.safe_load(path.read_text()) == crd(names)


def test_crd_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == crd_yaml()
    assert main(["crd", "--kind", "SeldonDeployment"]) == 0
    assert capsys.readouterr().out == crd_yaml(SELDON_DEPLOYMENT)


def test_crd_command_rejects_other_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["crd", "--kind", "Deployment"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_seldon_crd_serves_seldons_versions() -> None:
    spec = crd(SELDON_DEPLOYMENT)["spec"]
    assert spec["group"] == "machinelearning.seldon.io"
    assert spec["names"]["shortNames"] == ["sdep"]
    assert [(v["name"], v["storage"]) for v in spec["versions"]] == [
        ("v1", True),
        ("v1alpha2", False),
        ("v1alpha3", False),
    ]
    schemas = [v["schema"]["openAPIV3Schema"] for v in spec["versions"]]
    assert schemas[0] == schemas[1] == schemas[2] == openapi_schema()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("names", "path"), CHECKED_IN)
def test_crd_validates_as_a_customresourcedefinition(
    names: CrdNames, path: Path, version: str
) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    document = yaml.safe_load(path.read_text())
    kubernetes_validate.validate(document, version, strict=True)


def _misspelt_scale(document: dict[str, Any]) -> None:
    document["spec"]["versions"][0]["subresources"]["scale"]["specReplicaPath"] = ".spec.x"


def _pydantic_examples(document: dict[str, Any]) -> None:
    schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["replicas"]["examples"] = [1]


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(_misspelt_scale, id="misspelt-subresource-key"),
        pytest.param(_pydantic_examples, id="json-schema-keyword-deep-in-the-schema"),
    ],
)
def test_a_broken_crd_is_caught_by_kubernetes_validate(breakage: Any) -> None:
    """The check above can fail, down to the nested schema."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    document = crd()
    breakage(document)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, "1.30", strict=True)


# -- the converter on its own


def _defs(**defs: Any) -> dict[str, Any]:
    return {"$defs": defs}


def test_structural_resolves_references_and_keeps_the_fields_description() -> None:
    inner = {
        "type": "object",
        "description": "Model ``doc``.",
        "properties": {"a": {"type": "string", "title": "A"}},
        "additionalProperties": False,
    }
    schema = {
        **_defs(Inner=inner),
        "type": "object",
        "properties": {
            "plain": {"$ref": "#/$defs/Inner"},
            "own": {"$ref": "#/$defs/Inner", "description": "Field\n   doc."},
        },
    }
    a = {"a": {"type": "string"}}
    assert structural(schema) == {
        "type": "object",
        "properties": {
            "plain": {"type": "object", "description": "Model doc.", "properties": a},
            "own": {"type": "object", "description": "Field doc.", "properties": a},
        },
    }


def test_structural_turns_a_null_branch_into_nullable() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}], "default": None}
        },
    }
    out = structural(schema)["properties"]["n"]
    assert out == {"type": "integer", "minimum": 0, "nullable": True}


def test_structural_maps_dicts_and_extra_allow() -> None:
    schema = {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "anything": {"type": "object", "additionalProperties": True},
            "kept": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": True,
            },
            "closed": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            },
        },
    }
    out = structural(schema)["properties"]
    assert out["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert out["anything"] == {"type": "object", PRESERVE: True}
    assert out["kept"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        PRESERVE: True,
    }
    assert out["closed"] == {"type": "object", "properties": {"name": {"type": "string"}}}


def test_structural_cuts_recursion_at_max_depth() -> None:
    node = {
        "type": "object",
        "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
        },
    }
    out = structural({**_defs(Node=node), "$ref": "#/$defs/Node"}, max_depth=2)
    second = out["properties"]["children"]["items"]
    third = second["properties"]["children"]["items"]
    assert "properties" in second
    assert third["type"] == "object" and third[PRESERVE] is True


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        pytest.param(
            {
                "type": "object",
                "properties": {"u": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}},
            },
            ".u: a union of 2 types",
            id="union",
        ),
        pytest.param(
            {"type": "object", "properties": {"r": {"$ref": "#/$defs/Missing"}}},
            ".r: unknown $ref",
            id="dangling-ref",
        ),
        pytest.param(
            {"type": "object", "properties": {"x": {"description": "no type"}}},
            ".x: a schema without a type",
            id="untyped",
        ),
        pytest.param(
            {"type": "object", "properties": {"x": {"type": "string", "patternProperties": {}}}},
            ".x: unsupported keyword 'patternProperties'",
            id="unknown-keyword",
        ),
    ],
)
def test_structural_refuses_what_a_crd_cannot_say(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedSchema, match=message.replace("$", r"\$")):
        structural(schema)


def test_structural_does_not_change_its_argument() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    }
    copy = yaml.safe_load(yaml.safe_dump(schema))
    structural(schema)
    assert schema == copy


def test_forbid_unknown_fields_closes_only_listed_objects() -> None:
    schema = forbid_unknown_fields(openapi_schema())
    assert schema["additionalProperties"] is False
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    component = spec["properties"]["predictors"]["items"]["properties"]["componentSpecs"]["items"]
    assert "additionalProperties" not in component["properties"]["spec"]
    labels = spec["properties"]["annotations"]
    assert labels["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in openapi_schema()["properties"]["spec"]


# -- a property: any model built from what the spec uses converts to a structural schema

_LEAVES: list[Any] = [int, str, bool, IntOrString, KubeObject, dict[str, str]]


def _annotations() -> Any:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    counter = iter(range(10**9))

    def model(fields: list[Any], keeps_unknown: bool) -> Any:
        base = KubeModel if keeps_unknown else SpecModel
        spec = {f"f{i}": (annotation, None) for i, annotation in enumerate(fields)}
        return create_model(f"M{next(counter)}", __base__=base, **spec)

    def extend(children: Any) -> Any:
        return st.one_of(
            children.map(lambda t: t | None),
            children.map(lambda t: list[t]),
            children.map(lambda t: dict[str, t]),
            st.builds(model, st.lists(children, min_size=1, max_size=3), st.booleans()),
        )

    return st.recursive(st.sampled_from(_LEAVES), extend, max_leaves=8)


def test_structural_output_for_any_spec_like_model() -> None:
    hypothesis = pytest.importorskip("hypothesis")

    @hypothesis.settings(max_examples=60, deadline=None, database=None)
    @hypothesis.given(_annotations())
    def check(annotation: Any) -> None:
        root = create_model("Root", __base__=SpecModel, field=(annotation, None))
        schema = structural(root.model_json_schema(by_alias=True))
        assert _structural_problems(schema) == []

    check()
