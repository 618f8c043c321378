"""Nodes served in this process: user classes named by a container's ``MODEL_NAME``
(as Seldon's s2i images run them; the env may come from the source folder's
``.s2i/environment``, see :mod:`infergraph.graph.spec.model_sources`) and the built-in routers
and combiners.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from infergraph.components.dataplane import ComponentDataPlane
from infergraph.components.loader import import_component, instantiate
from infergraph.components.parameters import parse_parameters
from infergraph.errors import InferGraphError, LoadError
from infergraph.graph.plan import ClientFactory, NodeClient
from infergraph.graph.spec import (
    Container,
    Deployment,
    PredictiveUnit,
    PredictorSpec,
    is_prepackaged,
)
from infergraph.graph.spec.model_sources import SELDON_ROUTER_IMAGES, ModelSources
from infergraph.observability.metrics import Registry
from infergraph.routers import (
    BUILTIN_CLASSES,
    BanditRouter,
    BanditStore,
    builtin_class,
    seldon_key,
)
from infergraph.servers import PREPACKAGED_CLASSES, prepackaged_class
from infergraph.settings import ComponentSettings

__all__ = ["SELDON_ROUTER_IMAGES", "local_factory", "user_object"]


BUILTIN_TYPES = tuple(BUILTIN_CLASSES.values())


def _runs_without_code(implementation: str) -> bool:
    """A built-in router or combiner, or a prepackaged server: no container code runs."""
    return builtin_class(implementation) is not None or is_prepackaged(implementation)


def _parameters(node: PredictiveUnit, where: str) -> dict[str, Any]:
    raw = [{"name": p.name, "value": p.value, "type": str(p.type)} for p in node.parameters]
    return parse_parameters(raw, where)


def user_object(
    deployment: Deployment,
    predictor: PredictorSpec,
    node: PredictiveUnit,
    sources: ModelSources,
    store: BanditStore | None,
) -> tuple[Any, str, dict[str, str], Path | None]:
    """Build the object behind a node: (object, image for requestPath, container env, the
    folder its class came from; None for built-ins and prepackaged servers)."""
    where = f"node {node.name!r} parameters"
    implementation = node.implementation or ""
    container = predictor.container(node.name)
    source = None
    if container is not None and not _runs_without_code(implementation):
        source = sources.resolve(container)
        implementation = source.builtin or implementation
    builtin = builtin_class(implementation)
    if builtin is not None:
        params = _parameters(node, where)
        if store is not None and issubclass(builtin, BanditRouter):
            params["store"] = store
            params["key"] = seldon_key(
                deployment.metadata.name, predictor.name, node.name, "-bandit"
            )
        return instantiate(builtin, params), implementation, {}, None
    if is_prepackaged(implementation):
        return (*_prepackaged(node, implementation, container, where), None)
    if container is None or source is None:
        raise LoadError(
            f"node {node.name!r} has no container named {node.name!r} in componentSpecs",
            node=node.name,
        )
    interface = source.model_name
    if not interface:
        raise LoadError(
            f"node {node.name!r}: {sources.explain_missing(container, source)}", node=node.name
        )
    try:
        cls = import_component(interface, source.folder)
        instance = instantiate(cls, _parameters(node, where))
    except InferGraphError as exc:
        raise LoadError(f"node {node.name!r}: {exc}", node=node.name) from exc
    return instance, container.image or interface, source.env, source.folder


def _prepackaged(
    node: PredictiveUnit, implementation: str, container: Container | None, where: str
) -> tuple[Any, str, dict[str, str]]:
    """A prepackaged server, built as Seldon's operator builds its image: the node's
    parameters plus ``model_uri`` (here the modelUri itself, which the server resolves)."""
    server = prepackaged_class(implementation)
    if server is None:
        known = ", ".join(sorted(PREPACKAGED_CLASSES))
        raise LoadError(
            f"node {node.name!r}: implementation {implementation} is not supported by "
            f"infergraph serve, which runs {known}; for another server give the node a "
            "container whose env MODEL_NAME names a Python class",
            node=node.name,
        )
    params = _parameters(node, where)
    if node.model_uri:
        params["model_uri"] = node.model_uri
    try:
        user = instantiate(server, params)
    except InferGraphError as exc:
        raise LoadError(f"node {node.name!r}: {exc}", node=node.name) from exc
    image = container.image if container is not None and container.image else implementation
    return user, image, {}


def _one_module_per_name(
    modules: dict[str, tuple[Path, str]], interface: str, folder: Path, node: str
) -> None:
    """Refuse two source folders whose classes share a module name: in one process a
    module name stands for one file, so the second node would get the first one's class."""
    top = interface.partition(".")[0]
    where = folder.resolve()
    first = modules.setdefault(top, (where, node))
    if first[0] != where:
        raise LoadError(
            f"node {node!r}: its class {interface!r} is in module {top!r} of {where}, but "
            f"node {first[1]!r} already imported a module {top!r} from {first[0]}; in one "
            "process a module name stands for one file: rename one of the modules, or serve "
            "with --processes (each node in its own process)",
            node=node,
        )


REDIS_THREADS = 16


def _builtin_execution(
    builtin: bool, store: BanditStore | None, settings: ComponentSettings
) -> dict[str, Any]:
    """Built-ins take microseconds, so they run inline (a thread hop would cost more than
    they do), unless their state lives in Redis: that is network I/O, which must never
    block the event loop, so they get a thread pool wide enough for concurrent requests."""
    if not builtin:
        return {"sync_mode": settings.sync_mode}
    if store is None:
        return {"sync_mode": "inline"}
    return {"sync_mode": "thread", "threads": max(settings.threads, REDIS_THREADS)}


def local_factory(
    *,
    path: str | Path = ".",
    sources: ModelSources | None = None,
    registry: Registry | None = None,
    store: BanditStore | None = None,
    settings_hook: Callable[[ComponentSettings], ComponentSettings] | None = None,
) -> ClientFactory:
    """A factory that serves every node in this process, sharing one metrics registry.

    Classes are imported from ``sources`` (by default every container's folder is ``path``).
    """
    shared = registry or Registry()
    sources = sources or ModelSources.of(path)
    modules: dict[str, tuple[Path, str]] = {}

    def build(
        deployment: Deployment, predictor: PredictorSpec, node: PredictiveUnit
    ) -> tuple[NodeClient, str]:
        user, image, env, folder = user_object(deployment, predictor, node, sources, store)
        if folder is not None:
            _one_module_per_name(modules, env["MODEL_NAME"], folder, node.name)
        builtin = not env and isinstance(user, BUILTIN_TYPES)
        settings = ComponentSettings.from_env(env, annotations={})
        settings = settings.replace(
            unit_id=node.name,
            unit_image=image,
            predictor_id=predictor.name,
            predictor_labels=dict(predictor.labels),
            deployment_id=deployment.metadata.name,
            **_builtin_execution(builtin, store, settings),
        )
        if settings_hook is not None:
            settings = settings_hook(settings)
        try:
            return ComponentDataPlane(user, settings, registry=shared), image
        except InferGraphError as exc:
            raise LoadError(f"node {node.name!r}: {exc}", node=node.name) from exc

    return build
