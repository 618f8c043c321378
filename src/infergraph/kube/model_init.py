"""The model-download init container, Seldon's storage initializer done by infergraph.

Every node with a ``modelUri`` gets an init container that runs ``infergraph fetch-model
<modelUri> /mnt/models`` into an ``emptyDir`` the model container then mounts read-only at
``/mnt/models``, so a pod needs no other image. A ``storageInitializerImage`` (Seldon's
rclone initializer, say) is run with Seldon's arguments instead. ``pvc://claim/path`` mounts
the claim and copies from it, and ``envSecretRefName`` hands credentials to the download
only, never to the model container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infergraph.graph.spec import Explainer, PredictiveUnit
from infergraph.kube.names import MAX_NAME

__all__ = ["MODEL_DIR", "ModelInit", "model_init"]

MODEL_DIR = "/mnt/models"
PVC_DIR = "/mnt/pvc"
_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "100Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


@dataclass(frozen=True, slots=True)
class ModelInit:
    """What one node's model download adds to its pod."""

    init_container: dict[str, Any]
    volumes: list[dict[str, Any]]
    model_mount: dict[str, Any]
    """The read-only mount of the model folder in the model container."""


def model_init(
    node: PredictiveUnit | Explainer, container: str, runtime_image: str
) -> ModelInit | None:
    """The init container, volumes and mount for the ``modelUri`` of ``node`` (a graph node or
    an explainer); None without one."""
    if not node.model_uri:
        return None
    volume = f"{container}-provision-location"[:MAX_NAME]
    volumes: list[dict[str, Any]] = [{"name": volume, "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": volume, "mountPath": MODEL_DIR}]
    source = node.model_uri
    if source.startswith("pvc://"):
        claim, _, path = source.removeprefix("pvc://").partition("/")
        pvc_volume = f"{container}-pvc-source"[:MAX_NAME]
        volumes.append(
            {"name": pvc_volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mounts.append({"name": pvc_volume, "mountPath": PVC_DIR, "readOnly": True})
        source = f"{PVC_DIR}/{path}".rstrip("/")
    init: dict[str, Any] = {"name": f"{container}-model-initializer"[:MAX_NAME]}
    if node.storage_initializer_image:
        init["image"] = node.storage_initializer_image
        init["args"] = [source, MODEL_DIR]
    else:
        init["image"] = runtime_image
        init["command"] = ["infergraph", "fetch-model", source, MODEL_DIR]
    init["imagePullPolicy"] = "IfNotPresent"
    init["resources"] = _RESOURCES
    init["volumeMounts"] = mounts
    if node.env_secret_ref_name:
        init["envFrom"] = [{"secretRef": {"name": node.env_secret_ref_name}}]
    init["terminationMessagePath"] = "/dev/termination-log"
    init["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return ModelInit(
        init_container=init,
        volumes=volumes,
        model_mount={"name": volume, "mountPath": MODEL_DIR, "readOnly": True},
    )
