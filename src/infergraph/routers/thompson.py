"""``THOMPSON_SAMPLING``: Seldon's Thompson-sampling router.

Same parameters and update rule as ``components/routers/thompson-sampling`` in Seldon.

Explores in proportion to its uncertainty, so it wastes fewer requests on a clearly worse
branch than a fixed ``epsilon`` does.
"""

from __future__ import annotations

import numpy as np

from infergraph.routers.bandits import BanditRouter
from infergraph.routers.state import BanditCounts, BanditStore

__all__ = ["ThompsonSampling"]


class ThompsonSampling(BanditRouter):
    """Route to the branch whose draw from its Beta posterior is highest.

    Beta-Bernoulli with a Beta(1, 1) prior per branch: Beta(1 + successes, 1 + failures).
    With ``store=RedisStore(url)`` and ``key=seldon_key(deployment, predictor, node)`` it is
    Seldon's ``ThompsonSamplingPersistent``, with atomic updates.
    """

    def __init__(
        self,
        n_branches: int,
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

    def values(self, counts: BanditCounts) -> list[float]:
        """The mean of each branch's posterior, (1 + successes) / (2 + tries)."""
        successes = np.asarray(counts.successes, dtype=np.float64)
        return ((1.0 + successes) / (2.0 + np.asarray(counts.tries, dtype=np.float64))).tolist()

    def choose(self, counts: BanditCounts) -> int:
        alpha = 1.0 + np.asarray(counts.successes, dtype=np.float64)
        beta = 1.0 + np.asarray(counts.failures, dtype=np.float64)
        return int(np.argmax(self._rng.beta(alpha, beta)))
