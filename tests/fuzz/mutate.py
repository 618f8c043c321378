"""Seeded generators of hostile inputs: valid bodies and manifests, then mutated.

Every case is built from its own ``random.Random(f"{seed}:{target}:{index}")``, so a
failure report's seed, target and index regenerate exactly that case
(:func:`case_rng`). Mutations work on two levels: the parsed value (a field's type
swapped, a number made huge or negative, a list made ragged or deep, unicode, a key
dropped or invented) and the bytes (flipped, truncated, spliced). A few values cannot be
written by ``json.dumps`` or ``yaml.safe_dump`` at all (a 5000-digit integer, ``1e999``,
``!!int x``, an alias bomb); :data:`RAW` holds them as text, spliced in after dumping.
"""

from __future__ import annotations

import json
import math
import os
import random
from typing import Any

import yaml

__all__ = [
    "RAW",
    "YAML_RAW",
    "case_count",
    "case_rng",
    "dump_json",
    "dump_yaml",
    "mutate_bytes",
    "mutate_value",
    "mutate_yaml_text",
    "seed",
]

DEFAULT_CASES = 2000
DEFAULT_SEED = 20240611


def case_count(default: int = DEFAULT_CASES) -> int:
    """REST cases: ``INFERGRAPH_FUZZ_CASES``, else ``default``; the gRPC target runs a quarter
    as many, the YAML one half (a YAML case costs more)."""
    return int(os.environ.get("INFERGRAPH_FUZZ_CASES") or default)


def seed() -> int:
    """The run's seed: ``INFERGRAPH_FUZZ_SEED``, else a fixed one (CI is reproducible)."""
    return int(os.environ.get("INFERGRAPH_FUZZ_SEED") or DEFAULT_SEED)


def case_rng(run_seed: int, target: str, index: int) -> random.Random:
    """The generator of one case, independent of every other case."""
    return random.Random(f"{run_seed}:{target}:{index}")


# ---------------------------------------------------------------- values

_MARK = "RAWTOKEN"
RAW: list[str] = [
    "9" * 5000,  # past Python's 4300-digit int() limit
    "-" + "1" * 40,
    "1e999",
    "-1e999",
    "1" + "0" * 400,
    "NaN",
    "Infinity",
    "-0",
    "0.0000000000000000000000000000001e-400",
    "[" * 300 + "]" * 300,
    '{"a":' * 200 + "1" + "}" * 200,
    '"\\ud800"',
    '"\\u0000"',
]
"""JSON text no encoder writes; :func:`dump_json` splices one in where a value says ``RAW``."""

_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    1.5,
    -0.0,
    2**31,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    1e308,
    -1e308,
    5e-324,
    "",
    "x",
    "1",
    "-1",
    "2.5",
    "NaN",
    "DT_FLOAT",
    "FP32",
    "BYTES",
    "é✓😀",
    "\x00",
    "\u202e",
    "a" * 5000,
]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.55 or depth > 2:
        return rng.choice(_SCALARS)
    if roll < 0.65:
        return f"{_MARK}{rng.randrange(len(RAW))}"
    if roll < 0.8:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if roll < 0.9:
        width = rng.choice([1, 2, 3])
        return [[rng.random() for _ in range(width + rng.choice([0, 0, 1]))] for _ in range(3)]
    return {rng.choice(["a", "data", "shape", "name", ""]): _random_value(rng, depth + 1)}


def _slots(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) under ``value``, without recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                out.append((node, key))
                stack.append(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                out.append((node, index))
                stack.append(node[index])
    return out


def _tweak(rng: random.Random, value: Any) -> Any:
    """A near miss of ``value``: same type, wrong size or sign or spelling."""
    if isinstance(value, bool):
        return rng.choice([not value, int(value), str(value).lower()])
    if isinstance(value, int):
        return rng.choice([-value, value + 1, value - 1, value * 2**40, -1, 0, str(value)])
    if isinstance(value, float):
        whole = int(value) if math.isfinite(value) else 0
        return rng.choice([-value, value * 1e300, whole, str(value), 1e-320])
    if isinstance(value, str):
        cut = value[: len(value) // 2]
        return rng.choice([cut, value * 50, value.upper(), value + "é", "", f" {value} "])
    if isinstance(value, list):
        if value and rng.random() < 0.5:
            return value[0]
        return [*value, *value[: rng.randrange(len(value) + 1)], rng.choice(_SCALARS)]
    if isinstance(value, dict):
        return [value]
    return value


def mutate_value(rng: random.Random, value: Any, rounds: int | None = None) -> Any:
    """A mutated deep copy of a JSON-like ``value`` (dicts, lists, scalars)."""
    value = json.loads(json.dumps(value))
    for _ in range(rounds if rounds is not None else rng.choice([1, 1, 2, 3])):
        slots = _slots(value, [])
        if not slots:
            return _random_value(rng)
        container, key = rng.choice(slots)
        action = rng.random()
        if action < 0.3:
            container[key] = _random_value(rng)
        elif action < 0.6:
            container[key] = _tweak(rng, container[key])
        elif action < 0.7:
            del container[key]
        elif action < 0.8 and isinstance(container, dict):
            container[rng.choice(["extra", "Data", "ndarry", "values", "dim", "é"])] = 1
        elif action < 0.9:
            container[key] = [container[key]] * rng.choice([1, 2, 50])
        else:
            deep: Any = container[key]
            for _ in range(rng.choice([10, 60, 200])):
                deep = [deep]
            container[key] = deep
    return value


def _splice(text: str) -> str:
    for index in range(len(RAW) - 1, -1, -1):  # RAWTOKEN12 before RAWTOKEN1
        text = text.replace(f'"{_MARK}{index}"', RAW[index])
    return text


def dump_json(value: Any) -> bytes:
    """``value`` as JSON text, with :data:`RAW` spliced in; Python's int limit lifted."""
    return _splice(json.dumps(value, ensure_ascii=False)).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- bytes

_NOISE = [b"\x00", b"\xff", b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\xc3", b"-", b"e9"]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, cut, inserted or repeated."""
    buffer = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4])):
        where = rng.randrange(len(buffer) + 1)
        action = rng.random()
        if action < 0.3 and buffer:
            buffer[min(where, len(buffer) - 1)] ^= 1 << rng.randrange(8)
        elif action < 0.5:
            del buffer[where:]
        elif action < 0.75:
            buffer[where:where] = rng.choice(_NOISE)
        elif action < 0.9:
            end = min(len(buffer), where + rng.randrange(1, 16))
            buffer[where:where] = buffer[where:end] * rng.choice([2, 30])
        else:
            del buffer[where : where + rng.randrange(1, 8)]
    return bytes(buffer)


