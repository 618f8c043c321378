"""``render``: a deployment spec as the Kubernetes objects that run it. Pure.

Same input, same output: no I/O, no environment, no clock, and a fixed order (ConfigMaps,
Services, Deployments, autoscalers, budgets, routes; each kind in spec order), so
``infergraph render`` output can be committed and diffed, and an operator can apply exactly
what ``render`` returns. The resource is validated and defaulted first; a problem that only
matters on Kubernetes (a name that is no DNS label, a server with no image) is reported
like any validation problem, with its field path.
"""

from __future__ import annotations

import copy
from typing import Any

from infergraph.graph.spec import Deployment, PredictorSpec, Problem, SpecError
from infergraph.graph.spec.defaults import ANNOTATION_SEPARATE_ENGINE, default
from infergraph.graph.spec.validate import ANNOTATION_NO_ENGINE, validate
from infergraph.kube.autoscalers import autoscaler, disruption_budget
from infergraph.kube.deployments import (
    PodExtras,
    component_deployment,
    predictor_pod_labels,
)
from infergraph.kube.engines import ORCHESTRATOR_PORTS, orchestrator_deployment, router
from infergraph.kube.explainer import explainer_objects
from infergraph.kube.ingress import gateway_api_objects, istio_objects, shadow, weights
from infergraph.kube.names import (
    MAX_NAME,
    deployment_name,
    is_dns_label,
    service_label,
)
from infergraph.kube.options import RenderOptions
from infergraph.kube.orchestrator import (
    CHECKSUM_ANNOTATION,
    GRPC_PORT,
    HTTP_PORT,
    config_annotations,
    config_map,
    config_volume,
    node_protocol,
    orchestrator_container,
    remote_nodes,
    scaled_out,
)
from infergraph.kube.services import node_services, predictor_service

__all__ = ["RENDERED_KINDS", "render"]

RENDERED_KINDS = (
    "ConfigMap",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "ScaledObject",
    "PodDisruptionBudget",
    "VirtualService",
    "DestinationRule",
    "HTTPRoute",
)
"""Every kind ``render`` returns, in the order it returns them."""


def render(resource: Deployment, options: RenderOptions | None = None) -> list[dict[str, Any]]:
    """The Kubernetes objects of ``resource`` (a SeldonDeployment in any served version, or
    a GraphDeployment), as plain dicts in a fixed order.

    Raises :class:`~infergraph.graph.spec.problems.SpecError` listing every problem when
    the resource is invalid or cannot run on Kubernetes.
    """
    options = options or RenderOptions()
    resource = resource.model_copy(deep=True)
    if options.namespace:
        resource.metadata.namespace = options.namespace
    problems = validate(resource) + _name_problems(resource)
    if problems:
        raise SpecError(problems)
    deployment = default(resource)
    objects: list[dict[str, Any]] = []
    for index, predictor in enumerate(deployment.spec.predictors):
        found, rendered = _predictor(deployment, predictor, f"spec.predictors[{index}]", options)
        problems += found
        objects += rendered
    if problems:
        raise SpecError(problems)
    objects += _traffic(deployment, options)
    objects.sort(key=lambda obj: RENDERED_KINDS.index(obj["kind"]))
    collisions = _collisions(objects)
    if collisions:
        raise SpecError(collisions)
    return copy.deepcopy(objects)


def _collisions(objects: list[dict[str, Any]]) -> list[Problem]:
    """Two objects of one kind with one name: Seldon's naming joins names with ``-``, so
    predictor ``a-b`` and predictor ``a`` with container ``b`` can meet."""
    seen: set[tuple[str, str]] = set()
    problems = []
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in seen:
            problems.append(
                Problem(
                    "spec.predictors",
                    f"two {key[0]}s would both be named '{key[1]}'; rename a predictor, a "
                    "container or a componentSpec (metadata.name), or set seldon.io/svc-name",
                )
            )
        seen.add(key)
    return problems


