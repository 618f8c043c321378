"""``kube.render``: golden files for every feature, and the Seldon behaviours they show.

The golden files are ``tests/golden/kube/<case>.yaml``, the exact output of
``infergraph render``. After a deliberate change to the renderer, regenerate them with::

    INFERGRAPH_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/kube/test_kube_render.py

and review the diff (``git diff tests/golden/kube``) as you would review the code.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from infergraph.graph.spec import SpecError
from infergraph.kube.autoscalers import convert_v2beta1_metric
from infergraph.kube.manifest import to_yaml
from infergraph.kube.render import render
from tests.helpers.kube_cases import CASES, FIXTURES, MANIFESTS, ROOT, deployment, options, params

GOLDEN = Path(__file__).parents[1] / "golden" / "kube"
REGENERATE = os.environ.get("INFERGRAPH_REGENERATE_GOLDEN") == "1"


def _render(path: Path, **changes: Any) -> list[dict[str, Any]]:
    return render(deployment(path), options(**changes))


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, [o["metadata"]["name"] for o in objects if o["kind"] == kind]
    return found[0]


def _container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    pod = obj["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] + pod.get("initContainers", []) if c["name"] == name)


def _remote(command: list[str]) -> list[str]:
    return [value for flag, value in itertools.pairwise(command) if flag == "--remote"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.mark.parametrize(("path", "changes"), params())
def test_golden(request: pytest.FixtureRequest, path: Path, changes: dict[str, Any]) -> None:
    case = request.node.callspec.id
    text = to_yaml(_render(path, **changes))
    golden = GOLDEN / f"{case}.yaml"
    if REGENERATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run with INFERGRAPH_REGENERATE_GOLDEN=1"
    assert text == golden.read_text()


def test_every_golden_file_has_a_case() -> None:
    cases = {case for case, _, _ in CASES}
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == cases


def test_graph_pod_gets_seldon_names_labels_and_the_orchestrator() -> None:
    objects = _render(Path(__file__).parents[2] / "examples" / "bandit" / "deployment.yaml")
    dep = _one(objects, "Deployment")
    assert dep["metadata"]["name"] == "digits-bandit-default-0-scaler-stump-logreg"
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == {
        "seldon-deployment-id": "digits-bandit",
        "app": "digits-bandit-default-0-scaler-stump-logreg",
    }
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["seldon-app"] == "digits-bandit-default"
    assert labels["seldon-app-svc-stump"] == "digits-bandit-default-stump"
    assert labels["version"] == "default"
    assert labels["fluentd"] == "true"
    assert labels["seldon.io/transformer"] == labels["seldon.io/model"] == "true"
    assert labels["app.kubernetes.io/managed-by"] == "infergraph"
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/prometheus"
    engine = _container(dep, "seldon-container-engine")
    assert engine["image"] == "infergraph:0.0.0-test"
    assert engine["command"][:3] == ["infergraph", "serve", "/etc/infergraph/deployment.yaml"]
    remote = _remote(engine["command"])
    assert remote == ["scaler=localhost:9000", "stump=localhost:9001", "logreg=localhost:9002"]
    assert engine["command"][engine["command"].index("--node-protocol") + 1] == "seldon"
    assert [p["containerPort"] for p in engine["ports"]] == [8000, 5001]
    scaler = _container(dep, "scaler")
    assert {p["name"]: p["containerPort"] for p in scaler["ports"]} == {
        "metrics": 6000,
        "http": 9000,
        "grpc": 9500,
    }
    env = _env(scaler)
    assert env["PREDICTIVE_UNIT_ID"] == "scaler"
    assert env["PREDICTIVE_UNIT_HTTP_SERVICE_PORT"] == "9000"
    assert env["PREDICTOR_ID"] == "default"
    assert env["SELDON_DEPLOYMENT_ID"] == "digits-bandit"
    assert env["MODEL_NAME"] == "components.Scaler"  # the user's env is kept, first
    assert scaler["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert {"name": "seldon-podinfo", "mountPath": "/etc/podinfo"} in scaler["volumeMounts"]
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert set(services) == {
        "digits-bandit-default",
        "digits-bandit-default-scaler",
        "digits-bandit-default-stump",
        "digits-bandit-default-logreg",
    }
    entry = services["digits-bandit-default"]["spec"]
    assert entry["selector"] == {"seldon-app": "digits-bandit-default"}
    assert [(p["name"], p["port"]) for p in entry["ports"]] == [("http", 8000), ("grpc", 5001)]
    stump = services["digits-bandit-default-stump"]["spec"]
    assert stump["selector"] == {"seldon-app-svc-stump": "digits-bandit-default-stump"}
    config = _one(objects, "ConfigMap")
    assert "traffic" not in config["data"]["deployment.yaml"]


def test_user_probes_are_kept_and_missing_ones_defaulted() -> None:
    dep = _one(_render(FIXTURES / "hpa-v2beta1.yaml"), "Deployment")
    model = _container(dep, "classifier")
    assert model["readinessProbe"] == {"httpGet": {"path": "/health/ping", "port": "http"}}
    assert model["livenessProbe"]["initialDelaySeconds"] == 60


def test_the_runtime_image_is_ready_when_its_model_is_loaded() -> None:
    """infergraph listens while load() runs, so its readiness is /ready, not an open port;
    a user's image keeps Seldon's TCP probe (it may serve no /ready)."""
    served = _container(
        _one(_render(FIXTURES / "sklearn-model-uri.yaml"), "Deployment"), "classifier"
    )
    assert served["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert served["livenessProbe"]["tcpSocket"] == {"port": "http"}
    own = _container(
        _one(_render(ROOT / "examples" / "bandit" / "deployment.yaml"), "Deployment"), "scaler"
    )
    assert own["readinessProbe"]["tcpSocket"] == {"port": "http"}


def test_hpa_replaces_replicas_and_converts_v2beta1_metrics() -> None:
    objects = _render(FIXTURES / "hpa-v2beta1.yaml")
    dep = _one(objects, "Deployment")
    assert "replicas" not in dep["spec"]
    hpa = _one(objects, "HorizontalPodAutoscaler", dep["metadata"]["name"])
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    cpu, memory, pods, external, obj = hpa["spec"]["metrics"]
    assert cpu["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert memory["resource"]["target"] == {"type": "AverageValue", "averageValue": "1Gi"}
    assert pods["pods"] == {
        "metric": {"name": "inference_requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": "50"},
    }
    assert external["external"]["metric"]["selector"] == {"matchLabels": {"queue": "inference"}}
    assert external["external"]["target"] == {"type": "Value", "value": "100"}
    assert obj["object"]["describedObject"]["kind"] == "Ingress"
    pdb = _one(objects, "PodDisruptionBudget", dep["metadata"]["name"])
    assert pdb["spec"] == {"minAvailable": 1, "selector": dep["spec"]["selector"]}


def test_a_v2_metric_is_left_as_it_is() -> None:
    metric = {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}},
    }
    assert convert_v2beta1_metric(metric) == metric


def test_keda_scaled_object_owns_the_replicas() -> None:
    objects = _render(FIXTURES / "keda.yaml")
    dep = _one(objects, "Deployment")
    assert "replicas" not in dep["spec"]
    scaled = _one(objects, "ScaledObject", dep["metadata"]["name"])
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": dep["metadata"]["name"],
    }
    assert scaled["spec"]["maxReplicaCount"] == 5
    assert "metricName" not in scaled["spec"]["triggers"][0]["metadata"]
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]


def test_separate_engine_pod_and_both_autoscalers() -> None:
    objects = _render(MANIFESTS / "graph-deployment.yaml")
    orch = _one(objects, "Deployment", "full-main-svc-orch")
    command = _container(orch, "seldon-container-engine")["command"]
    remote = _remote(command)
    assert remote == [  # spec.transport rest: the HTTP ports, through the nodes' Services
        "input=full-main-input.prod.svc.cluster.local:8080",
        "model=full-main-model.prod.svc.cluster.local:9001",
    ]
    assert orch["spec"]["replicas"] == 2  # svcOrchSpec.replicas
    labels = orch["spec"]["template"]["metadata"]["labels"]
    assert labels["seldon-app"] == "full-main"
    assert labels["seldon-deployment-contains-svcorch"] == "true"
    engine = _container(orch, "seldon-container-engine")
    assert _env(engine)["SELDON_LOG_LEVEL"] == "DEBUG"
    assert engine["resources"] == {"limits": {"cpu": "1"}}
    front = _one(objects, "Deployment", "full-main-0-front")
    names = [c["name"] for c in front["spec"]["template"]["spec"]["containers"]]
    assert names == ["input"]
    assert _one(objects, "HorizontalPodAutoscaler")["metadata"]["name"] == "full-main-0-front"
    assert _one(objects, "ScaledObject")["metadata"]["name"] == "full-main-1-model"
    entry = _one(objects, "Service", "full-main")
    assert entry["spec"]["clusterIP"] == "None"  # seldon.io/headless-svc


def test_model_uri_adds_the_fetch_init_container_and_a_read_only_mount() -> None:
    dep = _one(_render(FIXTURES / "sklearn-model-uri.yaml"), "Deployment")
    init = _container(dep, "classifier-model-initializer")
    assert init["command"] == [
        "infergraph",
        "fetch-model",
        "s3://models/sklearn/iris",
        "/mnt/models",
    ]
    assert init["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    model = _container(dep, "classifier")
    assert model["image"] == "infergraph:0.0.0-test"
    assert model["command"][:2] == ["infergraph", "microservice"]
    assert "envFrom" not in model  # credentials reach the download only
    assert {
        "name": "classifier-provision-location",
        "mountPath": "/mnt/models",
        "readOnly": True,
    } in model["volumeMounts"]
    params = _env(model)["PREDICTIVE_UNIT_PARAMETERS"]
    assert '"model_uri","value":"/mnt/models"' in params
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "classifier-provision-location", "emptyDir": {}} in volumes
    assert dep["spec"]["replicas"] == 2


def test_image_prefix_and_namespace() -> None:
    objects = _render(
        FIXTURES / "sklearn-model-uri.yaml", namespace="staging", image_prefix="ghcr.io/acme/"
    )
    assert {o["metadata"]["namespace"] for o in objects} == {"staging"}
    dep = _one(objects, "Deployment")
    assert _container(dep, "classifier")["image"] == "ghcr.io/acme/infergraph:0.0.0-test"


def test_pvc_uri_mounts_the_claim_and_custom_initializer_gets_seldon_args() -> None:
    objects = _render(FIXTURES / "pvc-model.yaml")
    dep = _one(objects, "Deployment", "pvc-model-default-0-onnx-log-shipper")
    init = _container(dep, "onnx-model-initializer")
    assert init["command"][-2:] == ["/mnt/pvc/onnx/resnet", "/mnt/models"]
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    claim = {"claimName": "model-store", "readOnly": True}
    assert {"name": "onnx-pvc-source", "persistentVolumeClaim": claim} in volumes
    assert _container(dep, "onnx")["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert "env" not in _container(dep, "log-shipper")  # a sidecar is kept as written
    rclone = _one(objects, "Deployment", "pvc-model-rclone-0-xgb")
    init = _container(rclone, "xgb-model-initializer")
    assert init["image"] == "seldonio/rclone-storage-initializer:1.18.2"
    assert init["args"] == ["gs://models/xgboost", "/mnt/models"]
    labels = rclone["spec"]["template"]["metadata"]["labels"]
    assert labels["seldon.io/shadow"] == "true"


def test_long_names_are_hashed_like_seldon() -> None:
    objects = _render(FIXTURES / "long-names.yaml")
    dep = _one(objects, "Deployment")
    assert dep["metadata"]["name"].startswith("seldon-") and len(dep["metadata"]["name"]) == 39
    assert not [o for o in objects if o["kind"] == "ConfigMap"]  # no-engine: no orchestrator
    entry = _one(objects, "Service", "fraud")  # seldon.io/svc-name
    assert [p["targetPort"] for p in entry["spec"]["ports"]] == [9000, 9500]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["seldon-app"] == "fraud"


def test_router_splits_traffic_without_an_ingress() -> None:
    objects = _render(MANIFESTS / "seldon-canary-shadow.yaml")
    router = _one(objects, "Deployment", "iris-router")
    engine = _container(router, "seldon-container-engine")
    remote = _remote(engine["command"])
    assert remote == [
        "main/classifier=iris-main-classifier.default.svc.cluster.local:9000",
        "canary/classifier=iris-canary-classifier.default.svc.cluster.local:9000",
        "shadow/classifier=iris-shadow-classifier.default.svc.cluster.local:9000",
    ]
    assert engine["command"][engine["command"].index("--node-protocol") + 1] == "v2"
    assert _one(objects, "Service", "iris")["spec"]["selector"] == {"seldon-app": "iris"}
    config = _one(objects, "ConfigMap", "iris-router-graph")["data"]["deployment.yaml"]
    assert "traffic: 80" in config and "shadow: true" in config


def test_istio_virtual_service_weights_and_mirror() -> None:
    objects = _render(MANIFESTS / "seldon-canary-shadow.yaml", ingress="istio")
    assert not [o for o in objects if o["metadata"]["name"] == "iris-router"]
    vs = _one(objects, "VirtualService", "iris")
    rest, grpc = vs["spec"]["http"]
    assert rest["match"] == [{"uri": {"prefix": "/seldon/default/iris/"}}]
    assert rest["rewrite"] == {"uri": "/"}
    assert [(r["destination"]["subset"], r["weight"]) for r in rest["route"]] == [
        ("main", 80),
        ("canary", 20),
    ]
    assert rest["route"][1]["destination"]["host"] == "iris-canary.default.svc.cluster.local"
    assert rest["mirror"]["subset"] == "shadow"
    assert "mirrorPercentage" not in rest  # shadow traffic 0: every request is mirrored
    assert grpc["match"][0]["headers"] == {
        "seldon": {"exact": "iris"},
        "namespace": {"exact": "default"},
    }
    assert grpc["route"][0]["destination"]["port"] == {"number": 5001}
    rules = {o["metadata"]["name"]: o for o in objects if o["kind"] == "DestinationRule"}
    assert set(rules) == {"iris-main", "iris-canary", "iris-shadow"}
    assert rules["iris-main"]["spec"]["subsets"] == [
        {"name": "main", "labels": {"version": "main"}}
    ]


def test_gateway_api_route_weights_and_mirror() -> None:
    objects = _render(MANIFESTS / "seldon-canary-shadow.yaml", ingress="gateway-api")
    route = _one(objects, "HTTPRoute", "iris")
    (rule,) = route["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [
        ("iris-main", 80),
        ("iris-canary", 20),
    ]
    mirror = next(f for f in rule["filters"] if f["type"] == "RequestMirror")
    assert mirror["requestMirror"]["backendRef"] == {"name": "iris-shadow", "port": 8000}


def test_render_is_pure_and_leaves_its_input_alone() -> None:
    source = deployment(MANIFESTS / "graph-deployment.yaml")
    before = source.model_dump()
    first = to_yaml(render(source, options()))
    assert source.model_dump() == before
    assert to_yaml(render(source, options())) == first


@pytest.mark.parametrize(
    ("fixture", "path", "words"),
    [
        pytest.param(
            "bad-container-name.yaml",
            "spec.predictors[0].componentSpecs[0].spec.containers[0].name",
            "not a valid Kubernetes name",
            id="container-name",
        ),
        pytest.param(
            "triton-no-image.yaml",
            "spec.predictors[0].graph.implementation",
            "no runtime for TRITON_SERVER",
            id="server-without-runtime",
        ),
    ],
)
def test_problems_name_the_field(fixture: str, path: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        render(deployment(FIXTURES / fixture), options())
    assert [(p.path, words in p.message) for p in caught.value.problems] == [(path, True)]


def test_names_that_would_collide_are_a_problem() -> None:
    from infergraph.graph.spec import SeldonDeployment

    def predictor(name: str, container: str) -> dict[str, Any]:
        return {
            "name": name,
            "traffic": 50,
            "componentSpecs": [{"spec": {"containers": [{"name": container, "image": "m:1"}]}}],
            "graph": {"name": container, "type": "MODEL"},
        }

    source = SeldonDeployment.model_validate(
        {
            "apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment",
            "metadata": {"name": "x"},
            "spec": {"predictors": [predictor("a", "b"), predictor("a-b", "c")]},
        }
    )
    with pytest.raises(SpecError) as caught:
        render(source, options())
    assert "two Services would both be named 'x-a-b'" in str(caught.value)


@pytest.mark.parametrize(("path", "changes"), params())
def test_orchestrator_command_is_one_serve_accepts(path: Path, changes: dict[str, Any]) -> None:
    """The rendered ``infergraph serve`` command parses, its graph file loads and passes
    validation, and every ``--remote`` names a node of that graph."""
    from infergraph.cli.main import build_parser
    from infergraph.cli.serve import parse_remote
    from infergraph.graph.spec import load_deployments
    from infergraph.graph.spec.model_sources import ModelSources
    from infergraph.graph.spec.serve_checks import check_serve
    from infergraph.serving.remote import unknown_nodes

    objects = _render(path, **changes)
    configs = {
        o["metadata"]["name"]: o["data"]["deployment.yaml"]
        for o in objects
        if o["kind"] == "ConfigMap"
    }
    for dep in (o for o in objects if o["kind"] == "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        engine = next(
            (c for c in pod["containers"] if c["name"] == "seldon-container-engine"), None
        )
        if engine is None:
            continue
        args = build_parser().parse_args(engine["command"][1:])
        volume = next(v for v in pod["volumes"] if v["name"] == "infergraph-graph")
        (served,) = load_deployments(configs[volume["configMap"]["name"]])
        remote = parse_remote(args.remote)
        assert remote and unknown_nodes(served, remote) == []
        assert check_serve(served, ModelSources(), remote=remote) == []  # serve would start


@pytest.mark.parametrize(("path", "changes"), params())
def test_an_already_defaulted_resource_renders_the_same(
    path: Path, changes: dict[str, Any]
) -> None:
    from infergraph.graph.spec import load_deployments

    (defaulted,) = load_deployments(path)  # what serve uses: validated, then defaulted
    assert to_yaml(render(defaulted, options(**changes))) == to_yaml(_render(path, **changes))


def test_a_container_name_too_long_for_its_service_label_is_a_problem() -> None:
    from infergraph.graph.spec import SeldonDeployment

    name = "m" * 49  # a DNS label, but seldon-app-svc-<name> is 64 characters
    source = SeldonDeployment.model_validate(
        {
            "apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment",
            "metadata": {"name": "x"},
            "spec": {
                "predictors": [
                    {
                        "name": "p",
                        "componentSpecs": [
                            {"spec": {"containers": [{"name": name, "image": "m"}]}}
                        ],
                        "graph": {"name": name, "type": "MODEL"},
                    }
                ]
            },
        }
    )
    with pytest.raises(SpecError) as caught:
        render(source, options())
    (problem,) = caught.value.problems
    assert problem.path == "spec.predictors[0].componentSpecs[0].spec.containers[0].name"
    assert "use at most 48 characters" in problem.message


def test_explainer_gets_its_own_deployment_and_service() -> None:
    objects = _render(MANIFESTS / "graph-deployment.yaml")
    dep = _one(objects, "Deployment", "full-main-explainer")
    explainer = _container(dep, "explainer")
    assert explainer["image"] == "seldonio/alibiexplainer:1.19.0"
    assert explainer["args"] == [
        "--model_name=input",
        "--predictor_host=full-main.prod:8000",
        "--protocol=seldon.http",
        "--http_port=9000",
        "--storage_uri=/mnt/models",
        "AnchorTabular",
        "--batch_size=10",
    ]
    assert _container(dep, "explainer-model-initializer")["envFrom"] == [
        {"secretRef": {"name": "explainer-secret"}}
    ]
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "explainer-sa"
    service = _one(objects, "Service", "full-main-explainer")
    assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
