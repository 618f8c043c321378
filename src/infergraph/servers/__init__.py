"""Prepackaged model servers and model storage.

A graph node with ``implementation: SKLEARN_SERVER`` (or ``XGBOOST_SERVER``,
``LIGHTGBM_SERVER``, ``MLFLOW_SERVER``, ``ONNX_SERVER``) and a ``modelUri`` is served by a
class from here, built with the node's parameters plus ``model_uri`` exactly as Seldon's
operator builds its server images. The classes are ordinary Seldon-style components, and
each ML library is an optional extra imported only when its server loads a model.
``storage`` turns a model URI (a path, ``file://``, ``s3://``, ``gs://``, ``http(s)://``)
into a local folder, downloading a remote model once into a cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from infergraph.servers.base import ModelServer
from infergraph.servers.lightgbm_server import LightGBMServer
from infergraph.servers.mlflow_server import MLFlowServer
from infergraph.servers.onnx_server import ONNXServer
from infergraph.servers.sklearn_server import SKLearnServer
from infergraph.servers.storage import download, resolve
from infergraph.servers.xgboost_server import XGBoostServer

__all__ = [
    "PREPACKAGED_CLASSES",
    "LightGBMServer",
    "MLFlowServer",
    "ModelServer",
    "ONNXServer",
    "SKLearnServer",
    "XGBoostServer",
    "download",
    "interface_name",
    "prepackaged_class",
    "resolve",
]

PREPACKAGED_CLASSES: Mapping[str, type[ModelServer]] = MappingProxyType(
    {
        cls.implementation: cls
        for cls in (SKLearnServer, XGBoostServer, LightGBMServer, MLFlowServer, ONNXServer)
    }
)
"""Graph node ``implementation`` -> the class that serves it (read-only)."""


def prepackaged_class(implementation: str) -> type[ModelServer] | None:
    """The server class for a prepackaged ``implementation``; None if infergraph has none
    (TENSORFLOW_SERVER, TRITON_SERVER, HUGGINGFACE_SERVER, TEMPO_SERVER, custom names)."""
    return PREPACKAGED_CLASSES.get(implementation)


def interface_name(cls: type[ModelServer]) -> str:
    """How ``infergraph microservice`` (env MODEL_NAME) names the class."""
    return f"{__name__}.{cls.__name__}"
