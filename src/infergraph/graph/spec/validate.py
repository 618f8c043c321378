"""The rules a deployment must satisfy beyond its types: Seldon's admission webhook, plus
graph checks Seldon only discovered at request time.

Seldon rejected a bad SeldonDeployment in its validating webhook
(``seldondeployment_webhook.go``) and reported some mistakes (an A/B test with three
children, a bandit whose ``n_branches`` does not match its children, a parameter that is
not a number) only when the first request failed. Here every rule runs before anything is
served, locally (``infergraph validate``) and in the operator, and **every** problem is
reported at once with its field path, so one run of the command fixes a manifest.

The rules work on the spec as written and on its defaulted form alike.
"""

from __future__ import annotations

from collections.abc import Iterator

from infergraph.components.parameters import parse_parameters
from infergraph.errors import BadParameter
from infergraph.graph.spec.models import (
    BUILTIN_IMPLEMENTATIONS,
    PREPACKAGED_SERVERS,
    Deployment,
    DeploymentSpec,
    Implementation,
    Method,
    ParameterType,
    PredictiveUnit,
    PredictiveUnitType,
    PredictorSpec,
    Protocol,
    ServerType,
    Transport,
    is_prepackaged,
    walk_graph,
)
from infergraph.graph.spec.problems import Problem, format_path

__all__ = [
    "ANNOTATION_NO_ENGINE",
    "ANNOTATION_SVC_NAME",
    "KAFKA_ENV",
    "Problem",
    "count_nodes",
    "is_combiner",
    "is_router",
    "validate",
]

ANNOTATION_NO_ENGINE = "seldon.io/no-engine"
ANNOTATION_SVC_NAME = "seldon.io/svc-name"
KAFKA_ENV = ("KAFKA_BROKER", "KAFKA_INPUT_TOPIC", "KAFKA_OUTPUT_TOPIC")

_BANDITS = frozenset(
    {Implementation.EPSILON_GREEDY, Implementation.THOMPSON_SAMPLING, Implementation.UCB1}
)
_NO_TENSORFLOW_PROTOCOL = frozenset(
    {
        Implementation.SKLEARN_SERVER,
        Implementation.XGBOOST_SERVER,
        Implementation.MLFLOW_SERVER,
        Implementation.HUGGINGFACE_SERVER,
    }
)
_UNKNOWN = (None, Implementation.UNKNOWN_IMPLEMENTATION)


def validate(deployment: Deployment) -> list[Problem]:
    """Every problem of a loaded deployment, as written or defaulted; empty if it is valid."""
    spec = deployment.spec
    problems = [*_check_predictors(spec), *_check_traffic(spec), *_check_kafka(spec)]
    for index, predictor in enumerate(spec.predictors):
        problems += _check_graph(spec, predictor, f"spec.predictors[{index}]")
    problems += _check_transports(spec)
    return problems


def count_nodes(node: PredictiveUnit) -> int:
    """The number of nodes in a graph."""
    return sum(1 for _ in walk_graph(node, ""))


def is_router(node: PredictiveUnit) -> bool:
    """A node that chooses among its children: by type, by method, or by implementation."""
    return (
        node.type == PredictiveUnitType.ROUTER
        or Method.ROUTE in (node.methods or ())
        or _implied_type(node) == PredictiveUnitType.ROUTER
    )


def is_combiner(node: PredictiveUnit) -> bool:
    """A node that merges the outputs of all its children."""
    return (
        node.type == PredictiveUnitType.COMBINER
        or Method.AGGREGATE in (node.methods or ())
        or _implied_type(node) == PredictiveUnitType.COMBINER
    )


def _implied_type(node: PredictiveUnit) -> PredictiveUnitType | None:
    return BUILTIN_IMPLEMENTATIONS.get(node.implementation or "")


def _check_predictors(spec: DeploymentSpec) -> Iterator[Problem]:
    names: dict[str, int] = {}
    services: dict[str, int] = {}
    shadow: int | None = None
    for index, predictor in enumerate(spec.predictors):
        path = f"spec.predictors[{index}]"
        if predictor.name in names:
            yield Problem(
                f"{path}.name",
                f"predictor name '{predictor.name}' is already used by "
                f"spec.predictors[{names[predictor.name]}]; predictor names must be unique",
            )
        names.setdefault(predictor.name, index)
        no_engine = predictor.annotations.get(ANNOTATION_NO_ENGINE)
        size = count_nodes(predictor.graph)
        if no_engine is not None and no_engine.lower() != "false" and size > 1:
            yield Problem(
                format_path(["annotations", ANNOTATION_NO_ENGINE], path),
                f"running without an orchestrator needs a single-node graph, and this graph "
                f"has {size} nodes; remove the annotation or reduce the graph to one node",
            )
        service = predictor.annotations.get(ANNOTATION_SVC_NAME)
        if service is not None and service in services:
            yield Problem(
                format_path(["annotations", ANNOTATION_SVC_NAME], path),
                f"service name '{service}' is already used by spec.predictors"
                f"[{services[service]}]; {ANNOTATION_SVC_NAME} must be unique",
            )
        if service is not None:
            services.setdefault(service, index)
        if predictor.shadow and len(spec.predictors) == 1:
            yield Problem(
                f"{path}.shadow",
                "the only predictor cannot be a shadow: a shadow gets a copy of the traffic "
                "another predictor serves; add that predictor or remove 'shadow'",
            )
        elif predictor.shadow and shadow is not None:
            yield Problem(
                f"{path}.shadow",
                f"at most one predictor can be a shadow, and spec.predictors[{shadow}] already is",
            )
        if predictor.shadow and shadow is None:
            shadow = index


