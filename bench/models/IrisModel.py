"""Seldon Core v1 style model class serving the iris LogisticRegression.

The same file and class are started by ``seldon-core-microservice IrisModel`` and by
``infergraph microservice IrisModel``: that is the drop-in claim under test. The module
name equals the class name because that is how both wrappers locate the class.
"""

from __future__ import annotations

from typing import Any

from iris_data import load_model


class IrisModel:
    """Returns class probabilities, as a typical sklearn Seldon model does."""

    def __init__(self) -> None:
        self.model = load_model()

    def predict(self, X: Any, features_names: list[str] | None = None) -> Any:
        return self.model.predict_proba(X)
