"""``RANDOM_ABTEST``: split the requests of one node between two children at random.

Seldon's Go executor flips this coin itself (``predictor/components.go::abTestRouter``);
here it is an ordinary router class, so it is loaded, called, logged and measured like any
user router, and its randomness is injectable for tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infergraph.routers._params import make_rng, probability
from infergraph.sdk import Router

__all__ = ["RandomABTest"]


class RandomABTest(Router):
    """Route to child 0 with probability ``ratioA``, else to child 1.

    Same parameter and rule as Seldon: ``ratioA`` (default 0.5); child 0 when a uniform draw
    in [0, 1) is below ``ratioA``. So ``ratioA=1`` always picks child 0 and ``ratioA=0``
    always child 1.

    Unlike Seldon's Go executor, which never checks the child count (an index past the
    children panics there), the graph compiler requires exactly 2 children for this router,
    as Seldon's older Java engine did; this class therefore needs no child count.
    """

    def __init__(
        self,
        ratioA: float = 0.5,
        seed: int | None = None,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.ratioA = probability("RandomABTest", "ratioA", ratioA)
        self._rng = make_rng("RandomABTest", seed, rng)

    def route(self, features: Any, feature_names: list[str]) -> int:
        return 0 if self._rng.random() < self.ratioA else 1
