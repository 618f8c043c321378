"""Component metadata: defaults from the image, then ``init_metadata()``, then MODEL_METADATA."""

from __future__ import annotations

from typing import Any

import yaml

from infergraph.errors import BadMetadata

__all__ = ["build_metadata", "validate_metadata"]

_TOP_LEVEL = {"name", "versions", "platform", "inputs", "outputs", "custom"}
_V2_DATATYPES = {
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
}  # fmt: skip
_MESSAGE_TYPES = {"tensor", "ndarray", "tftensor", "jsonData", "strData", "binData", "customData"}


def _default(image: str) -> dict[str, Any]:
    name, _, version = image.rpartition(":") if ":" in image else (image, "", "")
    return {
        "name": name,
        "versions": [version] if version else [],
        "platform": "",
        "inputs": [],
        "outputs": [],
        "custom": {},
    }


def _check_io(items: Any, where: str) -> None:
    if not isinstance(items, list):
        raise BadMetadata(f"Model metadata {where} must be a list")
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise BadMetadata(f"Model metadata {at} must be an object")
        if "messagetype" in item:
            if not isinstance(item["messagetype"], str):
                raise BadMetadata(f"Model metadata {at}.messagetype must be a string")
            if item["messagetype"] in ("tensor", "ndarray", "tftensor"):
                schema = item.get("schema", {})
                if not isinstance(schema, dict):
                    raise BadMetadata(f"Model metadata {at}.schema must be an object")
        elif {"name", "datatype", "shape"} <= item.keys():
            if item["datatype"] not in _V2_DATATYPES:
                raise BadMetadata(
                    f"Model metadata {at}.datatype {item['datatype']!r} is not a V2 datatype"
                )
            shape = item["shape"]
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in shape
            ):
                raise BadMetadata(f"Model metadata {at}.shape must be a list of integers")
        else:
            raise BadMetadata(
                f"Model metadata {at} needs either messagetype (and schema) "
                "or name, datatype and shape"
            )


def validate_metadata(meta: Any) -> dict[str, Any]:
    """Check metadata against Seldon's schema; raise BadMetadata naming the field."""
    if not isinstance(meta, dict):
        raise BadMetadata("Model metadata must be an object")
    extra = sorted(set(meta) - _TOP_LEVEL)
    if extra:
        raise BadMetadata(
            f"Model metadata has unknown fields {extra}; allowed: {sorted(_TOP_LEVEL)}"
        )
    if not isinstance(meta.get("name", ""), str):
        raise BadMetadata("Model metadata name must be a string")
    versions = meta.get("versions", [])
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise BadMetadata("Model metadata versions must be a list of strings")
    _check_io(meta.get("inputs", []), "inputs")
    _check_io(meta.get("outputs", []), "outputs")
    custom = meta.get("custom", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        raise BadMetadata("Model metadata custom must map strings to strings")
    return meta


def build_metadata(image: str, user_metadata: Any, env_metadata: str) -> dict[str, Any]:
    """Merge defaults, ``init_metadata()`` and the MODEL_METADATA YAML; then validate."""
    meta = _default(image)
    if user_metadata:
        if not isinstance(user_metadata, dict):
            raise BadMetadata("init_metadata() must return a dict")
        meta.update(user_metadata)
    if env_metadata:
        try:
            extra = yaml.safe_load(env_metadata)
        except yaml.YAMLError as exc:
            raise BadMetadata(f"MODEL_METADATA is not valid YAML: {exc}") from exc
        if extra:
            if not isinstance(extra, dict):
                raise BadMetadata("MODEL_METADATA must be a mapping")
            meta.update(extra)
    return validate_metadata(meta)
