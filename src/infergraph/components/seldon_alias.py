"""Make ``import seldon_core`` find infergraph's stand-in when seldon-core is not installed.

Seldon model files import ``seldon_core`` for a base class, an exception or protobuf
messages, but seldon-core's pins (protobuf, numpy, Flask) cannot be installed beside
infergraph's stack. :func:`install` appends a finder to ``sys.meta_path`` that maps
``seldon_core`` and ``seldon_core.<name>`` onto ``infergraph.compat.seldon_core``.

- It is appended, so the normal finders come first: an installed seldon-core is always
  the one imported, and the finder never answers for its submodules either.
- The loader installs it just before it imports user code, never at ``import infergraph``:
  nothing changes for a process that only uses infergraph as a library.
- A module alias is the compat module object itself (``sys.modules`` holds it under both
  names, its ``__spec__`` left as it was). A package alias is a small module of its own
  with an empty ``__path__``, holding the package's public names, so that every submodule
  import comes back here rather than being loaded a second time from the compat folder.

The compat package is named only as a string, so that ``components`` does not import a
layer above it; it is imported when model code first imports ``seldon_core``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["ALIAS", "TARGET", "SeldonCoreAlias", "install", "is_installed", "missing_hint"]

ALIAS = "seldon_core"
TARGET = "infergraph.compat.seldon_core"
MARK = "__infergraph_alias_of__"
"""Set on every alias package: the compat package it stands for."""


class SeldonCoreAlias(importlib.abc.MetaPathFinder):
    """Finds ``seldon_core[.<name>]`` in ``infergraph.compat.seldon_core`` (last resort)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        if fullname != ALIAS:
            parent = sys.modules.get(fullname.rpartition(".")[0])
            if getattr(parent, MARK, None) is None:
                return None  # a submodule of a real seldon_core: not ours to answer
        module = _compat_module(TARGET + fullname[len(ALIAS) :])
        if module is None:
            return None
        return importlib.util.spec_from_loader(
            fullname, _AliasLoader(module), is_package=hasattr(module, "__path__")
        )


class _AliasLoader(importlib.abc.Loader):
    """Hands out the compat module (or a package alias of it) under the Seldon name."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        if spec.submodule_search_locations is None:
            return self._module
        package = ModuleType(spec.name, self._module.__doc__)
        public = list(getattr(self._module, "__all__", ()))
        for name in public:
            value = getattr(self._module, name)
            if not isinstance(value, ModuleType):  # submodules are aliased when imported
                setattr(package, name, value)
        setattr(package, "__all__", public)  # noqa: B010 (ModuleType declares no __all__)
        setattr(package, MARK, self._module.__name__)
        return package

    def exec_module(self, module: ModuleType) -> None:
        if module is self._module:
            # importlib pointed the shared module's __spec__ at the alias name; undo that
            module.__spec__ = self._spec


def _compat_module(name: str) -> ModuleType | None:
    """The compat module ``name`` (an attribute of its package, such as a re-exported
    protobuf module, or a module file), or None when the compat layer has no such name."""
    package_name, _, leaf = name.rpartition(".")
    package = importlib.import_module(package_name)
    value = getattr(package, leaf, None)
    if isinstance(value, ModuleType):
        return value
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None  # Seldon has it, infergraph does not provide it: a normal ImportError
        raise


def is_installed() -> bool:
    """Whether this process's ``sys.meta_path`` holds the finder."""
    return any(_is_alias(finder) for finder in sys.meta_path)


def _is_alias(finder: object) -> bool:
    # by name, not isinstance: a re-imported copy of this module must not add a second one
    kind = type(finder)
    return kind.__qualname__ == SeldonCoreAlias.__qualname__ and kind.__module__ == __name__


def install() -> None:
    """Append the finder to ``sys.meta_path`` once; further calls do nothing."""
    if not is_installed():
        sys.meta_path.append(SeldonCoreAlias())


def missing_hint(name: str | None) -> str:
    """A sentence for an import error on ``name`` when the stand-in, not seldon-core, is
    in use and lacks that module; "" otherwise."""
    if not name or not name.startswith(ALIAS + "."):
        return ""
    if getattr(sys.modules.get(ALIAS), MARK, None) is None:
        return ""
    return (
        f"; seldon-core is not installed, and infergraph's stand-in for it ({TARGET}) "
        f"has no {name}: see docs/interop.md for the names it provides"
    )
