"""What ``infergraph serve`` needs on this machine beyond a valid spec.

A manifest can pass Seldon's rules and still not run here: a container whose image names no
Python class (no ``MODEL_NAME`` in its env, in its source folder's ``.s2i/environment``, or
through an ``--image`` mapping), or a prepackaged server whose local ``modelUri`` does not
exist (or is a ``pvc://`` claim). On a cluster the image and the storage initializer supply
those; locally nothing does. ``serve`` refuses such a deployment before starting anything,
and ``validate --path`` / ``--image`` reports the same problems, each with its field path,
so one run finds them all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from infergraph.errors import LoadError
from infergraph.graph.spec.kube_types import Container
from infergraph.graph.spec.model_sources import ModelSources
from infergraph.graph.spec.models import (
    Deployment,
    PredictiveUnit,
    PredictorSpec,
    is_prepackaged,
    walk_graph,
)
from infergraph.graph.spec.problems import Problem
from infergraph.routers import builtin_class
from infergraph.servers import prepackaged_class
from infergraph.servers.fetch import local_path, scheme_of

__all__ = ["check_serve"]


def check_serve(
    deployment: Deployment, sources: ModelSources, remote: Collection[str] = ()
) -> list[Problem]:
    """Every problem that would stop ``infergraph serve`` from running ``deployment`` with
    these source folders; empty when it can start. Nodes in ``remote`` (by name or
    ``predictor/node``) are served elsewhere, so nothing of theirs is needed here."""
    problems: list[Problem] = []
    for index, predictor in enumerate(deployment.spec.predictors):
        where = f"spec.predictors[{index}]"
        for path, node in walk_graph(predictor.graph, f"{where}.graph"):
            if node.name in remote or f"{predictor.name}/{node.name}" in remote:
                continue
            problems += _check_node(predictor, node, path, where, sources)
    return problems


def _check_node(
    predictor: PredictorSpec, node: PredictiveUnit, path: str, where: str, sources: ModelSources
) -> Iterator[Problem]:
    implementation = node.implementation or ""
    if builtin_class(implementation) is not None:
        return
    if is_prepackaged(implementation):
        if node.model_uri and prepackaged_class(implementation) is not None:
            yield from _check_model_uri(node, node.model_uri, f"{path}.modelUri")
        return
    found = _container(predictor, node.name, where)
    if found is None:
        return  # no container and no implementation: reported by validate()
    container, container_path = found
    try:
        source = sources.resolve(container)
    except LoadError as exc:
        yield Problem(f"{container_path}.env", f"node {node.name!r}: {exc.message}")
        return
    if source.builtin is None and not source.model_name:
        message = sources.explain_missing(container, source)
        yield Problem(f"{container_path}.env", f"node {node.name!r}: {message}")


def _container(predictor: PredictorSpec, name: str, where: str) -> tuple[Container, str] | None:
    """The first container named ``name`` (the one serve runs) and its field path."""
    for i, component in enumerate(predictor.component_specs):
        for j, container in enumerate(component.spec.containers):
            if container.name == name:
                return container, f"{where}.componentSpecs[{i}].spec.containers[{j}]"
    return None


def _check_model_uri(node: PredictiveUnit, uri: str, path: str) -> Iterator[Problem]:
    scheme = scheme_of(uri)
    server = f"node {node.name!r}: the {node.implementation} modelUri {uri!r}"
    if scheme == "pvc":
        yield Problem(
            path,
            f"{server} names a Kubernetes PersistentVolumeClaim, which only a cluster mounts; "
            "to serve on this machine, give the path of the model folder instead",
        )
    if scheme not in ("", "file"):
        return  # remote: fetched when the server loads
    local = local_path(uri)
    if not local.exists():
        yield Problem(
            path,
            f"{server} is a local path, and there is no file or folder at {local.absolute()}; "
            "infergraph serve loads a local model in place: fix the path (a relative one "
            "starts from the folder serve runs in) or give a remote URI (s3://, gs://, "
            "https://)",
        )
