"""Seldon's typed component parameters: ``[{"name", "value", "type"}]``."""

from __future__ import annotations

from typing import Any

import orjson

from infergraph.errors import BadParameter

__all__ = ["parse_parameters", "strtobool"]

_TRUE = {"y", "yes", "t", "true", "on", "1"}
_FALSE = {"n", "no", "f", "false", "off", "0"}


def strtobool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"invalid truth value {value!r}")


def _convert(kind: str, value: Any) -> Any:
    if kind == "INT":
        return int(value)
    if kind in ("FLOAT", "DOUBLE"):
        return float(value)
    if kind == "STRING":
        return str(value)
    if kind == "BOOL":
        return value if isinstance(value, bool) else strtobool(value)
    raise KeyError(kind)


def parse_parameters(source: str | list[Any] | None, where: str = "parameters") -> dict[str, Any]:
    """Parse the JSON list of parameters into constructor keyword arguments."""
    if source is None or source == "":
        return {}
    if isinstance(source, str):
        try:
            source = orjson.loads(source)
        except orjson.JSONDecodeError as exc:
            raise BadParameter(f"Bad model parameters: {where} is not valid JSON: {exc}") from exc
    if not isinstance(source, list):
        raise BadParameter(f"Bad model parameters: {where} must be a JSON list")
    out: dict[str, Any] = {}
    for i, item in enumerate(source):
        if not isinstance(item, dict) or "name" not in item or "value" not in item:
            raise BadParameter(f"Bad model parameter: {where}[{i}] needs name, value and type")
        name, value, kind = item["name"], item["value"], str(item.get("type", "STRING"))
        try:
            out[name] = _convert(kind, value)
        except KeyError:
            raise BadParameter(
                f"Bad model parameter type: {kind} for {name!r} at {where}[{i}]; "
                "valid are INT, FLOAT, DOUBLE, STRING, BOOL"
            ) from None
        except (TypeError, ValueError):
            raise BadParameter(
                f"Bad model parameter: {name!r} at {where}[{i}] with value {value!r} "
                f"can't be parsed as a {kind}"
            ) from None
    return out
