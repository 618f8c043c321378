"""Read deployments from YAML: files with several documents, Seldon's kinds and ours.

Users keep their manifests as kubectl does: several documents per file (``---``), a
Service next to the SeldonDeployment, ``kubectl get -o yaml`` lists. This module accepts
all of that, and reports what it cannot accept with the file, line and field path, so a
mistake is found in the editor rather than in a cluster's admission log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import ConstructorError

from infergraph.graph.spec.defaults import default
from infergraph.graph.spec.models import (
    GRAPH_API_VERSION,
    SELDON_API_VERSIONS,
    Deployment,
    GraphDeployment,
    SeldonDeployment,
)
from infergraph.graph.spec.problems import (
    Problem,
    SpecError,
    SpecUnreadable,
    format_path,
    problems_from_validation_error,
)
from infergraph.graph.spec.validate import validate
from infergraph.graph.spec.yaml_loader import SpecLoader, check_bounds

__all__ = [
    "SourceDocument",
    "load_deployments",
    "load_documents",
    "parse_resource",
    "read_documents",
]

_KINDS: dict[str, type[GraphDeployment] | type[SeldonDeployment]] = {
    "GraphDeployment": GraphDeployment,
    "SeldonDeployment": SeldonDeployment,
}
_LIST_KINDS = {"List", "GraphDeploymentList", "SeldonDeploymentList"}
_LAST_SEGMENT = re.compile(r'(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])\Z')


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A deployment with where it came from, to point problems at their line."""

    deployment: Deployment
    source: str
    """The file name, or ``<string>`` for text."""
    document: int
    """Index of the YAML document in the file, counting from 0."""
    prefix: str
    """Path of the deployment inside its document: ``""``, or ``items[2]`` in a List."""
    lines: Mapping[str, int]
    """Field path (from the document root) -> 1-based line."""

    def locate(self, problem: Problem) -> Problem:
        """``problem`` (found on :attr:`deployment`) with its document and line filled in."""
        return _locate(problem, self.document, self.prefix, self.lines)


def _locate(problem: Problem, document: int, prefix: str, lines: Mapping[str, int]) -> Problem:
    path = ".".join(part for part in (prefix, problem.path) if part)
    return problem.located(document=document, line=_line(lines, path), path=path)


def _line(lines: Mapping[str, int], path: str) -> int | None:
    """The line of ``path``, or of its nearest parent present in the YAML."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        match = _LAST_SEGMENT.search(path)
        path = path[: match.start()] if match else ""


def load_documents(
    source: str | os.PathLike[str], *, skip_other_kinds: bool = False, name: str | None = None
) -> list[Deployment]:
    """The deployments in a file or YAML text, as written (neither defaulted nor checked).

    ``source`` is a path (a :class:`~os.PathLike`, or a string without a newline) or YAML
    text. Empty documents are ignored; other kinds are problems naming the document,
    unless ``skip_other_kinds``. Raises :class:`SpecUnreadable` for a missing file or a
    YAML syntax error and :class:`SpecError` listing every problem otherwise.
    """
    documents = read_documents(source, skip_other_kinds=skip_other_kinds, name=name)
    return [document.deployment for document in documents]


def load_deployments(
    source: str | os.PathLike[str], *, skip_other_kinds: bool = False, name: str | None = None
) -> list[Deployment]:
    """The deployments in ``source``, checked by :func:`validate` and then defaulted: what
    ``serve`` and ``render`` run. Raises :class:`SpecError` listing every problem, or
    saying that ``source`` holds no deployment."""
    text, label = _read(source, name)
    documents = _documents(text, label, skip_other_kinds)
    if not documents:
        raise SpecError([Problem("", "no SeldonDeployment or GraphDeployment found")], label)
    problems = [doc.locate(p) for doc in documents for p in validate(doc.deployment)]
    if problems:
        raise SpecError(problems, documents[0].source)
    return [default(document.deployment) for document in documents]


_SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def parse_resource(data: Mapping[str, Any]) -> Deployment:
    """One deployment from its JSON form, as the Kubernetes API returns it: neither
    defaulted nor checked. What the server adds (uid, resourceVersion, generation,
    managedFields, timestamps, kubectl's last-applied annotation, ``status``) is left out, so
    the same spec always gives the same deployment, whatever its object's history: the
    graph's ConfigMap, and the pod-template checksum of it, must not change on a status
    write. Raises :class:`SpecError` listing every problem."""
    metadata = data.get("metadata") or {}
    kept = {key: metadata[key] for key in ("name", "namespace", "labels") if key in metadata}
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key not in _SERVER_ANNOTATIONS
    }
    if annotations:
        kept["annotations"] = annotations
    body = {key: value for key, value in data.items() if key not in ("metadata", "status")}
    deployment, problems = _build({**body, "metadata": kept}, 0, (), False)
    if deployment is None or problems:
        raise SpecError(problems or [Problem("", "not a deployment")])
    return deployment


def read_documents(
    source: str | os.PathLike[str], *, skip_other_kinds: bool = False, name: str | None = None
) -> list[SourceDocument]:
    """Like :func:`load_documents`, keeping each deployment's file, document and lines."""
    text, label = _read(source, name)
    return _documents(text, label, skip_other_kinds)


def _documents(text: str, label: str, skip_other_kinds: bool) -> list[SourceDocument]:
    documents: list[SourceDocument] = []
    problems: list[Problem] = []
    for index, (data, lines, duplicates) in enumerate(_parse(text, label)):
        problems += [_locate(p, index, "", lines) for p in duplicates]
        if data is None:
            continue
        for loc, item in _expand(data):
            prefix = format_path(loc)
            deployment, found = _build(item, index, loc, skip_other_kinds)
            problems += [_locate(p, index, prefix, lines) for p in found]
            if deployment is not None:
                documents.append(SourceDocument(deployment, label, index, prefix, lines))
    if problems:
        raise SpecError(problems, label)
    return documents


def _read(source: str | os.PathLike[str], name: str | None) -> tuple[str, str]:
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith(("{", "["))):
        return source, name or "<string>"
    path = Path(source)
    label = name or str(source)
    try:
        return path.read_text(encoding="utf-8"), label
    except FileNotFoundError:
        raise SpecUnreadable("no such file", label) from None
    except IsADirectoryError:
        raise SpecUnreadable("is a directory, not a YAML file", label) from None
    except UnicodeDecodeError as exc:
        raise SpecUnreadable(f"not UTF-8 text ({exc.reason})", label) from None
    except OSError as exc:
        raise SpecUnreadable(f"cannot be read: {exc.strerror or exc}", label) from None


