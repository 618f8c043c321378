"""The public API is explicit: the top-level names, ``infergraph.sdk``, ``errors``, ``testing``."""

from __future__ import annotations

import importlib

import pytest

import infergraph

EXPECTED = {
    "infergraph": [
        "ComponentSettings",
        "InferGraphError",
        "SeldonResponse",
        "__version__",
        "component_app",
    ],
    "infergraph.testing": ["serve_grpc"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_names_are_exactly_these(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == EXPECTED[module]


@pytest.mark.parametrize("module", ["infergraph", "infergraph.sdk", "infergraph.errors"])
def test_all_is_sorted_and_every_name_exists(module: str) -> None:
    mod = importlib.import_module(module)
    assert list(mod.__all__) == sorted(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_version_is_a_string() -> None:
    assert isinstance(infergraph.__version__, str) and infergraph.__version__