def _name_problems(resource: Deployment) -> list[Problem]:
    """Names that become Kubernetes names or labels must be DNS labels."""
    problems = []

    def check(path: str, name: str, what: str) -> None:
        if not is_dns_label(name):
            problems.append(
                Problem(
                    path,
                    f"{what} '{name}' is not a valid Kubernetes name: use at most 63 lowercase "
                    "letters, digits and '-', starting and ending with a letter or digit",
                )
            )

    check("metadata.name", resource.metadata.name, "deployment name")
    check("metadata.namespace", resource.metadata.namespace, "namespace")
    for p, predictor in enumerate(resource.spec.predictors):
        check(f"spec.predictors[{p}].name", predictor.name, "predictor name")
        for c, component in enumerate(predictor.component_specs):
            for k, container in enumerate(component.spec.containers):
                path = f"spec.predictors[{p}].componentSpecs[{c}].spec.containers[{k}].name"
                check(path, container.name, "container name")
                label = service_label(container.name)
                if is_dns_label(container.name) and len(label) > MAX_NAME:
                    problems.append(
                        Problem(
                            path,
                            f"container name '{container.name}' is too long for the pod label "
                            f"'{label}' its Service selects on: use at most "
                            f"{MAX_NAME - len(service_label(''))} characters",
                        )
                    )
    return problems


def _flag(config: dict[str, str], key: str) -> bool:
    return key in config and config[key].lower() != "false"


def _predictor(
    deployment: Deployment, predictor: PredictorSpec, path: str, options: RenderOptions
) -> tuple[list[Problem], list[dict[str, Any]]]:
    sdep = deployment.metadata.name
    config = config_annotations(deployment, predictor)
    # Read where defaulting and validation read them, so addresses and pods agree.
    separate = ANNOTATION_SEPARATE_ENGINE in deployment.spec.annotations
    no_engine = _flag(predictor.annotations, ANNOTATION_NO_ENGINE)
    if no_engine and predictor.container(predictor.graph.name) is None:
        problem = Problem(
            f'{path}.annotations["{ANNOTATION_NO_ENGINE}"]',
            f"without an orchestrator the root node '{predictor.graph.name}' must run in a "
            "container of its own; add one, or remove the annotation",
        )
        return [problem], []
    # Defaulting gives the nodes of componentSpecs[0] the address localhost, so the
    # orchestrator joins that pod; with no-engine the root model's pod is the entry point.
    root = predictor.graph.name
    root_index = next((i for i, c in predictor.containers() if c.name == root), 0)
    objects: list[dict[str, Any]] = []
    problems: list[Problem] = []
    engine_pod = PodExtras()
    if not no_engine:
        served = scaled_out(deployment, [predictor])
        config_object, digest = config_map(
            deployment, served, f"{sdep}-{predictor.name}-graph", predictor
        )
        objects.append(config_object)
        engine_pod = PodExtras(
            containers=[
                orchestrator_container(
                    deployment,
                    predictor,
                    options.runtime_image,
                    remote_nodes(deployment, [predictor], router=False),
                    node_protocol(deployment, [predictor]),
                )
            ],
            volumes=[config_volume(config_object["metadata"]["name"])],
            labels={
                **predictor_pod_labels(deployment, predictor),
                "seldon-deployment-contains-svcorch": "true",
            },
            annotations={CHECKSUM_ANNOTATION: digest},
        )
    for index, component in enumerate(predictor.component_specs):
        name = deployment_name(sdep, predictor, index, component)
        extras = PodExtras()
        if no_engine and index == root_index:
            extras = PodExtras(labels=predictor_pod_labels(deployment, predictor))
        elif not no_engine and not separate and index == 0:
            extras = engine_pod
        rendered, found = component_deployment(
            deployment, predictor, path, index, options, extras, config
        )
        problems += found
        objects.append(rendered)
        for extra in (
            autoscaler(deployment, predictor, component, name),
            disruption_budget(deployment, predictor, component, name),
        ):
            if extra is not None:
                objects.append(extra)
    if not no_engine and (separate or not predictor.component_specs):
        objects.append(orchestrator_deployment(deployment, predictor, engine_pod, config, options))
    ports = ORCHESTRATOR_PORTS
    endpoint = predictor.graph.endpoint
    if no_engine and endpoint is not None and endpoint.http_port and endpoint.grpc_port:
        ports = (("http", HTTP_PORT, endpoint.http_port), ("grpc", GRPC_PORT, endpoint.grpc_port))
    objects.append(predictor_service(deployment, predictor, ports, config))
    objects += node_services(deployment, predictor)
    found, explainer = explainer_objects(deployment, predictor, path, options.runtime_image)
    problems += found
    objects += explainer
    return problems, objects


def _traffic(deployment: Deployment, options: RenderOptions) -> list[dict[str, Any]]:
    """Who splits traffic across predictors and mirrors to the shadow."""
    if options.ingress == "istio":
        return istio_objects(deployment, options)
    if options.ingress == "gateway-api":
        return gateway_api_objects(deployment, options)
    if len(weights(deployment)) == 1 and shadow(deployment) is None:
        return []  # one predictor: its Service is the entry point
    return router(deployment, options)
