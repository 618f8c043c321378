"""Nodes served in this process: user classes named by a container's ``MODEL_NAME``
(as Seldon's s2i images run them) and the built-in routers and combiners.
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

SELDON_ROUTER_IMAGES = {
    "seldonio/mab_epsilon_greedy": "EPSILON_GREEDY",
    "seldonio/mab_thompson_sampling": "THOMPSON_SAMPLING",
}
"""Seldon's prebuilt router images, served by the built-in router with the same parameters."""


def _image_builtin(image: str | None) -> str | None:
    if not image:
        return None
    name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for known, implementation in SELDON_ROUTER_IMAGES.items():
        if name == known or name.endswith("/" + known):
            return implementation
    return None


BUILTIN_TYPES = tuple(BUILTIN_CLASSES.values())


def _parameters(node: PredictiveUnit, where: str) -> dict[str, Any]:
    raw = [{"name": p.name, "value": p.value, "type": str(p.type)} for p in node.parameters]
    return parse_parameters(raw, where)


def user_object(
    deployment: Deployment,
    predictor: PredictorSpec,
    node: PredictiveUnit,
    path: str | Path,
    store: BanditStore | None,
) -> tuple[Any, str, dict[str, str]]:
    """Build the object behind a node: (object, image for requestPath, container env)."""
    where = f"node {node.name!r} parameters"
    implementation = node.implementation or ""
    container = predictor.container(node.name)
    if container is not None and not any(e.name == "MODEL_NAME" for e in container.env):
        implementation = _image_builtin(container.image) or implementation
    builtin = builtin_class(implementation)
    if builtin is not None:
        params = _parameters(node, where)
        if store is not None and issubclass(builtin, BanditRouter):
            params["store"] = store
            params["key"] = seldon_key(
                deployment.metadata.name, predictor.name, node.name, "-bandit"
            )
        return instantiate(builtin, params), implementation, {}
    if is_prepackaged(implementation):
        return _prepackaged(node, implementation, container, where)
    if container is None:
        raise LoadError(
            f"node {node.name!r} has no container named {node.name!r} in componentSpecs",
            node=node.name,
        )
    env = {e.name: e.value for e in container.env if e.value is not None}
    interface = env.get("MODEL_NAME")
    if not interface:
        raise LoadError(
            f"node {node.name!r}: container {container.name!r} (image {container.image}) has no "
            "env MODEL_NAME; infergraph runs a node locally from the Python class MODEL_NAME "
            "names (Module or module.Class), as Seldon's s2i images do",
            node=node.name,
        )
    try:
        cls = import_component(interface, path)
        return instantiate(cls, _parameters(node, where)), container.image or interface, env
    except InferGraphError as exc:
        raise LoadError(f"node {node.name!r}: {exc}", node=node.name) from exc


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
    registry: Registry | None = None,
    store: BanditStore | None = None,
    settings_hook: Callable[[ComponentSettings], ComponentSettings] | None = None,
) -> ClientFactory:
    """A factory that serves every node in this process, sharing one metrics registry."""
    shared = registry or Registry()

    def build(
        deployment: Deployment, predictor: PredictorSpec, node: PredictiveUnit
    ) -> tuple[NodeClient, str]:
        user, image, env = user_object(deployment, predictor, node, path, store)
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
