"""Rendered objects as text: multi-document YAML, the same bytes for the same objects."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import yaml

__all__ = ["checksum", "to_yaml"]


class _Dumper(yaml.SafeDumper):
    """Never writes anchors and aliases: each object stands alone, as kubectl expects."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line text (a ConfigMap's file) as a literal block, readable in a diff."""
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


_Dumper.add_representer(str, _text)


def to_yaml(objects: Iterable[dict[str, Any]]) -> str:
    """``objects`` as YAML documents separated by ``---``, keys sorted, no line wrapping."""
    return yaml.dump_all(
        list(objects),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        explicit_start=True,
        allow_unicode=True,
        width=1_000_000,
    )


def checksum(text: str) -> str:
    """A short, stable digest of ``text`` for a pod annotation that rolls pods on change."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
