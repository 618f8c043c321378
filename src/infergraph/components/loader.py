"""Find and build the user's class: ``Module`` or ``package.module.Class``."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from infergraph.components import seldon_alias
from infergraph.errors import InferGraphError, LoadError

__all__ = ["import_component", "instantiate"]


def import_component(interface_name: str, path: str | Path | None = None) -> type[Any]:
    """Import the class named like ``seldon-core-microservice`` names it.

    ``MyModel`` imports module ``MyModel`` and takes its class ``MyModel``;
    ``pkg.mod.Class`` is split at the last dot. ``path`` (default: the working
    directory) is put first on ``sys.path``. Model files written for Seldon may
    ``import seldon_core`` without seldon-core installed: the alias to infergraph's
    stand-in is put in place here, just before the first user import.
    """
    folder = str(Path(path or ".").resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name, _, class_name = interface_name.rpartition(".")
    if not module_name:
        module_name = class_name = interface_name
    seldon_alias.install()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise LoadError(
                f"Cannot import {interface_name!r}: no module named {module_name!r} in {folder} "
                "or on the Python path"
            ) from exc
        hint = seldon_alias.missing_hint(exc.name)
        raise LoadError(f"Cannot import {module_name!r}: {exc}{hint}") from exc
    except Exception as exc:
        raise LoadError(f"Importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise LoadError(f"Module {module_name!r} has no class {class_name!r}")
    if not inspect.isclass(cls):
        raise LoadError(f"{interface_name!r} is a {type(cls).__name__}, not a class")
    return cls


def instantiate(cls: type[Any], parameters: dict[str, Any]) -> Any:
    """Build the user object with the parameters as keyword arguments."""
    try:
        inspect.signature(cls).bind(**parameters)
    except TypeError as exc:
        raise LoadError(
            f"{cls.__name__}.__init__ does not accept the parameters {sorted(parameters)}: {exc}"
        ) from exc
    except ValueError:
        pass  # no signature to check (a builtin); the call below tells
    try:
        return cls(**parameters)
    except InferGraphError:
        raise  # already says what is wrong (e.g. a prepackaged server's bad parameter)
    except Exception as exc:
        raise LoadError(
            f"{cls.__name__}(**{parameters!r}) raised {type(exc).__name__}: {exc}"
        ) from exc
