"""Seldon Core v1 style model that returns its input unchanged.

Used to measure the serving overhead alone (CPU per request of the wrapper itself),
with no model work to hide it.
"""

from __future__ import annotations

from typing import Any


class NoopModel:
    def predict(self, X: Any, features_names: list[str] | None = None) -> Any:
        return X
