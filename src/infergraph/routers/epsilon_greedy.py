"""``EPSILON_GREEDY``: Seldon's epsilon-greedy router (``components/routers/epsilon-greedy``).

The simplest bandit to reason about: a fixed share of traffic (``epsilon``) keeps exploring,
the rest goes to the branch with the best observed success rate.
"""

from __future__ import annotations

import threading

import numpy as np

from infergraph.routers._params import integer, probability
from infergraph.routers.bandits import BanditRouter, success_rates
from infergraph.routers.state import BanditCounts, BanditStore

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(BanditRouter):
    """Exploit the best branch with probability 1 - ``epsilon``, else explore another one.

    A branch's value is successes / tries (0 before its first try); the best branch is the
    highest value, ties broken at random, recomputed whenever the counters change (by this
    replica's feedback or another's). ``best_branch`` is the starting branch (random by
    default) and is used only while the shared state holds no tries. Unlike Seldon, which
    tested ``if best_branch:``, ``best_branch=0`` is honoured. With one branch every request
    goes to it.
    """

    def __init__(
        self,
        n_branches: int,
        epsilon: float = 0.1,
        best_branch: int | None = None,
        seed: int | None = None,
        branch_names: str | None = None,
        verbose: bool = False,
        history: bool = False,
        store: BanditStore | None = None,
        key: str | None = None,
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
        owner = type(self).__name__
        self.epsilon = probability(owner, "epsilon", epsilon)
        self._lock = threading.Lock()
        self._seen = self._start_counts.fit(self.n_branches)
        if best_branch is not None:
            self.best_branch = integer(owner, "best_branch", best_branch, 0, self.n_branches)
        else:
            self.best_branch = int(self._rng.integers(self.n_branches))
        if any(self._seen.tries):
            self.best_branch = self._best(self._seen)

    def choose(self, counts: BanditCounts) -> int:
        with self._lock:
            if counts != self._seen:
                self._seen, self.best_branch = counts, self._best(counts)
            best = self.best_branch
        if self.n_branches == 1 or self._rng.random() >= self.epsilon:
            return best
        other = int(self._rng.integers(self.n_branches - 1))
        return other + 1 if other >= best else other

    def learned(self, counts: BanditCounts) -> None:
        with self._lock:
            self._seen, self.best_branch = counts, self._best(counts)

    @property
    def branch_values(self) -> list[float]:
        """successes / tries per branch, as of the last counters this router saw."""
        return success_rates(self._seen).tolist()

    def _best(self, counts: BanditCounts) -> int:
        return self._argmax(success_rates(counts))