def _parse(text: str, label: str) -> list[tuple[Any, dict[str, int], list[Problem]]]:
    """Each document's data, its path -> line index and its duplicate-key problems."""
    loader = SpecLoader(text)
    out: list[tuple[Any, dict[str, int], list[Problem]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            lines: dict[str, int] = {}
            duplicates: list[Problem] = []
            if node is not None:
                refused = check_bounds(node)
                if refused is not None:
                    line = node.start_mark.line + 1
                    raise SpecUnreadable(f"YAML document {len(out)} {refused}", label, line)
                _index(node, "", lines, duplicates)
            data = loader.construct_document(node) if node is not None else None
            out.append((data, lines, duplicates))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        syntax = "" if isinstance(exc, ConstructorError) else " syntax"  # else a bad value
        raise SpecUnreadable(f"YAML{syntax} error: {what}", label, line, column) from None
    except yaml.YAMLError as exc:
        raise SpecUnreadable(f"YAML error: {exc}", label) from None
    except RecursionError:  # PyYAML's pure-Python composer, where libyaml is missing
        raise SpecUnreadable("YAML error: the document nests too deeply", label) from None
    finally:
        loader.dispose()
    return out


def _index(
    node: yaml.Node,
    path: str,
    lines: dict[str, int],
    duplicates: list[Problem],
    active: set[int] | None = None,
) -> None:
    """Record the line of every field path under ``node`` (``path`` is its own, as
    :func:`format_path` writes it), and keys given twice. Each child's path extends its
    parent's, so a deep document costs its size, not its size times its depth."""
    active = set() if active is None else active
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in active:  # a YAML alias that contains itself
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            child = format_path((key.value,), path)
            if key.value in seen:
                duplicates.append(
                    Problem(child, f"key '{key.value}' appears twice; YAML keeps only the last")
                )
            seen.add(key.value)
            lines[child] = key.start_mark.line + 1
            _index(value, child, lines, duplicates, active)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index(item, format_path((position,), path), lines, duplicates, active)
    active.discard(id(node))


def _expand(data: Any) -> list[tuple[tuple[int | str, ...], Any]]:
    """A ``List`` document stands for its items; any other document for itself."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind in _LIST_KINDS:
        items = data.get("items")
        if isinstance(items, list):
            return [(("items", position), item) for position, item in enumerate(items)]
    return [((), data)]


def _build(
    data: Any, index: int, prefix: tuple[int | str, ...], skip_other_kinds: bool
) -> tuple[Deployment | None, list[Problem]]:
    where = f"document {index}" + (f" ({format_path(prefix)})" if prefix else "")
    if not isinstance(data, dict):
        shape = "a list" if isinstance(data, list) else f"the scalar {data!r}"
        return None, [Problem("", f"{where} is {shape}, not a mapping with apiVersion and kind")]
    kind = data.get("kind")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        if skip_other_kinds and isinstance(kind, str):
            return None, []
        expected = (
            f"SeldonDeployment ({', '.join(SELDON_API_VERSIONS)}) or GraphDeployment "
            f"({GRAPH_API_VERSION})"
        )
        if kind is None:
            return None, [Problem("kind", f"{where} has no kind; expected {expected}")]
        if not isinstance(kind, str):
            return None, [
                Problem("kind", f"{where}'s kind is {_kind_of(kind)}; expected {expected}")
            ]
        return None, [
            Problem(
                "kind",
                f"{where} is a {kind} ({data.get('apiVersion', 'no apiVersion')}), not a "
                f"{expected}; remove it from the file or skip other kinds "
                "(--skip-other-kinds)",
            )
        ]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from_validation_error(exc, model)


def _kind_of(value: Any) -> str:
    """A YAML value in words, for a message about a field of the wrong type."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the {type(value).__name__} {value!r}"[:80]
