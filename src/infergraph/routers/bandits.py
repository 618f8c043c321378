"""What the multi-armed bandit routers share: parameters, state, and the feedback rule.

``EPSILON_GREEDY`` and ``THOMPSON_SAMPLING`` keep Seldon's parameter names and update rules
(``components/routers/``), so a ``SeldonDeployment`` that used Seldon's router images behaves
the same; ``UCB1`` follows the same conventions. All three fix what made Seldon's images hard
to run in production:

- the counters live in a :class:`~infergraph.routers.state.BanditStore`, per process by
  default or in Redis, updated atomically, and read before each route, so all replicas
  learn from all feedback (Seldon kept them per replica, or lost concurrent updates);
- feedback without routing, or for a branch that does not exist, is an error, never a
  silent no-op or a crash deep in the update;
- randomness is the router's own generator, not the process-global one Seldon reseeded.

The feedback rule of all of them: ``n`` = rows in the feedback's request (at least 1),
``successes = int(reward * n)``, ``failures = n - successes``, both credited to the branch
in ``routing``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from infergraph.errors import BadParameter, InferGraphError, LoadError
from infergraph.routers._params import (
    integer,
    make_rng,
    reward_value,
    routing_index,
    row_count,
)
from infergraph.routers.state import BanditCounts, BanditStore, MemoryStore
from infergraph.sdk import Router

__all__ = ["BanditRouter", "success_rates"]

_log = logging.getLogger(__name__)


class BanditRouter(Router):
    """What the bandits share: parameters, the store, and the feedback rule.

    Subclasses choose a branch from a snapshot of the counters (:meth:`choose`).
    ``branch_names`` (``"a:b:c"``) only labels branches in logs. ``history=True`` keeps the
    ``(routing, reward)`` of every feedback this instance received in ``feedback_history``.
    ``store`` and ``key`` select shared state; a store shared by several routers needs a key
    per router node (see :func:`~infergraph.routers.state.seldon_key`).
    """

    def __init__(
        self,
        n_branches: int,
        *,
        seed: int | None = None,
        branch_names: str | None = None,
        verbose: bool = False,
        history: bool = False,
        store: BanditStore | None = None,
        key: str | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        owner = type(self).__name__
        self.n_branches = integer(owner, "n_branches", n_branches, 1)
        self.branch_names = _branch_names(owner, branch_names, self.n_branches)
        self.verbose = bool(verbose)
        self.history = bool(history)
        self.feedback_history: list[tuple[int, float]] = []
        self._rng = make_rng(owner, seed, rng)
        if store is not None and not key:
            raise BadParameter(
                f"{owner}: parameter key is required with a shared store, one per router node"
            )
        self.store: BanditStore = store if store is not None else MemoryStore()
        self.key = key or "bandit"
        self._log_level = logging.INFO if self.verbose else logging.DEBUG
        self._start_counts = self._read_at_start(owner)

    def _read_at_start(self, owner: str) -> BanditCounts:
        try:
            counts = self.store.read(self.key, self.n_branches)
        except InferGraphError as exc:
            raise LoadError(
                f"{owner}: cannot read bandit state {self.key!r}: {exc}. If the key holds "
                "other data, delete it or configure another key."
            ) from exc
        if counts.branches > self.n_branches:
            raise BadParameter(
                f"{owner}: bandit state {self.key!r} has counters for {counts.branches} branches "
                f"but parameter n_branches is {self.n_branches}; use another key (or delete "
                "this one) when the number of children changes"
            )
        return counts

    def choose(self, counts: BanditCounts) -> int:
        """The branch for the next request, given the latest counters."""
        raise NotImplementedError

    def learned(self, counts: BanditCounts) -> None:
        """Called with the counters right after this router recorded a feedback."""

    def counts(self) -> BanditCounts:
        """The latest counters, one per branch (a read of the store: Redis is network I/O)."""
        return self.store.read(self.key, self.n_branches).fit(self.n_branches)

    def values(self, counts: BanditCounts) -> list[float]:
        """Each branch's current value as this algorithm sees it, for the dashboard: the
        observed success rate (successes / tries; 0 before a branch's first try)."""
        return success_rates(counts).tolist()

    def route(self, features: Any, feature_names: list[str]) -> int:
        counts = self.store.read(self.key, self.n_branches).fit(self.n_branches)
        branch = int(self.choose(counts))
        if _log.isEnabledFor(self._log_level):
            _log.log(self._log_level, "%s routes to %s", type(self).__name__, self._name(branch))
        return branch

    def send_feedback(
        self,
        features: Any,
        feature_names: list[str],
        reward: float,
        truth: Any,
        routing: int | None = None,
    ) -> None:
        owner = type(self).__name__
        branch, value = self.check_feedback(reward, routing)
        rows = row_count(features)
        successes = int(value * rows)
        counts = self.store.add(self.key, branch, successes, rows - successes, value)
        self.learned(counts.fit(self.n_branches))
        if self.history:
            self.feedback_history.append((branch, value))
        if _log.isEnabledFor(self._log_level):
            _log.log(
                self._log_level,
                "%s feedback for %s: reward %s over %d rows; successes %s, tries %s",
                owner,
                self._name(branch),
                value,
                rows,
                counts.successes,
                counts.tries,
            )

    def check_feedback(self, reward: float, routing: int | None) -> tuple[int, float]:
        """The branch and reward a feedback credits, or BadRequest; changes nothing.

        The graph calls it before any node sees a feedback, so that a feedback this router
        would refuse credits no model below it either.
        """
        owner = type(self).__name__
        return routing_index(owner, routing, self.n_branches), reward_value(owner, reward)

    def _name(self, branch: int) -> str:
        if self.branch_names is None:
            return f"branch {branch}"
        return f"branch {branch} ({self.branch_names[branch]})"

    def _argmax(self, values: np.ndarray) -> int:
        """Index of the largest value, ties broken at random (Seldon's rule)."""
        best = np.flatnonzero(values == values.max())
        return int(best[0] if len(best) == 1 else self._rng.choice(best))


def success_rates(counts: BanditCounts) -> np.ndarray:
    """successes / tries per branch, 0 where a branch has no tries."""
    successes = np.asarray(counts.successes, dtype=np.float64)
    tries = np.asarray(counts.tries, dtype=np.float64)
    return np.divide(successes, tries, out=np.zeros_like(successes), where=tries > 0)


def _branch_names(owner: str, names: str | None, n_branches: int) -> list[str] | None:
    if names is None:
        return None
    if not isinstance(names, str):
        raise BadParameter(
            f"{owner}: parameter branch_names must be a string like 'a:b:c', got {names!r}"
        )
    parts = names.split(":")
    if len(parts) != n_branches:
        raise BadParameter(
            f"{owner}: parameter branch_names {names!r} names {len(parts)} branches "
            f"but n_branches is {n_branches}"
        )
    return parts