def _check_traffic(spec: DeploymentSpec) -> Iterator[Problem]:
    for index, predictor in enumerate(spec.predictors):
        if not 0 <= predictor.traffic <= 100:
            yield Problem(
                f"spec.predictors[{index}].traffic",
                f"traffic is a percentage between 0 and 100, got {predictor.traffic}",
            )
    serving = [p for p in spec.predictors if not p.shadow]
    total = sum(p.traffic for p in serving)
    if len(serving) > 1 and total != 100:
        shares = ", ".join(f"{p.name}: {p.traffic}" for p in serving)
        yield Problem(
            "spec.predictors",
            f"the traffic of the non-shadow predictors must sum to 100, got {total} ({shares})",
        )
    if len(spec.predictors) == 1 and 0 < total < 100:
        yield Problem(
            "spec.predictors[0].traffic",
            f"a single predictor takes all the traffic: set traffic to 100 or leave it out, "
            f"got {total}",
        )


def _check_kafka(spec: DeploymentSpec) -> Iterator[Problem]:
    if spec.server_type != ServerType.KAFKA:
        return
    for index, predictor in enumerate(spec.predictors):
        given = {env.name for env in predictor.svc_orch_spec.env}
        missing = [name for name in KAFKA_ENV if name not in given]
        if missing:
            yield Problem(
                f"spec.predictors[{index}].svcOrchSpec.env",
                "serverType kafka needs the svcOrchSpec.env variables KAFKA_BROKER, "
                f"KAFKA_INPUT_TOPIC and KAFKA_OUTPUT_TOPIC; missing: {', '.join(missing)}",
            )


def _check_transports(spec: DeploymentSpec) -> Iterator[Problem]:
    typed = [
        (f"spec.predictors[{index}]{path}", node.endpoint.type)
        for index, predictor in enumerate(spec.predictors)
        for path, node in walk_graph(predictor.graph, ".graph")
        if node.endpoint is not None and node.endpoint.type is not None
    ]
    if spec.transport is not None:
        expected = "GRPC" if spec.transport == Transport.GRPC else "REST"
        for path, kind in typed:
            if kind != expected:
                yield Problem(
                    f"{path}.endpoint.type",
                    f"endpoint.type {kind} disagrees with spec.transport {spec.transport}; "
                    f"remove endpoint.type (spec.transport applies to every node) or set it "
                    f"to {expected}",
                )
        return
    if typed:
        first_path, first = typed[0]
        for path, kind in typed[1:]:
            if kind != first:
                yield Problem(
                    f"{path}.endpoint.type",
                    f"endpoint.type {kind} differs from {first} at {first_path}.endpoint.type; "
                    "a graph uses one transport: remove the endpoint types and set "
                    "spec.transport",
                )


def _check_graph(spec: DeploymentSpec, predictor: PredictorSpec, where: str) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for path, node in walk_graph(predictor.graph, f"{where}.graph"):
        if node.name in seen:
            yield Problem(
                f"{path}.name",
                f"node name '{node.name}' is already used at {seen[node.name]}; node names "
                "must be unique within a predictor, since containers match nodes by name",
            )
        seen.setdefault(node.name, path)
        yield from _check_implementation(spec, predictor, node, path, where)
        if node.logger is not None and node.logger.mode is None:
            yield Problem(f"{path}.logger.mode", "a logger needs a mode: all, request or response")
        yield from _check_children(node, path)
        yield from _check_parameters(node, path)