# ---------------------------------------------------------------- YAML

YAML_RAW: list[str] = [
    "!!int x",
    "!!float abc",
    "!!timestamp 2001-13-45",
    "2024-02-31",
    "!!binary '%%%'",
    "!!binary aGk=",
    "!!set {a: 1}",
    "!!omap [a, b]",
    "!!pairs [1]",
    "!!python/object:os.system x",
    "!unknown x",
    "*undefined",
    "9" * 5000,
    "0x" + "f" * 5000,
    "1_000_000",
    "0o777",
    "190:20:30",
    ".nan",
    "-.inf",
    "~",
    "[" * 150 + "]" * 150,
    "{a: " * 150 + "1" + "}" * 150,
    "&self [*self]",
    "[&b0 [x, x, x, x, x, x, x, x, x], &b1 [*b0, *b0, *b0, *b0, *b0, *b0, *b0, *b0, *b0],"
    " &b2 [*b1, *b1, *b1, *b1, *b1, *b1, *b1, *b1, *b1], [*b2, *b2, *b2, *b2, *b2, *b2, *b2,"
    " *b2, *b2], [*b2, *b2, *b2, *b2, *b2, *b2, *b2, *b2, *b2]]",
    "{? [a]: 1}",
    "{<<: [1]}",
    "'é✓😀\u202e'",
    '"\\x00"',
]
"""YAML text the dumper never writes: tags, dates, huge numbers, aliases, deep flows."""

_YAML_NOISE = ["&a ", "*a", "!!int ", ": ", "- ", "? ", "{", "[", "'", '"', "\t", "\n---\n", "%"]


def dump_yaml(rng: random.Random, documents: list[Any]) -> str:
    """Mutated ``documents`` as YAML text, with :data:`YAML_RAW` values spliced in."""
    mutated = [mutate_value(rng, document) for document in documents]
    slots = [slot for document in mutated for slot in _slots(document, [])]
    for container, key in slots:  # JSON's unwritable values become YAML's
        if isinstance(container[key], str) and container[key].startswith(_MARK):
            container[key] = f"YAMLTOKEN{rng.randrange(len(YAML_RAW))}"
    if slots and rng.random() < 0.4:
        container, key = rng.choice(slots)
        container[key] = f"YAMLTOKEN{rng.randrange(len(YAML_RAW))}"
    try:
        text = yaml.safe_dump_all(mutated, sort_keys=False, allow_unicode=True, width=10**6)
    except RecursionError:  # PyYAML's representer recurses; JSON is YAML too (flow style)
        text = "\n---\n".join(json.dumps(document, ensure_ascii=False) for document in mutated)
    for index in range(len(YAML_RAW) - 1, -1, -1):  # YAMLTOKEN12 before YAMLTOKEN1
        text = text.replace(f"YAMLTOKEN{index}", YAML_RAW[index])
    return text


def mutate_yaml_text(rng: random.Random, text: str) -> str:
    """``text`` with YAML punctuation inserted, lines cut, or bytes flipped."""
    action = rng.random()
    if action < 0.4:
        where = rng.randrange(len(text) + 1)
        return text[:where] + rng.choice(_YAML_NOISE) + text[where:]
    if action < 0.6:
        lines = text.splitlines(keepends=True)
        start = rng.randrange(len(lines) + 1)
        return "".join(lines[:start] + lines[start + rng.randrange(1, 4) :])
    if action < 0.8:
        lines = text.splitlines(keepends=True)
        if lines:
            line = rng.randrange(len(lines))
            lines[line] = rng.choice(["\t", " ", "   "]) + lines[line]
        return "".join(lines)
    return mutate_bytes(rng, text.encode()).decode("utf-8", "replace")
