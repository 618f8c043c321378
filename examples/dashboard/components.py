"""Tiny Seldon Core v1 style classes for the dashboard example (docs/dashboard.md).

A request is a row of numbers. ``Doubler`` doubles them; ``Adder`` and ``CarefulAdder``
both answer their sum (the careful one takes a few milliseconds longer, so the waterfall
shows a difference); ``Candidate``, the shadow, answers twice the sum of what it is sent,
the same answer, so the shadow agrees unless the row holds something odd.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class Doubler:
    """TRANSFORMER: every feature times two."""

    def transform_input(self, X: Any, features_names: Any = None, meta: Any = None) -> Any:
        return np.asarray(X, dtype=np.float64) * 2.0


class Adder:
    """MODEL: the sum of each row."""

    def predict(self, X: Any, features_names: Any = None, meta: Any = None) -> Any:
        return np.asarray(X, dtype=np.float64).sum(axis=1, keepdims=True)


class CarefulAdder(Adder):
    """MODEL: the same sum, a little slower."""

    def predict(self, X: Any, features_names: Any = None, meta: Any = None) -> Any:
        time.sleep(0.004)
        return super().predict(X, features_names, meta)


class Candidate:
    """MODEL of the shadow predictor: twice the sum of the raw row, as the main graph answers."""

    def predict(self, X: Any, features_names: Any = None, meta: Any = None) -> Any:
        return np.asarray(X, dtype=np.float64).sum(axis=1, keepdims=True) * 2.0
