"""Properties of ``kube.render`` over generated deployments (hypothesis).

For any valid deployment: every name is a DNS-1123 label of at most 63 characters and the
same on every render; every label key and value is one Kubernetes accepts; no selector
uses the ``version`` label or an image; a Deployment has ``replicas`` exactly when no
autoscaler targets it; every selector matches its pod template; and rendering twice gives
the same bytes.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from infergraph.graph.spec import GraphDeployment, SeldonDeployment, SpecError
from infergraph.kube.manifest import to_yaml
from infergraph.kube.names import is_dns_label
from infergraph.kube.options import RenderOptions
from infergraph.kube.render import render as _render


def render(deployment: Any, options: RenderOptions) -> list[dict[str, Any]]:
    """``kube.render``, skipping the generated deployments it rightly rejects (names that
    collide, container names too long for their Service's label); those rejections have
    example tests of their own."""
    try:
        return _render(deployment, options)
    except SpecError as exc:
        expected = ("would both be named", "is too long for the pod label")
        assume(not all(any(e in p.message for e in expected) for p in exc.problems))
        raise


_label = st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True)
_container_name = st.one_of(_label, st.from_regex(r"[a-z][a-z0-9]{45,48}", fullmatch=True))
_LABEL_KEY = re.compile(r"([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?\Z")
_long_label = st.from_regex(r"[a-z]([a-z0-9-]{0,40}[a-z0-9])?", fullmatch=True)


@st.composite
def _component(draw: st.DrawFn, names: list[str], index: int) -> dict[str, Any]:
    containers = [{"name": n, "image": f"registry.example.com/{n}:{index}"} for n in names]
    component: dict[str, Any] = {"spec": {"containers": containers}}
    if draw(st.booleans()):
        component["metadata"] = {"name": draw(_label)}
    scaler = draw(st.sampled_from(["none", "hpa", "keda"]))
    if scaler == "hpa":
        component["hpaSpec"] = {"maxReplicas": draw(st.integers(1, 10))}
    elif scaler == "keda":
        component["kedaSpec"] = {
            "maxReplicaCount": draw(st.integers(1, 10)),
            "triggers": [{"type": "cpu", "metadata": {"value": "50"}}],
        }
    if draw(st.booleans()):
        component["replicas"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        component["pdbSpec"] = {"minAvailable": 1}
    return component


@st.composite
def _predictor(draw: st.DrawFn, name: str) -> dict[str, Any]:
    nodes = draw(st.lists(_container_name, min_size=1, max_size=4, unique=True))
    split = draw(st.integers(1, len(nodes)))
    groups = [nodes[:split], nodes[split:]] if split < len(nodes) else [nodes]
    graph: dict[str, Any] = {"name": nodes[-1], "type": "MODEL"}
    for node in reversed(nodes[:-1]):
        graph = {"name": node, "type": "MODEL", "children": [graph]}
    predictor: dict[str, Any] = {
        "name": name,
        "graph": graph,
        "componentSpecs": [draw(_component(g, i)) for i, g in enumerate(groups)],
    }
    if draw(st.booleans()):
        predictor["labels"] = {"version": draw(_label)}
    if draw(st.booleans()):
        predictor["annotations"] = {"seldon.io/engine-separate-pod": "true"}
    return predictor


@st.composite
def deployments(draw: st.DrawFn) -> GraphDeployment | SeldonDeployment:
    names = draw(st.lists(_label, min_size=1, max_size=2, unique=True))
    predictors = [draw(_predictor(name)) for name in names]
    if len(predictors) == 2:
        first = draw(st.integers(0, 100))
        predictors[0]["traffic"], predictors[1]["traffic"] = first, 100 - first
    kind = draw(st.sampled_from(["SeldonDeployment", "GraphDeployment"]))
    data = {
        "apiVersion": "infergraph.io/v1"
        if kind == "GraphDeployment"
        else "machinelearning.seldon.io/v1",
        "kind": kind,
        "metadata": {"name": draw(_long_label), "namespace": draw(_label)},
        "spec": {"predictors": predictors},
    }
    model = GraphDeployment if kind == "GraphDeployment" else SeldonDeployment
    return model.model_validate(data)


_OPTIONS = st.builds(
    RenderOptions,
    ingress=st.sampled_from(["none", "istio", "gateway-api"]),
    version=st.just("0.0.0-test"),
)
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _selectors(obj: dict[str, Any]) -> list[dict[str, str]]:
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "PodDisruptionBudget"):
        return [spec["selector"]["matchLabels"]]
    if obj["kind"] == "Service":
        return [spec["selector"]]
    return []


@_SETTINGS
@given(deployments(), _OPTIONS)
def test_names_are_dns_labels_and_stable(deployment: Any, options: RenderOptions) -> None:
    first = render(deployment, options)
    second = render(deployment, options)
    assert [o["metadata"]["name"] for o in first] == [o["metadata"]["name"] for o in second]
    for obj in first:
        assert is_dns_label(obj["metadata"]["name"]), obj["metadata"]["name"]
        assert is_dns_label(obj["metadata"]["namespace"])
    keys = [(o["kind"], o["metadata"]["name"]) for o in first]
    assert len(keys) == len(set(keys)), "two objects of one kind share a name"


@_SETTINGS
@given(deployments(), _OPTIONS)
def test_selectors_avoid_version_and_images_and_match_their_pods(
    deployment: Any, options: RenderOptions
) -> None:
    objects = render(deployment, options)
    images = {
        c["image"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    pods = [
        o["spec"]["template"]["metadata"]["labels"] for o in objects if o["kind"] == "Deployment"
    ]
    for obj in objects:
        for selector in _selectors(obj):
            assert "version" not in selector
            assert not set(selector.values()) & images
            assert not any("image" in key for key in selector)
            assert any(selector.items() <= pod.items() for pod in pods), (obj["kind"], selector)
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]["metadata"]["labels"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= template.items()


@_SETTINGS
@given(deployments(), _OPTIONS)
def test_replicas_absent_exactly_when_an_autoscaler_targets(
    deployment: Any, options: RenderOptions
) -> None:
    objects = render(deployment, options)
    scaled = [
        o["spec"]["scaleTargetRef"]["name"]
        for o in objects
        if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
    ]
    assert len(scaled) == len(set(scaled)), "two autoscalers for one Deployment"
    for obj in objects:
        if obj["kind"] == "Deployment":
            assert ("replicas" in obj["spec"]) == (obj["metadata"]["name"] not in scaled)


@_SETTINGS
@given(deployments(), _OPTIONS)
def test_rendering_twice_gives_the_same_bytes(deployment: Any, options: RenderOptions) -> None:
    assert to_yaml(render(deployment, options)) == to_yaml(render(deployment, options))


@_SETTINGS
@given(deployments(), _OPTIONS)
def test_labels_are_valid_kubernetes_labels(deployment: Any, options: RenderOptions) -> None:
    for obj in render(deployment, options):
        sets = [obj["metadata"].get("labels", {})]
        if obj["kind"] == "Deployment":
            sets.append(obj["spec"]["template"]["metadata"]["labels"])
        sets += _selectors(obj)
        for labels in sets:
            for key, value in labels.items():
                assert _LABEL_KEY.match(key), key
                assert _LABEL_VALUE.match(value), (key, value)