def _check_implementation(
    spec: DeploymentSpec, predictor: PredictorSpec, node: PredictiveUnit, path: str, where: str
) -> Iterator[Problem]:
    impl = node.implementation
    container = predictor.container(node.name)
    if impl in _UNKNOWN:
        if container is None:
            yield Problem(
                path,
                f"node '{node.name}' has no container named '{node.name}' in componentSpecs "
                f"and no implementation; add a container named '{node.name}' to "
                f"{where}.componentSpecs or set an implementation such as SKLEARN_SERVER",
            )
        if node.type == PredictiveUnitType.UNKNOWN_TYPE and not node.methods:
            yield Problem(
                f"{path}.methods",
                f"node '{node.name}' has type UNKNOWN_TYPE and no methods; set a known type "
                f"or list its methods ({', '.join(Method)})",
            )
        return
    if not is_prepackaged(impl):
        return
    if not node.model_uri and impl != Implementation.HUGGINGFACE_SERVER:
        yield Problem(
            f"{path}.modelUri",
            f"the prepackaged server {impl} needs modelUri, the location of the model "
            "(gs://, s3://, https://, pvc://, or any rclone remote)",
        )
    if spec.protocol == Protocol.TENSORFLOW and impl in _NO_TENSORFLOW_PROTOCOL:
        yield Problem(
            f"{path}.implementation",
            f"{impl} does not serve the tensorflow protocol; set spec.protocol to seldon or "
            "v2, or use TENSORFLOW_SERVER",
        )
    if impl not in PREPACKAGED_SERVERS and (container is None or not container.image):
        known = ", ".join(sorted(PREPACKAGED_SERVERS | set(BUILTIN_IMPLEMENTATIONS)))
        yield Problem(
            f"{path}.implementation",
            f"'{impl}' is not an implementation infergraph knows ({known}); to run a custom "
            f"server, give node '{node.name}' a container named '{node.name}' with an image",
        )


def _check_children(node: PredictiveUnit, path: str) -> Iterator[Problem]:
    count = len(node.children)
    if node.implementation == Implementation.RANDOM_ABTEST:
        if count != 2:
            yield Problem(
                f"{path}.children",
                f"RANDOM_ABTEST routes between exactly 2 children (A and B), and node "
                f"'{node.name}' has {count}",
            )
        return
    if count == 0 and is_router(node):
        yield Problem(
            f"{path}.children",
            f"router node '{node.name}' has no children to route to; add children or "
            "change its type",
        )
    elif count == 0 and is_combiner(node):
        yield Problem(
            f"{path}.children",
            f"combiner node '{node.name}' has no children to combine; add children or "
            "change its type",
        )


def _check_parameters(node: PredictiveUnit, path: str) -> Iterator[Problem]:
    values: dict[str, object] = {}
    positions: dict[str, int] = {}
    for index, parameter in enumerate(node.parameters):
        where = f"{path}.parameters[{index}]"
        if parameter.name in positions:
            yield Problem(
                f"{where}.name",
                f"parameter '{parameter.name}' is already given at "
                f"{path}.parameters[{positions[parameter.name]}]; give each parameter once",
            )
        positions.setdefault(parameter.name, index)
        item = {"name": parameter.name, "value": parameter.value, "type": str(parameter.type)}
        try:
            values[parameter.name] = parse_parameters([item])[parameter.name]
        except BadParameter:
            yield Problem(
                f"{where}.value",
                f"value {parameter.value!r} of parameter '{parameter.name}' is not a valid "
                f"{parameter.type}",
            )
    impl = node.implementation
    if impl == Implementation.RANDOM_ABTEST and "ratioA" in positions:
        yield from _check_ratio(node, path, positions["ratioA"])
    if impl in _BANDITS:
        yield from _check_branches(node, path, values, positions)


def _check_ratio(node: PredictiveUnit, path: str, index: int) -> Iterator[Problem]:
    # The orchestrator parses ratioA as a float whatever its declared type, as Seldon's did.
    parameter = node.parameters[index]
    raw = parameter.value
    try:
        ratio = float(raw)
    except ValueError:
        if parameter.type in (ParameterType.FLOAT, ParameterType.DOUBLE, ParameterType.INT):
            return  # already reported as a value that is not of its type
        ratio = float("nan")
    if not 0 <= ratio <= 1:
        yield Problem(
            f"{path}.parameters[{index}].value",
            f"ratioA is the probability of routing to the first child, a number between 0 "
            f"and 1, got {raw!r}",
        )


def _check_branches(
    node: PredictiveUnit, path: str, values: dict[str, object], positions: dict[str, int]
) -> Iterator[Problem]:
    count = len(node.children)
    if "n_branches" not in positions:
        yield Problem(
            f"{path}.parameters",
            f"{node.implementation} needs the INT parameter n_branches, the number of its "
            f"children ({count})",
        )
        return
    index = positions["n_branches"]
    if node.parameters[index].type != ParameterType.INT:
        yield Problem(
            f"{path}.parameters[{index}].type",
            f"n_branches is a count: declare it as type INT, not {node.parameters[index].type}",
        )
        return
    branches = values.get("n_branches")
    if isinstance(branches, int) and branches != count:
        yield Problem(
            f"{path}.parameters[{index}].value",
            f"n_branches is {branches} but node '{node.name}' has {count} children; "
            "they must match",
        )
