"""pydantic's JSON schema turned into a structural OpenAPI v3 schema, as a CRD needs it.

The API server accepts only *structural* schemas in a CustomResourceDefinition: no ``$ref``,
a ``type`` at every level, unions only in the int-or-string form, ``nullable`` instead of a
``null`` branch, no ``additionalProperties`` next to ``properties``. pydantic writes JSON
Schema with none of these rules in mind, so :func:`structural` rewrites it. The one source
of truth stays the pydantic models that validate the YAML locally.

Two choices keep the CRD small and the stored object equal to what the user wrote:

* Embedded Kubernetes objects (a PodSpec, HPA metrics, KEDA triggers) are described only as
  far as infergraph reads them; the rest is ``x-kubernetes-preserve-unknown-fields``. Seldon's
  CRD embedded the full PodSpec three times and weighed 1.9 MB.
* No ``default`` is copied: defaulting is code (:func:`infergraph.graph.spec.defaults.default`),
  run by ``serve``, ``render`` and the operator alike, and an API server that filled in
  defaults would make the live object differ from Git (Argo CD diffs).

The graph is a tree (``children`` of ``children``) and a structural schema cannot recurse,
so a model that refers to itself is unrolled ``max_depth`` times; below that its children
are kept without checks, and the operator still validates the whole spec with pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "UnsupportedSchema", "forbid_unknown_fields", "structural"]

DEFAULT_MAX_DEPTH = 8
"""How many levels of a self-referring model (the graph's nodes) the schema spells out."""

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"

# What a CRD's JSONSchemaProps may carry and the schema keeps as it is.
_KEPT = (
    "description",
    "type",
    "format",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
)
# What pydantic writes and a CRD must not carry (or should not: defaults, see above).
_DROPPED = frozenset(
    {"title", "default", "examples", "const", "$defs", "discriminator", "readOnly"}
)
_NULL = {"type": "null"}
_WHITESPACE = re.compile(r"\s+")
_RST_LITERAL = re.compile(r"``([^`]+)``")


class UnsupportedSchema(ValueError):
    """The pydantic models use a construct a structural schema cannot express (a union)."""


def structural(schema: Mapping[str, Any], *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """A structural OpenAPI v3 schema equivalent to pydantic's ``schema`` (``$defs`` included).

    Pure: the argument is not changed. Raises :class:`UnsupportedSchema` for a union other
    than ``X | None`` and Kubernetes' int-or-string, with the JSON path of the offender.
    """
    return _Converter(schema.get("$defs", {}), max_depth).convert(schema, (), "")


def forbid_unknown_fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with ``additionalProperties: false`` on every object that lists its fields
    and does not preserve unknown ones.

    The API server prunes unknown fields, and ``kubectl apply`` (strict field validation,
    the default since Kubernetes 1.27) turns each pruned field into an error. An offline
    validator such as ``openapi_schema_validator`` does neither; checking against this
    schema reports unknown fields the way kubectl would.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: forbid_unknown_fields(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = forbid_unknown_fields(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [forbid_unknown_fields(sub) for sub in value]
        else:
            out[key] = value
    if "properties" in out and not out.get(PRESERVE):
        out["additionalProperties"] = False
    return out


class _Converter:
    def __init__(self, defs: Mapping[str, Any], max_depth: int) -> None:
        self.defs = defs
        self.max_depth = max_depth

    def convert(self, node: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[str, Any]:
        if "$ref" in node:
            return self._reference(node, stack, path)
        if "allOf" in node:
            return self._all_of(node, stack, path)
        if "anyOf" in node or "oneOf" in node:
            return self._union(node, stack, path)
        if "const" in node:
            node = {**node, "enum": [node["const"]]}
        out: dict[str, Any] = {}
        for key in _KEPT:
            if key in node:
                out[key] = node[key]
        if "description" in out:
            out["description"] = _description(out["description"])
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            # JSON Schema's number (pydantic's gt/lt) is OpenAPI 3.0's bound plus a flag.
            if not isinstance(out.get(bound, True), bool):
                out[limit], out[bound] = out[bound], True
        for key, value in node.items():
            if key.startswith("x-kubernetes-"):
                out[key] = value
            elif key not in _KEPT and key not in _DROPPED and key not in _STRUCTURE:
                raise UnsupportedSchema(f"{path or '<root>'}: unsupported keyword {key!r}")
        if node.get("type") == "object" or "properties" in node:
            self._object(node, out, stack, path)
        elif node.get("type") == "array":
            items = node.get("items", {})
            out["items"] = self.convert(items, stack, f"{path}[]") if items else _opaque()
        if "type" not in out and not out.get(PRESERVE) and not out.get(INT_OR_STRING):
            raise UnsupportedSchema(f"{path or '<root>'}: a schema without a type")
        return out

    def _object(
        self, node: Mapping[str, Any], out: dict[str, Any], stack: tuple[str, ...], path: str
    ) -> None:
        out["type"] = "object"
        extra = node.get("additionalProperties")
        properties = node.get("properties")
        if properties:
            out["properties"] = {
                name: self.convert(sub, stack, f"{path}.{name}") for name, sub in properties.items()
            }
            if extra is True or isinstance(extra, Mapping):
                # A model that keeps unknown fields (an embedded Kubernetes object).
                out[PRESERVE] = True
        elif isinstance(extra, Mapping) and extra:
            out["additionalProperties"] = self.convert(extra, stack, f"{path}.*")
        elif extra is not False:
            # ``dict[str, Any]``: an embedded object infergraph passes through.
            out[PRESERVE] = True

    def _reference(
        self, node: Mapping[str, Any], stack: tuple[str, ...], path: str
    ) -> dict[str, Any]:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in self.defs:
            raise UnsupportedSchema(f"{path or '<root>'}: unknown $ref {node['$ref']!r}")
        if stack.count(name) >= self.max_depth:
            target = _opaque(
                f"Deeper than {self.max_depth} levels: kept as written, checked by the operator."
            )
        else:
            target = self.convert(self.defs[name], (*stack, name), path)
        return self._overlay(target, node, "$ref", path)

    def _all_of(self, node: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[str, Any]:
        parts = node["allOf"]
        if len(parts) != 1:
            raise UnsupportedSchema(f"{path or '<root>'}: allOf with {len(parts)} schemas")
        target = self.convert(parts[0], stack, path)
        return self._overlay(target, node, "allOf", path)

    def _union(self, node: Mapping[str, Any], stack: tuple[str, ...], path: str) -> dict[str, Any]:
        key = "anyOf" if "anyOf" in node else "oneOf"
        branches = [branch for branch in node[key] if branch != _NULL]
        nullable = len(branches) < len(node[key])
        if node.get(INT_OR_STRING) or _is_int_or_string(branches):
            target: dict[str, Any] = {
                INT_OR_STRING: True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            }
        elif len(branches) == 1:
            target = self.convert(branches[0], stack, path)
        else:
            raise UnsupportedSchema(
                f"{path or '<root>'}: a union of {len(branches)} types; a CRD allows only "
                "'X | None' and int-or-string"
            )
        out = self._overlay(target, node, key, path)
        if nullable:
            out["nullable"] = True
        return out

    @staticmethod
    def _overlay(
        target: dict[str, Any], node: Mapping[str, Any], consumed: str, path: str
    ) -> dict[str, Any]:
        """``target`` with the keywords written next to the ``$ref`` or union applied on top
        (a field's own description wins over its model's docstring)."""
        out = dict(target)
        for key, value in node.items():
            if key in (consumed, INT_OR_STRING) or key in _DROPPED:
                continue
            if key == "description":
                out[key] = _description(value)
            elif key in _KEPT or key.startswith("x-kubernetes-"):
                out[key] = value
            else:
                raise UnsupportedSchema(f"{path or '<root>'}: unsupported keyword {key!r}")
        return out


_STRUCTURE = frozenset({"properties", "additionalProperties", "items", "nullable"})


def _is_int_or_string(branches: list[Any]) -> bool:
    types = sorted(branch.get("type", "") for branch in branches if len(branch) == 1)
    return len(types) == len(branches) == 2 and types == ["integer", "string"]


def _opaque(description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", PRESERVE: True}
    if description:
        out["description"] = description
    return out


def _description(text: str) -> str:
    """One line for ``kubectl explain``: docstring line breaks and RST literals removed."""
    return _RST_LITERAL.sub(r"\1", _WHITESPACE.sub(" ", text)).strip()
