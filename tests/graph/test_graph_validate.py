"""Every validation problem, with its exact field path: type errors found while loading and
Seldon's admission rules plus graph checks found by ``validate``."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from infergraph.graph.spec import default, read_documents, validate
from infergraph.graph.spec.problems import Problem, SpecError, format_path

Doc = dict[str, Any]
G = "spec.predictors[0].graph"
BASE: Doc = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "sdep"},
    "spec": {
        "predictors": [
            {
                "name": "main",
                "componentSpecs": [
                    {
                        "spec": {
                            "containers": [
                                {"name": "tr", "image": "registry.example.com/tr:1"},
                                {"name": "clf", "image": "registry.example.com/clf:1"},
                            ]
                        }
                    }
                ],
                "graph": {
                    "name": "tr",
                    "type": "TRANSFORMER",
                    "children": [{"name": "clf", "type": "MODEL"}],
                },
            }
        ]
    },
}
_SEGMENT = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\.(\d+)|\["([^"]*)"\]')
DELETE = object()


def _set(doc: Doc, path: str, value: Any) -> None:
    """Set ``value`` at ``path`` (``a.b[0]["k.x"]``, or ``a.b.0``); an index one past the end
    appends."""
    keys: list[Any] = [
        m[1] or (int(m[2] or m[3]) if m[2] or m[3] else m[4]) for m in _SEGMENT.finditer(path)
    ]
    target: Any = doc
    for key in keys[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
    last = keys[-1]
    if value is DELETE:
        del target[last]
    elif isinstance(target, list) and last == len(target):
        target.append(value)
    else:
        target[last] = value


def make(**changes: Any) -> Doc:
    """BASE with ``changes`` applied; keys are paths with ``__`` for ``.``."""
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        _set(doc, key.replace("__", "."), value)
    return doc


def patch(*pairs: tuple[str, Any]) -> Doc:
    """BASE with ``(path, value)`` pairs applied in order."""
    doc = copy.deepcopy(BASE)
    for path, value in pairs:
        _set(doc, path, value)
    return doc


def problems_of(doc: Doc) -> list[Problem]:
    """What ``infergraph validate`` would report: load problems, else rule problems."""
    try:
        documents = read_documents(yaml.safe_dump(doc, sort_keys=False))
    except SpecError as exc:
        return exc.problems
    return [d.locate(p) for d in documents for p in validate(d.deployment)]


def predictor(name: str, traffic: int | None = None, **extra: Any) -> Doc:
    """A one-node predictor served by a prepackaged server (needs no container)."""
    out: Doc = {
        "name": name,
        "graph": {"name": "m", "implementation": "SKLEARN_SERVER", "modelUri": "gs://b/m"},
    }
    if traffic is not None:
        out["traffic"] = traffic
    return {**out, **extra}


def router(impl: str | None, children: int, params: list[Doc] | None = None, **kw: Any) -> Doc:
    containers = [{"name": f"c{i}", "image": "img"} for i in range(children)]
    graph: Doc = {"name": "r", "children": [{"name": f"c{i}"} for i in range(children)], **kw}
    if impl:
        graph["implementation"] = impl
    if params is not None:
        graph["parameters"] = params
    return patch(
        ("spec.predictors[0].graph", graph),
        ("spec.predictors[0].componentSpecs[0].spec.containers", [*containers]),
    )


def param(name: str, value: Any, kind: str = "INT") -> Doc:
    return {"name": name, "value": value, "type": kind}


TYPE_CASES = [
    pytest.param(
        make(**{f"{G}.children[0].type": "MODLE"}),
        f"{G}.children[0].type",
        "'MODLE' is not one of UNKNOWN_TYPE, ROUTER, COMBINER, MODEL",
        id="node-type",
    ),
    pytest.param(
        make(spec__protocol="grpc"),
        "spec.protocol",
        "'grpc' is not one of seldon, tensorflow, kfserving, v2",
        id="protocol",
    ),
    pytest.param(
        make(spec__transport="http"),
        "spec.transport",
        "'http' is not one of rest, grpc",
        id="transport",
    ),
    pytest.param(
        make(spec__serverType="batch"),
        "spec.serverType",
        "'batch' is not one of rpc, kafka",
        id="server-type",
    ),
    pytest.param(
        make(spec__predictors=[]), "spec.predictors", "at least one predictor", id="no-predictors"
    ),
    pytest.param(
        make(spec__predictors=DELETE),
        "spec.predictors",
        "required field 'predictors' is missing",
        id="predictors-missing",
    ),
    pytest.param(
        make(**{f"{G}.modelURI": "gs://b"}),
        f"{G}.modelURI",
        "unknown field 'modelURI'; did you mean 'modelUri'?",
        id="unknown-field",
    ),
    pytest.param(
        make(spec__predictors__0__trafic=50),
        "spec.predictors[0].trafic",
        "did you mean 'traffic'?",
        id="unknown-predictor-field",
    ),
    pytest.param(
        make(**{f"{G}.parameters": [param("x", "1", "FLOT")]}),
        f"{G}.parameters[0].type",
        "'FLOT' is not one of INT, FLOAT, DOUBLE, STRING, BOOL",
        id="parameter-type",
    ),
    pytest.param(
        make(**{f"{G}.parameters": [param("x", 0.5, "FLOAT")]}),
        f"{G}.parameters[0].value",
        'expected a string, got 0.5; quote it in YAML: "0.5"',
        id="parameter-value-unquoted",
    ),
    pytest.param(
        make(**{f"{G}.methods": ["ROUTING"]}),
        f"{G}.methods[0]",
        "'ROUTING' is not one of TRANSFORM_INPUT",
        id="method",
    ),
    pytest.param(
        make(**{f"{G}.endpoint": {"type": "HTTP"}}),
        f"{G}.endpoint.type",
        "'HTTP' is not one of REST, GRPC",
        id="endpoint-type",
    ),
    pytest.param(
        make(**{f"{G}.logger": {"mode": "everything"}}),
        f"{G}.logger.mode",
        "'everything' is not one of all, request, response",
        id="logger-mode-enum",
    ),
    pytest.param(
        make(**{f"{G}.name": DELETE}),
        f"{G}.name",
        "required field 'name' is missing",
        id="node-name",
    ),
    pytest.param(make(**{f"{G}.name": ""}), f"{G}.name", "must not be empty", id="node-name-empty"),
    pytest.param(
        make(**{"spec.predictors[0].componentSpecs[0].spec.containers[0].name": DELETE}),
        "spec.predictors[0].componentSpecs[0].spec.containers[0].name",
        "required field 'name' is missing",
        id="container-name",
    ),
    pytest.param(
        make(**{"spec.predictors[0].componentSpecs[0].hpaSpec": {"minReplicas": 1}}),
        "spec.predictors[0].componentSpecs[0].hpaSpec.maxReplicas",
        "required field 'maxReplicas' is missing",
        id="hpa-max-replicas",
    ),
    pytest.param(
        make(**{"spec.predictors[0].componentSpecs[0].kedaSpec": {"pollingInterval": 5}}),
        "spec.predictors[0].componentSpecs[0].kedaSpec.triggers",
        "required field 'triggers' is missing",
        id="keda-triggers",
    ),
    pytest.param(
        make(
            **{
                "spec.predictors[0].componentSpecs[0].pdbSpec": {
                    "minAvailable": 1,
                    "maxUnavailable": "10%",
                }
            }
        ),
        "spec.predictors[0].componentSpecs[0].pdbSpec",
        "minAvailable and maxUnavailable are mutually exclusive",
        id="pdb-both",
    ),
    pytest.param(
        make(**{"spec.predictors[0].componentSpecs[0].pdbSpec": {"minAvailable": 0.5}}),
        "spec.predictors[0].componentSpecs[0].pdbSpec.minAvailable",
        "expected an integer or a percentage string",
        id="pdb-int-or-string",
    ),
    pytest.param(
        make(**{"spec.predictors[0].componentSpecs[0].replicas": -1}),
        "spec.predictors[0].componentSpecs[0].replicas",
        "must be >= 0, got -1",
        id="negative-replicas",
    ),
    pytest.param(
        make(apiVersion="machinelearning.seldon.io/v2"),
        "apiVersion",
        "'machinelearning.seldon.io/v2' is not one of machinelearning.seldon.io/v1,",
        id="api-version",
    ),
    pytest.param(
        make(metadata__name=DELETE),
        "metadata.name",
        "required field 'name' is missing",
        id="metadata-name",
    ),
    pytest.param(
        make(spec__predictors__0__labels__version=2),
        "spec.predictors[0].labels.version",
        "expected a string, got 2",
        id="label-not-string",
    ),
    pytest.param(
        make(**{'metadata.annotations["seldon.io/rest-timeout"]': 5000}),
        'metadata.annotations["seldon.io/rest-timeout"]',
        'quote it in YAML: "5000"',
        id="annotation-path-quoting",
    ),
    pytest.param(
        make(spec__predictors__0__traffic="most"),
        "spec.predictors[0].traffic",
        "expected an integer, got 'most'",
        id="traffic-not-int",
    ),
    pytest.param(
        make(spec__predictors__0__shadow="maybe"),
        "spec.predictors[0].shadow",
        "expected true or false, got 'maybe'",
        id="shadow-not-bool",
    ),
    pytest.param(
        make(**{f"{G}.children": {"name": "clf"}}),
        f"{G}.children",
        "expected a list, got a mapping",
        id="children-not-list",
    ),
    pytest.param(
        make(spec__predictors__0__graph=None), G, "expected a mapping, got null", id="graph-null"
    ),
]

RULE_CASES = [
    pytest.param(
        patch(
            ("spec.predictors[0].traffic", 50),
            ("spec.predictors[1]", {**copy.deepcopy(BASE["spec"]["predictors"][0]), "traffic": 50}),
        ),
        "spec.predictors[1].name",
        "predictor name 'main' is already used by spec.predictors[0]",
        id="duplicate-predictor",
    ),
    pytest.param(
        make(**{'spec.predictors[0].annotations["seldon.io/no-engine"]': "true"}),
        'spec.predictors[0].annotations["seldon.io/no-engine"]',
        "needs a single-node graph, and this graph has 2 nodes",
        id="no-engine",
    ),
    pytest.param(
        make(spec__predictors__0__shadow=True),
        "spec.predictors[0].shadow",
        "the only predictor cannot be a shadow",
        id="lone-shadow",
    ),
    pytest.param(
        patch(
            (
                "spec.predictors",
                [predictor("a", 100), predictor("b", shadow=True), predictor("c", shadow=True)],
            )
        ),
        "spec.predictors[2].shadow",
        "at most one predictor can be a shadow, and spec.predictors[1] already is",
        id="two-shadows",
    ),
    pytest.param(
        make(spec__predictors__0__traffic=120),
        "spec.predictors[0].traffic",
        "between 0 and 100, got 120",
        id="traffic-range",
    ),
    pytest.param(
        patch(("spec.predictors", [predictor("a", 100), predictor("s", -5, shadow=True)])),
        "spec.predictors[1].traffic",
        "got -5",
        id="shadow-traffic-range",
    ),
    pytest.param(
        patch(
            (
                "spec.predictors",
                [predictor("a", 80), predictor("b", 10), predictor("s", shadow=True)],
            )
        ),
        "spec.predictors",
        "must sum to 100, got 90 (a: 80, b: 10)",
        id="traffic-sum",
    ),
    pytest.param(
        make(spec__predictors__0__traffic=50),
        "spec.predictors[0].traffic",
        "a single predictor takes all the traffic",
        id="single-predictor-traffic",
    ),
    pytest.param(
        patch(
            (
                "spec.predictors",
                [
                    predictor("a", 50, annotations={"seldon.io/svc-name": "svc"}),
                    predictor("b", 50, annotations={"seldon.io/svc-name": "svc"}),
                ],
            )
        ),
        'spec.predictors[1].annotations["seldon.io/svc-name"]',
        "service name 'svc' is already used by spec.predictors[0]",
        id="svc-name",
    ),
    pytest.param(
        make(
            spec__serverType="kafka",
            spec__predictors__0__svcOrchSpec__env=[
                {"name": "KAFKA_BROKER", "value": "b:9092"},
                {"name": "KAFKA_OUTPUT_TOPIC", "value": "o"},
            ],
        ),
        "spec.predictors[0].svcOrchSpec.env",
        "missing: KAFKA_INPUT_TOPIC",
        id="kafka",
    ),
    pytest.param(
        make(**{f"{G}.children[0].name": "model"}),
        f"{G}.children[0]",
        "node 'model' has no container named 'model' in componentSpecs and no implementation",
        id="no-container",
    ),
    pytest.param(
        make(**{f"{G}.type": "UNKNOWN_TYPE"}),
        f"{G}.methods",
        "has type UNKNOWN_TYPE and no methods",
        id="unknown-type-without-methods",
    ),
    pytest.param(
        make(**{f"{G}.children[0].implementation": "SKLEARN_SERVER"}),
        f"{G}.children[0].modelUri",
        "SKLEARN_SERVER needs modelUri",
        id="no-model-uri",
    ),
    pytest.param(
        make(
            spec__protocol="tensorflow",
            **{
                f"{G}.children[0].implementation": "XGBOOST_SERVER",
                f"{G}.children[0].modelUri": "gs://b/m",
            },
        ),
        f"{G}.children[0].implementation",
        "XGBOOST_SERVER does not serve the tensorflow protocol",
        id="tensorflow-protocol",
    ),
    pytest.param(
        make(
            **{
                f"{G}.children[0].implementation": "SKLEAN_SERVER",
                f"{G}.children[0].name": "other",
                f"{G}.children[0].modelUri": "s3://m",
            }
        ),
        f"{G}.children[0].implementation",
        "'SKLEAN_SERVER' is not an implementation infergraph knows",
        id="unknown-server",
    ),
    pytest.param(
        make(**{f"{G}.children[0].logger": {"url": "http://logger"}}),
        f"{G}.children[0].logger.mode",
        "a logger needs a mode",
        id="logger-mode",
    ),
    pytest.param(
        make(spec__transport="grpc", **{f"{G}.children[0].endpoint": {"type": "REST"}}),
        f"{G}.children[0].endpoint.type",
        "endpoint.type REST disagrees with spec.transport grpc",
        id="transport-disagrees",
    ),
    pytest.param(
        make(**{f"{G}.endpoint": {"type": "GRPC"}, f"{G}.children[0].endpoint": {"type": "REST"}}),
        f"{G}.children[0].endpoint.type",
        f"endpoint.type REST differs from GRPC at {G}.endpoint.type",
        id="mixed-types",
    ),
    pytest.param(
        make(**{f"{G}.children[1]": {"name": "clf"}}),
        f"{G}.children[1].name",
        f"node name 'clf' is already used at {G}.children[0]",
        id="duplicate-node",
    ),
    pytest.param(
        make(**{f"{G}.children[0].type": "ROUTER"}),
        f"{G}.children[0].children",
        "router node 'clf' has no children to route to",
        id="router-type-no-children",
    ),
    pytest.param(
        make(**{f"{G}.children[0].methods": ["ROUTE"]}),
        f"{G}.children[0].children",
        "router node 'clf' has no children",
        id="route-method-no-children",
    ),
    pytest.param(
        make(**{f"{G}.children[0].type": "COMBINER"}),
        f"{G}.children[0].children",
        "combiner node 'clf' has no children to combine",
        id="combiner-no-children",
    ),
    pytest.param(
        router("AVERAGE_COMBINER", 0),
        f"{G}.children",
        "combiner node 'r' has no children",
        id="average-combiner-no-children",
    ),
    pytest.param(
        router("RANDOM_ABTEST", 3),
        f"{G}.children",
        "RANDOM_ABTEST routes between exactly 2 children (A and B), and node 'r' has 3",
        id="abtest-three-children",
    ),
    pytest.param(
        router("RANDOM_ABTEST", 2, [param("ratioA", "1.5", "FLOAT")]),
        f"{G}.parameters[0].value",
        "between 0 and 1, got '1.5'",
        id="abtest-ratio",
    ),
    pytest.param(
        router("EPSILON_GREEDY", 2),
        f"{G}.parameters",
        "EPSILON_GREEDY needs the INT parameter n_branches",
        id="bandit-no-branches",
    ),
    pytest.param(
        router("THOMPSON_SAMPLING", 2, [param("n_branches", "3")]),
        f"{G}.parameters[0].value",
        "n_branches is 3 but node 'r' has 2 children",
        id="bandit-branch-count",
    ),
    pytest.param(
        router("UCB1", 2, [param("n_branches", "2", "STRING")]),
        f"{G}.parameters[0].type",
        "declare it as type INT, not STRING",
        id="bandit-branches-type",
    ),
    pytest.param(
        router("EPSILON_GREEDY", 0, [param("n_branches", "0")]),
        f"{G}.children",
        "router node 'r' has no children",
        id="bandit-no-children",
    ),
    pytest.param(
        make(**{f"{G}.parameters": [param("n", "2.5")]}),
        f"{G}.parameters[0].value",
        "value '2.5' of parameter 'n' is not a valid INT",
        id="parameter-int",
    ),
    pytest.param(
        make(**{f"{G}.parameters": [param("x", "fast", "FLOAT")]}),
        f"{G}.parameters[0].value",
        "is not a valid FLOAT",
        id="parameter-float",
    ),
    pytest.param(
        make(**{f"{G}.parameters": [param("x", "maybe", "BOOL")]}),
        f"{G}.parameters[0].value",
        "is not a valid BOOL",
        id="parameter-bool",
    ),
    pytest.param(
        make(**{f"{G}.parameters": [param("x", "1"), param("x", "2")]}),
        f"{G}.parameters[1].name",
        "parameter 'x' is already given at",
        id="parameter-twice",
    ),
]


@pytest.mark.parametrize(("doc", "path", "message"), TYPE_CASES + RULE_CASES)
def test_each_problem_has_its_path_and_message(doc: Doc, path: str, message: str) -> None:
    problems = problems_of(doc)
    assert [p.path for p in problems] == [path], problems
    assert message in problems[0].message
    assert problems[0].line is not None


def test_base_is_valid() -> None:
    assert problems_of(BASE) == []


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            patch(("spec.predictors", [predictor("a"), predictor("s", shadow=True)])),
            id="one-predictor-and-a-shadow",
        ),
        pytest.param(make(spec__predictors__0__traffic=100), id="single-predictor-100"),
        pytest.param(
            make(**{f"{G}.children[0].implementation": "HUGGINGFACE_SERVER"}),
            id="huggingface-without-model-uri",
        ),
        pytest.param(
            make(
                **{
                    f"{G}.children[0].implementation": "MY_SERVER",
                    f"{G}.children[0].modelUri": "s3://m",
                }
            ),
            id="custom-server-image",
        ),
        pytest.param(
            make(**{'spec.predictors[0].annotations["seldon.io/no-engine"]': "false"}),
            id="no-engine-false",
        ),
        pytest.param(
            make(spec__transport="grpc", **{f"{G}.endpoint": {"type": "GRPC"}}),
            id="transport-agrees",
        ),
        pytest.param(
            router("RANDOM_ABTEST", 2, [param("ratioA", "0.25", "STRING")]), id="ratio-as-string"
        ),
        pytest.param(
            make(**{f"{G}.type": "UNKNOWN_TYPE", f"{G}.methods": ["TRANSFORM_INPUT"]}),
            id="unknown-type-with-methods",
        ),
    ],
)
def test_accepted_edge_cases(doc: Doc) -> None:
    assert problems_of(doc) == []


def test_every_rule_problem_is_reported_at_once() -> None:
    doc = patch(
        ("spec.predictors[0].traffic", 30),
        ('spec.predictors[0].annotations["seldon.io/no-engine"]', "true"),
        (f"{G}.children[0].name", "missing"),
        (f"{G}.children[0].logger", {}),
        (f"{G}.children[1]", {"name": "ab", "implementation": "RANDOM_ABTEST"}),
    )
    assert [p.path for p in problems_of(doc)] == [
        'spec.predictors[0].annotations["seldon.io/no-engine"]',
        "spec.predictors[0].traffic",
        f"{G}.children[0]",
        f"{G}.children[0].logger.mode",
        f"{G}.children[1].children",
    ]


def test_every_type_problem_is_reported_at_once() -> None:
    doc = make(spec__protocol="soap", **{f"{G}.type": "MODLE", f"{G}.children[0].typo": 1})
    assert sorted(p.path for p in problems_of(doc)) == [
        f"{G}.children[0].typo",
        f"{G}.type",
        "spec.protocol",
    ]


def test_problems_carry_their_yaml_line() -> None:
    text = yaml.safe_dump(make(spec__predictors__0__traffic=120), sort_keys=False)
    (document,) = read_documents(text)
    (problem,) = [document.locate(p) for p in validate(document.deployment)]
    assert text.splitlines()[problem.line - 1 if problem.line else 0].strip() == "traffic: 120"


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        pytest.param(("spec", "predictors", 0, "graph"), "spec.predictors[0].graph", id="plain"),
        pytest.param(
            ("metadata", "labels", "app.kubernetes.io/name"),
            'metadata.labels["app.kubernetes.io/name"]',
            id="dotted-key",
        ),
        pytest.param(("a", 'say "hi"'), 'a["say \\"hi\\""]', id="quotes"),
        pytest.param((), "", id="root"),
    ],
)
def test_format_path(loc: tuple[int | str, ...], path: str) -> None:
    assert format_path(loc) == path


def test_validate_sees_defaulted_specs_alike() -> None:
    (document,) = read_documents(yaml.safe_dump(make(spec__predictors__0__traffic=50)))
    assert validate(default(document.deployment)) == validate(document.deployment)
