"""Seldon Core v1 style model that returns the sum of each row of its input.

Used by ``bench/v2.py`` to measure what a large tensor costs to receive and decode: summing
1000 x 100 float32 values takes numpy a few microseconds, so nearly all of a request's cost
is the transport and the codec. Every value is read, so a truncated tensor would show.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RowSumsModel:
    def predict(self, X: Any, features_names: list[str] | None = None) -> Any:
        return np.asarray(X).sum(axis=1)
