"""PyYAML's safe loader, bounded for deployment files that may come from anyone.

A manifest reaches ``infergraph validate`` and ``serve`` from a pull request or a
colleague, so reading it must end in a message, never a traceback or a hang. PyYAML's
safe loader still has three ways out that are not a ``yaml.YAMLError``: a scalar its
tag cannot read (``!!int x``, ``!!float abc``, ``!!timestamp 2001-13-45``, an integer
past Python's 4300-digit limit) raises ``ValueError``; a few hundred bytes of nested
aliases (a "billion laughs") expand to billions of nodes for whoever walks the data; and
nesting deep enough exhausts Python's recursion. :class:`SpecLoader` turns the first into
a ``ConstructorError`` at the scalar's line, and :func:`check_bounds` refuses the other
two on the composed node graph, before anything walks it expanded. Our own subclass
carries all of it: PyYAML's global loaders are left as they are.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "MAX_NODES", "SpecLoader", "check_bounds"]

MAX_NODES = 100_000
"""Most nodes a YAML document may hold, an alias counted as the whole node it names at
each use. A deployment holds hundreds; a ``kubectl get -o yaml`` list of many, thousands."""
MAX_DEPTH = 200
"""Deepest a YAML document may nest. A graph node's child is two levels down (its
``children`` list, then the child), so this allows graphs about 95 nodes deep."""
MAX_INT_DIGITS = 4300
"""Longest decimal integer read (Python's own default limit for ``int(str)``)."""

_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SHORT_TAG = "tag:yaml.org,2002:"


def _tag(node: yaml.Node) -> str:
    tag = str(node.tag)
    return "!!" + tag[len(_SHORT_TAG) :] if tag.startswith(_SHORT_TAG) else tag


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class SpecLoader(_Base):  # type: ignore[valid-type,misc]
    """The safe loader (libyaml's when installed), whose scalars fail as YAML errors."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError, AttributeError) as exc:
            # e.g. int("x"), float("abc"), date(2001, 13, 45), a timestamp the regex missed
            detail = str(exc).split(";")[0] or type(exc).__name__
            raise ConstructorError(
                None,
                None,
                f"{_quoted(node.value)} is not a valid {_tag(node)} ({detail})",
                node.start_mark,
            ) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = str(node.value).replace("_", "").lstrip("+-")
        if digits.isdigit() and len(digits) > MAX_INT_DIGITS:  # int() would refuse it
            self._too_long(node, f"of {len(digits)} digits is too long (at most {MAX_INT_DIGITS})")
        value = int(SafeConstructor.construct_yaml_int(self, node))
        if value.bit_length() > _MAX_INT_BITS:  # hexadecimal, binary or base 60
            self._too_long(node, f"of more than {MAX_INT_DIGITS} digits is too long")
        return value

    @staticmethod
    def _too_long(node: yaml.Node, what: str) -> None:
        raise ConstructorError(None, None, f"an integer {what}", node.start_mark)


SpecLoader.add_constructor("tag:yaml.org,2002:int", SpecLoader.construct_yaml_int)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_bounds(root: yaml.Node) -> str | None:
    """Why the document under ``root`` is refused, as a phrase to follow "the document"
    (too many nodes once its aliases are expanded, or nested too deeply), or None.

    Walks each distinct node once, so an alias bomb is measured in microseconds. A node
    that contains itself through an alias counts once there, as the loader reads it.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    on_path = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, pending = stack[-1]
        for child in pending:
            if id(child) not in sizes and id(child) not in on_path:
                on_path.add(id(child))
                stack.append((child, iter(_children(child))))
                break
        else:
            stack.pop()
            on_path.discard(id(node))
            children = _children(node)
            size = 1 + sum(sizes.get(id(child), 1) for child in children)
            height = 1 + max((heights.get(id(child), 1) for child in children), default=0)
            if size > MAX_NODES:
                return (
                    f"expands to more than {MAX_NODES:,} YAML nodes (an alias counts as all "
                    "it names, at each use); a deployment needs far fewer"
                )
            if height > MAX_DEPTH:
                return f"nests more than {MAX_DEPTH} levels deep"
            sizes[id(node)], heights[id(node)] = size, height
    return None
