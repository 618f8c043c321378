"""``UCB1``: the upper-confidence-bound bandit (Auer et al., 2002); not in Seldon.

Apart from tie-breaks it is deterministic given the counters, so its decisions are easy to
explain and replay.
"""

from __future__ import annotations

import math

import numpy as np

from infergraph.routers.bandits import BanditRouter
from infergraph.routers.state import BanditCounts, BanditStore

__all__ = ["UCB1"]


class UCB1(BanditRouter):
    """Upper confidence bound: try every branch once, then maximise mean + sqrt(2 ln N / n).

    ``N`` is the tries of all branches and ``n`` the branch's own, counted in rows like the
    other bandits. Deterministic given the counters, except that ties (and the order of
    untried branches) are broken at random, so replicas sharing state do not all pile onto
    the same untried branch.
    """

    def __init__(
        self,
        n_branches: int,
        seed: int | None = None,
        branch_names: str | None = None,
        store: BanditStore | None = None,
        key: str | None = None,
        verbose: bool = False,
        history: bool = False,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            n_branches,
            seed=seed,
            branch_names=branch_names,
            verbose=verbose,
            history=history,
            store=store,
            key=key,
            rng=rng,
        )

    def choose(self, counts: BanditCounts) -> int:
        tries = np.asarray(counts.tries, dtype=np.float64)
        untried = tries == 0
        if untried.any():
            return self._argmax(untried.astype(np.float64))
        means = np.asarray(counts.successes, dtype=np.float64) / tries
        return self._argmax(means + np.sqrt(2.0 * math.log(tries.sum()) / tries))
