"""Seldon Core v1 style no-op node for the graph benchmark: returns its input unchanged.

With no model work to hide it, the cost of a graph over a single node is the cost of its
extra hops alone.
"""

from __future__ import annotations

from typing import Any


class NoopModel:
    def predict(self, X: Any, features_names: list[str] | None = None) -> Any:
        return X
