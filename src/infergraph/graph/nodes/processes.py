"""Nodes served by other processes: which ones, on which ports, with which env.

:func:`plan_processes` maps a deployment onto processes as Seldon's operator maps it onto
pods: each componentSpec container that implements a graph node, once per replica, with the
env the operator gives a container. Built-ins have no container and stay in the orchestrator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from infergraph.graph.spec import Deployment, PredictorSpec, is_prepackaged, walk_graph
from infergraph.graph.spec.model_sources import ModelSources
from infergraph.routers import builtin_class
from infergraph.servers import interface_name, prepackaged_class
from infergraph.servers.fetch import local_path, scheme_of

__all__ = ["HOST", "NodeProcess", "plan_processes"]

HOST = "127.0.0.1"
"""Where node processes listen: the orchestrator is their only client."""


@dataclass(frozen=True)
class NodeProcess:
    """One process to run: a replica of the container that implements a node."""

    predictor: str
    node: str
    image: str
    env: dict[str, str]
    """The container's env and what Seldon's operator adds (MODEL_NAME, PREDICTIVE_UNIT_ID...)."""
    http_port: int
    grpc_port: int
    metrics_port: int
    tag: str
    """How logs and errors name it: ``node-replica`` (``predictor/node-replica`` if needed)."""
    folder: str = ""
    """Its source folder: where its class is imported from, and its working directory
    (empty: the ``--path`` folder)."""

    @property
    def address(self) -> str:
        """Its gRPC ``host:port``."""
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_address(self) -> str:
        """Its REST ``host:port``."""
        return f"{HOST}:{self.http_port}"


def replicas_of(deployment: Deployment, predictor: PredictorSpec, index: int) -> int:
    """Seldon's precedence; an autoscaler's minimum when the componentSpec has one."""
    component = predictor.component_specs[index]
    if component.keda_spec is not None:
        return max(1, component.keda_spec.min_replica_count or 1)
    if component.hpa_spec is not None:
        return max(1, component.hpa_spec.min_replicas or 1)
    for value in (component.replicas, predictor.replicas, deployment.spec.replicas):
        if value is not None:
            return max(1, value)  # 0 (scaled to zero) still runs one here
    return 1


def _from_here(uri: str) -> str:
    """A relative model path made absolute from this process's folder, so a node process
    (whose folder is its source folder) finds the model the in-process server would."""
    return str(local_path(uri).absolute()) if scheme_of(uri) == "" else uri


def plan_processes(
    deployment: Deployment, port: Callable[[], int], sources: ModelSources | None = None
) -> list[NodeProcess]:
    """Every node process of the deployment; ``port()`` hands out a free port, ``sources``
    the containers' source folders and ``.s2i/environment``.

    Nodes left out (built-ins, and nodes that cannot be served) go to the local factory,
    which serves or refuses them exactly as it does without ``--processes``."""
    sources = sources or ModelSources()
    several = len(deployment.spec.predictors) > 1
    out = []
    for predictor in deployment.spec.predictors:
        for _, node in walk_graph(predictor.graph, "graph"):
            implementation = node.implementation or ""
            server = prepackaged_class(implementation) if node.model_uri else None
            if builtin_class(implementation) or (is_prepackaged(implementation) and not server):
                continue
            found = next(((i, c) for i, c in predictor.containers() if c.name == node.name), None)
            env: dict[str, str] = {}
            folder = ""
            if found is not None and server is None:
                source = sources.resolve(found[1])
                if source.builtin is not None:
                    continue
                env, folder = dict(source.env), str(source.folder.resolve())
            elif found is not None:
                env = {e.name: e.value for e in found[1].env if e.value is not None}
            params = [
                {"name": p.name, "value": p.value, "type": str(p.type)} for p in node.parameters
            ]
            if server is not None:  # as Seldon's operator runs its image: model_uri appended
                env["MODEL_NAME"] = interface_name(server)
                uri = _from_here(str(node.model_uri))
                params.append({"name": "model_uri", "value": uri, "type": "STRING"})
            if found is None or not env.get("MODEL_NAME"):
                continue
            index, container = found
            image = container.image or (implementation if server else env["MODEL_NAME"])
            env |= {
                "PREDICTIVE_UNIT_ID": node.name,
                "PREDICTIVE_UNIT_IMAGE": image,
                "PREDICTIVE_UNIT_PARAMETERS": orjson.dumps(params).decode(),
                "PREDICTOR_ID": predictor.name,
                "PREDICTOR_LABELS": orjson.dumps(predictor.labels).decode(),
                "SELDON_DEPLOYMENT_ID": deployment.metadata.name,
            }
            for replica in range(replicas_of(deployment, predictor, index)):
                tag = f"{predictor.name}/" * several + f"{node.name}-{replica}"
                ports = (port(), port(), port())
                out.append(NodeProcess(predictor.name, node.name, image, env, *ports, tag, folder))
    return out
