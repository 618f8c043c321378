"""Problems found in a deployment spec, in one form whoever found them.

A user fixing a manifest should not care whether pydantic (types, enums, unknown fields)
or a Seldon admission rule found a mistake: both become a :class:`Problem` with the same
field-path syntax (``spec.predictors[0].graph.children[1].type``) and a message that says
what is wrong and what to do. Raw pydantic dumps never reach the user.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from infergraph.errors import ErrorCode, LoadError

__all__ = [
    "Problem",
    "SpecError",
    "SpecUnreadable",
    "format_path",
    "problems_from_validation_error",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a spec: where (a field path) and what (a message saying what to do).

    ``document`` is the index of the YAML document in its file and ``line`` its 1-based
    line, when the spec was loaded from YAML.
    """

    path: str
    message: str
    document: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def located(
        self, *, document: int | None, line: int | None, path: str | None = None
    ) -> Problem:
        """This problem with its position in the source filled in (and its path prefixed)."""
        return replace(self, document=document, line=line, path=self.path if path is None else path)


class SpecError(LoadError):
    """A deployment spec is invalid; ``problems`` lists every mistake found, not the first."""

    code = ErrorCode.BAD_REQUEST

    def __init__(
        self, problems: Sequence[Problem], source: str | None = None, message: str | None = None
    ) -> None:
        self.problems = list(problems)
        self.source = source
        if message is None:
            count = len(self.problems)
            listing = "".join(f"\n  {_position(p)}{p}" for p in self.problems)
            message = (
                f"{source + ': ' if source else ''}invalid deployment spec "
                f"({count} problem{'s' if count != 1 else ''}):{listing}"
            )
        super().__init__(message)


class SpecUnreadable(SpecError):
    """The spec cannot be read at all: a missing file or a YAML syntax error."""

    def __init__(
        self, message: str, source: str | None, line: int | None = None, column: int | None = None
    ) -> None:
        self.line = line
        self.column = column
        where = source or "<string>"
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        super().__init__([Problem("", message, line=line)], source, f"{where}: {message}")


def _position(problem: Problem) -> str:
    return f"line {problem.line}: " if problem.line is not None else ""


def format_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """``('spec', 'predictors', 0, 'annotations', 'seldon.io/svc-name')`` ->
    ``spec.predictors[0].annotations["seldon.io/svc-name"]``, appended to ``prefix``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{escaped}"]'
    return out


def problems_from_validation_error(error: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors for ``model`` into problems with readable messages."""
    problems: list[Problem] = []
    for detail in error.errors(include_url=False):
        loc = [part for part in detail["loc"] if part != "[key]"]
        message = _message(detail, model, loc)
        problems.append(Problem(format_path(loc), message))
    return problems


def _message(detail: ErrorDetails, model: type[BaseModel], loc: list[int | str]) -> str:
    kind = detail["type"]
    value = detail.get("input")
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    last = loc[-1] if loc else ""
    if kind == "missing":
        return f"required field '{last}' is missing"
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        return f"unknown field '{last}'{_suggest(str(last), known, list_all=True)}"
    if kind in ("enum", "literal_error"):
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{_show(value)} is not one of {', '.join(allowed)}{_suggest(str(value), allowed)}"
    if kind == "string_type":
        hint = ""
        if isinstance(value, bool | int | float):
            hint = f'; quote it in YAML: "{_yaml_scalar(value)}"'
        return f"expected a string, got {_show(value)}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_show(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_show(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {_show(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {_show(value)}"
    if kind == "too_short" and loc == ["spec", "predictors"]:
        return "a deployment needs at least one predictor"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "string_too_short":
        return "must not be empty"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, key = bounds[kind]
        return f"must be {sign} {ctx.get(key)}, got {_show(value)}"
    if kind == "recursion_loop":
        return "refers to itself (a YAML alias inside its own anchor); a graph must be a tree"
    if kind == "value_error":
        return str(ctx.get("error", detail["msg"]))
    text = detail["msg"]
    return f"{text[:1].lower()}{text[1:]} (got {_show(value)})"


def _suggest(word: str, known: Sequence[str] | None, *, list_all: bool = False) -> str:
    if not known:
        return ""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if not close:
        close = [k for k in known if k.lower() == word.lower()]
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known fields: {', '.join(known)}" if list_all else ""


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return repr(value)


def _yaml_scalar(value: bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str] | None:
    """The JSON field names of the model found at ``loc`` under ``model``, if any."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for name, f in current.model_fields.items() if (f.alias or name) == part),
                None,
            )
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``, so the walk sees the model inside an optional field."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
