"""What every prepackaged model server shares: the model folder, metadata, optional imports.

A prepackaged server is an ordinary Seldon-style component class, served by the same
runtime as a user's class (``__init__`` takes the node's parameters, ``load()`` reads the
model, ``predict()`` answers). Keeping it ordinary means batching, metrics, both protocols
and the graph all work for it without a special case anywhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import yaml

from infergraph.errors import BadMetadata, LoadError
from infergraph.servers import storage
from infergraph.settings import ComponentSettings

__all__ = ["METADATA_FILE", "ModelServer", "require"]

METADATA_FILE = "metadata.yaml"
"""Seldon's convention: model metadata in a YAML file next to the model."""


def require(module: str, extra: str, server: str) -> ModuleType:
    """Import an optional ML library, or say exactly which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LoadError(
            f"{server} needs the Python package {module!r}, which cannot be imported "
            f"({exc}): run pip install 'infergraph[{extra}]'"
        ) from exc


class ModelServer:
    """Base of the prepackaged servers: resolves ``model_uri`` once and reads metadata.

    ``settings`` (cache folder, S3 endpoint, pickle trust) is read from the environment
    when not given, because the runtime builds a component from its parameters alone.
    Each server also has ``v2_output_name``: the name of the single output tensor in its
    Open Inference Protocol (V2) answers.
    """

    implementation: ClassVar[str] = ""
    """The graph ``implementation`` this class serves (``SKLEARN_SERVER``...)."""
    platform: ClassVar[str] = ""
    """Reported as ``platform`` in the default metadata."""
    model_files: ClassVar[tuple[str, ...]] = ()
    """File names looked for in the model folder, in order of preference."""

    def __init__(self, model_uri: str, settings: ComponentSettings | None = None) -> None:
        if not model_uri:
            raise LoadError(
                f"{self.implementation} needs model_uri, the location of the model "
                "(modelUri in the graph)"
            )
        self.model_uri = model_uri
        self._settings = settings
        self._path: Path | None = None

    @property
    def settings(self) -> ComponentSettings:
        if self._settings is None:
            self._settings = ComponentSettings.from_env()
        return self._settings

    # ------------------------------------------------------------ model location

    def model_path(self) -> Path:
        """The local model folder (or file), downloaded on first use."""
        if self._path is None:
            settings = self.settings
            try:
                self._path = storage.resolve(
                    self.model_uri,
                    settings.model_cache_dir or None,
                    s3_endpoint_url=settings.s3_endpoint_url,
                )
            except LoadError as exc:
                raise LoadError(f"{self.implementation}: {exc}") from exc
        return self._path

    def model_dir(self) -> Path:
        path = self.model_path()
        return path if path.is_dir() else path.parent

    def remote_origin(self) -> str | None:
        """Where the model came from if that was over the network; None if local."""
        if storage.is_remote(self.model_uri):
            return self.model_uri
        return storage.origin(self.model_path())

    def find_model_file(self, names: Sequence[str] | None = None) -> Path:
        """The model file: ``model_uri`` itself if it names a file, else the first of
        ``names`` present in the folder."""
        names = tuple(names or self.model_files)
        path = self.model_path()
        if path.is_file():
            return path
        for name in names:
            if (path / name).is_file():
                return path / name
        present = sorted(p.name for p in path.iterdir() if p.name != storage.SOURCE_FILE)
        raise LoadError(
            f"{self.implementation}: no model file in {path} (from {self.model_uri}); "
            f"expected one of {', '.join(names)}, found {', '.join(present) or 'nothing'}"
        )

    # ------------------------------------------------------------ metadata

    def init_metadata(self) -> dict[str, Any]:
        """What the server knows (platform; tensors for ONNX), overlaid by ``metadata.yaml``
        next to the model. A broken file is reported by ``/metadata`` (BadMetadata), as any
        invalid metadata is, while the model goes on serving."""
        meta = self.default_metadata()
        path = self.model_dir() / METADATA_FILE
        if not path.is_file():
            return meta
        try:
            given = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise BadMetadata(f"{self.implementation}: cannot read {path}: {exc}") from exc
        if given is not None and not isinstance(given, dict):
            raise BadMetadata(
                f"{self.implementation}: {path} must hold a mapping (name, versions, "
                f"platform, inputs, outputs, custom), not a {type(given).__name__}"
            )
        return {**meta, **(given or {})}

    def default_metadata(self) -> dict[str, Any]:
        return {"platform": self.platform}
