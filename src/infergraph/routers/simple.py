"""Seldon's Java-engine test stubs, kept so that manifests naming them still run."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SimpleModel", "SimpleRouter"]


class SimpleModel:
    """``SIMPLE_MODEL``: fixed scores for three classes, one row per input row."""

    def predict(self, X: Any, feature_names: list[str]) -> Any:
        rows = len(X) if getattr(X, "ndim", 0) > 1 else 1
        return np.tile(np.array([[0.1, 0.9, 0.5]]), (rows, 1))

    def class_names(self) -> list[str]:
        return ["class0", "class1", "class2"]


class SimpleRouter:
    """``SIMPLE_ROUTER``: always the first child."""

    def route(self, features: Any, feature_names: list[str]) -> int:
        return 0
