"""The deployment spec: loading YAML, round trips, the JSON schema, and Seldon's defaulting."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from infergraph.graph.spec import (
    SpecError,
    SpecUnreadable,
    load_deployments,
    load_documents,
    read_documents,
    validate,
)
from infergraph.graph.spec.defaults import PortBases, default, service_name
from infergraph.graph.spec.models import (
    Deployment,
    GraphDeployment,
    Implementation,
    PredictiveUnitType,
    SeldonDeployment,
    is_prepackaged,
)

MANIFESTS = Path(__file__).parents[1] / "manifests"
VALID = sorted(MANIFESTS.glob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _dump(deployment: Deployment) -> dict[str, Any]:
    return deployment.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _one(text: str) -> Deployment:
    (deployment,) = load_documents(text)
    return deployment


# --- loading and round trips -------------------------------------------------------------


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in VALID])
def test_valid_manifest_round_trips_unchanged(path: Path) -> None:
    deployments = load_documents(path)
    assert [_dump(d) for d in deployments] == _documents(path)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in VALID])
def test_valid_manifest_has_no_problems(path: Path) -> None:
    for deployment in load_documents(path):
        assert validate(deployment) == []
        assert validate(default(deployment)) == []


@pytest.mark.parametrize(
    ("name", "cls", "version"),
    [
        pytest.param("seldon-transformer-model", SeldonDeployment, "v1", id="v1"),
        pytest.param("seldon-v1alpha2", SeldonDeployment, "v1alpha2", id="v1alpha2"),
        pytest.param("seldon-v1alpha3", SeldonDeployment, "v1alpha3", id="v1alpha3"),
        pytest.param("graph-deployment", GraphDeployment, "v1", id="graph-deployment"),
    ],
)
def test_kinds_and_api_versions(name: str, cls: type, version: str) -> None:
    (deployment,) = load_documents(MANIFESTS / f"{name}.yaml")
    assert isinstance(deployment, cls)
    assert deployment.api_version.endswith("/" + version)


def test_transformer_then_model_graph() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-transformer-model.yaml")
    predictor = deployment.spec.predictors[0]
    assert predictor.graph.type == PredictiveUnitType.TRANSFORMER
    assert predictor.graph.children[0].name == "classifier"
    assert predictor.graph.children[0].parameters[0].value == "0.7"
    container = predictor.container("classifier")
    assert container is not None and container.resources == {
        "requests": {"cpu": "500m", "memory": "1Gi"}
    }


def test_multi_document_file_skips_empty_documents() -> None:
    documents = read_documents(MANIFESTS / "multi-document.yaml")
    assert [d.deployment.metadata.name for d in documents] == ["first", "second"]
    assert [d.document for d in documents] == [0, 2]
    assert isinstance(documents[1].deployment, GraphDeployment)


def test_kubernetes_objects_keep_unknown_fields() -> None:
    (deployment,) = load_documents(MANIFESTS / "graph-deployment.yaml")
    component = deployment.spec.predictors[0].component_specs[0]
    assert component.spec.model_extra == {
        "serviceAccountName": "models",
        "nodeSelector": {"pool": "cpu"},
        "terminationGracePeriodSeconds": 20,
        "volumes": [{"name": "cache", "emptyDir": {}}],
    }
    container = component.spec.containers[0]
    assert container.model_extra is not None and "livenessProbe" in container.model_extra


def test_other_kinds_are_problems_naming_the_document() -> None:
    text = (
        (MANIFESTS / "seldon-abtest.yaml").read_text()
        + "---\n"
        + (MANIFESTS / "invalid" / "wrong-kind.yaml").read_text()
    )
    with pytest.raises(SpecError) as caught:
        load_documents(text)
    (problem,) = caught.value.problems
    assert (problem.path, problem.document) == ("kind", 1)
    assert "document 1 is a Service (v1)" in problem.message
    assert problem.line == text.splitlines().index("kind: Service") + 1
    assert [d.metadata.name for d in load_documents(text, skip_other_kinds=True)] == ["abtest"]


def test_a_kubectl_list_stands_for_its_items() -> None:
    item = _documents(MANIFESTS / "seldon-abtest.yaml")[0]
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [item, item]})
    assert len(load_documents(text)) == 2
    item["spec"]["protocol"] = "soap"
    with pytest.raises(SpecError) as caught:
        load_documents(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [item]}))
    assert [p.path for p in caught.value.problems] == ["items[0].spec.protocol"]


def test_kubectl_output_with_status_and_server_metadata_loads() -> None:
    doc = _documents(MANIFESTS / "seldon-abtest.yaml")[0]
    doc["metadata"].update(uid="1234", resourceVersion="99", generation=2)
    doc["status"] = {"state": "Available", "replicas": 1}
    deployment = _one(yaml.safe_dump(doc))
    assert deployment.status == {"state": "Available", "replicas": 1}


def test_yaml_syntax_error_has_file_line_and_column() -> None:
    path = MANIFESTS / "invalid" / "bad-yaml.yaml"
    with pytest.raises(SpecUnreadable) as caught:
        load_documents(path)
    assert (caught.value.line, caught.value.column) == (5, 8)
    assert str(caught.value).startswith(f"{path}:5:8: YAML syntax error")


def test_missing_file_is_unreadable() -> None:
    with pytest.raises(SpecUnreadable, match="no such file"):
        load_documents(MANIFESTS / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("- a\n- b\n", "document 0 is a list", id="list"),
        pytest.param("hello\n", "document 0 is the scalar 'hello'", id="scalar"),
        pytest.param("apiVersion: v1\nmetadata: {}\n", "document 0 has no kind", id="no-kind"),
    ],
)
def test_documents_that_are_not_resources(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_documents(text)
    assert message in caught.value.problems[0].message


def test_duplicate_yaml_keys_are_reported() -> None:
    text = (
        (MANIFESTS / "seldon-abtest.yaml")
        .read_text()
        .replace("  name: abtest\n", "  name: abtest\n  name: again\n")
    )
    with pytest.raises(SpecError) as caught:
        load_documents(text)
    (problem,) = caught.value.problems
    assert problem.path == "metadata.name"
    assert "appears twice" in problem.message


def test_load_deployments_validates_then_defaults() -> None:
    (deployment,) = load_deployments(MANIFESTS / "seldon-abtest.yaml")
    assert deployment.spec.predictors[0].labels == {"version": "default"}
    with pytest.raises(SpecError, match="must sum to 100"):
        load_deployments(MANIFESTS / "invalid" / "bad-rules.yaml")
    with pytest.raises(SpecError, match="no SeldonDeployment or GraphDeployment"):
        load_deployments(MANIFESTS / "invalid" / "wrong-kind.yaml", skip_other_kinds=True)


# --- the models and the schema -----------------------------------------------------------


def test_json_schema_uses_seldon_field_names() -> None:
    schema = GraphDeployment.model_json_schema()
    defs = schema["$defs"]
    assert list(schema["properties"])[:4] == ["apiVersion", "kind", "metadata", "spec"]
    assert {"oauth_key", "oauth_secret", "serverType"} <= set(defs["DeploymentSpec"]["properties"])
    assert {"service_host", "service_port", "httpPort", "grpcPort"} == set(
        defs["Endpoint"]["properties"]
    ) - {"type"}
    assert {"modelUri", "envSecretRefName", "storageInitializerImage"} <= set(
        defs["PredictiveUnit"]["properties"]
    )
    assert {"svcOrchSpec", "engineResources", "progressDeadlineSeconds", "componentSpecs"} <= set(
        defs["PredictorSpec"]["properties"]
    )
    assert {"hpaSpec", "kedaSpec", "pdbSpec"} <= set(defs["SeldonPodSpec"]["properties"])
    assert "metricsv2" in defs["HpaSpec"]["properties"]
    assert defs["SSL"]["properties"].keys() == {"certSecretName"}
    assert defs["PredictiveUnit"]["additionalProperties"] is False
    assert defs["PodSpec"]["additionalProperties"] is True


def test_is_prepackaged_follows_seldon() -> None:
    assert is_prepackaged("SKLEARN_SERVER")
    assert is_prepackaged("MY_CUSTOM_SERVER")
    for builtin in ("RANDOM_ABTEST", "UNKNOWN_IMPLEMENTATION", "EPSILON_GREEDY", "UCB1"):
        assert not is_prepackaged(builtin)
    assert not is_prepackaged(None)


# --- defaulting ---------------------------------------------------------------------------


def test_default_is_pure_and_survives_exclude_unset() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-abtest.yaml")
    before = _dump(deployment)
    defaulted = default(deployment)
    assert _dump(deployment) == before
    dumped = _dump(defaulted)
    assert dumped["metadata"]["namespace"] == "default"
    assert dumped["spec"]["predictors"][0]["labels"] == {"version": "default"}
    assert dumped["spec"]["predictors"][0]["graph"]["children"][0]["endpoint"] == {
        "service_host": "localhost",
        "service_port": 9000,
        "httpPort": 9000,
        "grpcPort": 9500,
    }


def test_default_node_types() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-combiner.yaml")
    custom, average = (p.graph for p in default(deployment).spec.predictors)
    assert custom.implementation == Implementation.UNKNOWN_IMPLEMENTATION
    assert average.type == PredictiveUnitType.COMBINER  # implied by AVERAGE_COMBINER
    assert [c.type for c in average.children] == [PredictiveUnitType.MODEL] * 2
    (bandit,) = load_documents(MANIFESTS / "seldon-epsilon-greedy.yaml")
    graph = default(bandit).spec.predictors[0].graph
    assert graph.type == PredictiveUnitType.ROUTER
    assert [c.type for c in graph.children] == [PredictiveUnitType.MODEL] * 3
    (methods,) = load_documents(MANIFESTS / "seldon-output-transformer.yaml")
    featurizer = default(methods).spec.predictors[0].graph.children[0]
    assert featurizer.type == PredictiveUnitType.UNKNOWN_TYPE
    assert featurizer.implementation == Implementation.UNKNOWN_IMPLEMENTATION


def test_prepackaged_implementation_forces_model_type() -> None:
    doc = _documents(MANIFESTS / "seldon-canary-shadow.yaml")[0]
    doc["spec"]["predictors"][0]["graph"]["type"] = "ROUTER"
    graph = default(_one(yaml.safe_dump(doc))).spec.predictors[0].graph
    assert graph.type == PredictiveUnitType.MODEL


def test_version_label_defaults_to_predictor_name_and_is_kept_when_set() -> None:
    (canary,) = load_documents(MANIFESTS / "seldon-canary-shadow.yaml")
    assert [p.labels["version"] for p in default(canary).spec.predictors] == [
        "main",
        "canary",
        "shadow",
    ]
    (full,) = load_documents(MANIFESTS / "graph-deployment.yaml")
    assert default(full).spec.predictors[0].labels == {"version": "v3", "tier": "gold"}


def test_ports_are_numbered_per_container_name_across_predictors() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-combiner.yaml")
    custom, average = default(deployment).spec.predictors
    endpoints = [(n.name, n.endpoint) for p in (custom, average) for n in _nodes(p.graph)]
    ports = {name: (e.http_port, e.grpc_port) for name, e in endpoints if e is not None}
    assert ports == {
        "combiner": (9000, 9500),
        "model-1": (9001, 9501),
        "model-2": (9002, 9502),
        "iris-sklearn": (9003, 9503),
        "iris-xgboost": (9004, 9504),
    }
    assert dict(endpoints)["mean"] is None  # a builtin runs in the orchestrator
    metrics = [
        port.container_port
        for p in (custom, average)
        for _, c in p.containers()
        for port in c.ports
        if port.name == "metrics"
    ]
    assert metrics == [6000, 6001, 6002, 6003, 6004]


def test_prepackaged_node_without_container_gets_one() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-combiner.yaml")
    average = default(deployment).spec.predictors[1]
    (component,) = average.component_specs
    assert [c.name for c in component.spec.containers] == ["iris-sklearn", "iris-xgboost"]
    assert all(c.image is None for c in component.spec.containers)  # kube.render picks it


def test_declared_http_and_grpc_ports_are_kept() -> None:
    (deployment,) = load_documents(MANIFESTS / "graph-deployment.yaml")
    graph = default(deployment).spec.predictors[0].graph
    assert graph.endpoint is not None
    assert (graph.endpoint.http_port, graph.endpoint.grpc_port) == (8080, 9500)


def test_service_host_is_localhost_only_in_the_first_component_spec() -> None:
    doc = _documents(MANIFESTS / "graph-deployment.yaml")[0]
    del doc["spec"]["annotations"]
    defaulted = default(_one(yaml.safe_dump(doc)))
    graph = defaulted.spec.predictors[0].graph
    assert graph.endpoint is not None and graph.endpoint.service_host == "localhost"
    model = graph.children[0].endpoint
    assert model is not None
    assert model.service_host == "full-main-model.prod.svc.cluster.local"
    assert (model.service_port, model.http_port, model.grpc_port) == (9001, 9001, 9501)


def test_separate_engine_pod_means_no_localhost() -> None:
    (deployment,) = load_documents(MANIFESTS / "graph-deployment.yaml")
    graph = default(deployment).spec.predictors[0].graph
    assert graph.endpoint is not None
    assert graph.endpoint.service_host == "full-main-input.prod.svc.cluster.local"


def test_service_port_is_grpc_for_grpc_transport() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-output-transformer.yaml")
    graph = default(deployment).spec.predictors[0].graph
    assert graph.endpoint is not None
    assert (graph.endpoint.service_port, graph.endpoint.grpc_port) == (9500, 9500)


def test_long_service_names_are_hashed_like_seldon() -> None:
    assert service_name("sdep", "main", "clf") == "sdep-main-clf"
    parts = ("a" * 30, "b" * 20, "c" * 20)
    digest = hashlib.md5("-".join(parts).encode()).hexdigest()
    assert service_name(*parts) == f"seldon-{digest}"


def test_port_bases_can_be_moved() -> None:
    (deployment,) = load_documents(MANIFESTS / "seldon-abtest.yaml")
    bases = PortBases(http=8000, grpc=8500, metrics=7000, metrics_port_name="prom")
    predictor = default(deployment, bases).spec.predictors[0]
    endpoint = predictor.graph.children[1].endpoint
    assert endpoint is not None and (endpoint.http_port, endpoint.grpc_port) == (8001, 8501)
    container = predictor.container("model-b")
    assert container is not None
    assert [(p.name, p.container_port) for p in container.ports] == [("prom", 7001)]


def _nodes(graph: Any) -> list[Any]:
    return [graph, *(node for child in graph.children for node in _nodes(child))]


def test_a_graph_that_contains_itself_is_a_problem_not_a_crash() -> None:
    text = (
        "apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\n"
        "metadata: {name: loop}\nspec:\n  predictors:\n  - name: p\n"
        "    graph: &g\n      name: a\n      children: [*g]\n"
    )
    with pytest.raises(SpecError) as caught:
        load_documents(text)
    (problem,) = caught.value.problems
    assert problem.path == "spec.predictors[0].graph.children[0]"
    assert "refers to itself" in problem.message
