"""Checks shared by the built-in routers, so each rejects bad input with the same words.

Parameters arrive already type-converted from the graph spec, but a built-in class can also
be built by hand, so construction checks types and ranges itself and names the parameter:
a misconfigured router must fail at start-up, never on the first request.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from infergraph.errors import BadParameter, BadRequest

__all__ = ["integer", "make_rng", "probability", "reward_value", "routing_index", "row_count"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def probability(owner: str, name: str, value: Any) -> float:
    """``value`` as a float in [0, 1], or BadParameter naming ``owner`` and ``name``."""
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise BadParameter(
            f"{owner}: parameter {name} must be a number between 0 and 1, got {value!r}"
        )
    return float(value)


def integer(owner: str, name: str, value: Any, minimum: int, below: int | None = None) -> int:
    """``value`` as an int with ``minimum <= value`` (and ``value < below``), or BadParameter."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < minimum or (below is not None and value >= below):
        bound = f">= {minimum}" if below is None else f"from {minimum} to {below - 1}"
        raise BadParameter(f"{owner}: parameter {name} must be an integer {bound}, got {value!r}")
    return int(value)


def make_rng(owner: str, seed: Any, rng: np.random.Generator | None) -> np.random.Generator:
    """The router's own random generator: injected, seeded, or fresh; never the global one."""
    if rng is not None:
        if seed is not None:
            raise BadParameter(f"{owner}: give either parameter seed or rng, not both")
        return rng
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(integer(owner, "seed", seed, 0))


def row_count(features: Any) -> int:
    """Rows in the feedback's request (Seldon: ``features.shape[0]``), at least 1.

    A feedback without request data still reports one outcome, so it counts as one row
    rather than vanishing.
    """
    shape = getattr(features, "shape", None)
    if shape is not None:
        rows = int(shape[0]) if len(shape) else 1
    elif isinstance(features, list | tuple):
        rows = len(features)
    else:
        rows = 1
    return max(rows, 1)


def reward_value(owner: str, reward: Any) -> float:
    """The feedback reward as a float in [0, 1], or BadRequest.

    A Bernoulli bandit counts ``int(reward * rows)`` successes; a reward above 1 would make
    failures negative and a negative one would do the opposite, corrupting shared state.
    """
    if not _is_number(reward) or not math.isfinite(float(reward)) or not 0 <= reward <= 1:
        raise BadRequest(
            f"{owner}: feedback reward must be a number between 0 and 1 (the fraction of "
            f"successful predictions in the request), got {reward!r}"
        )
    return float(reward)


def routing_index(owner: str, routing: Any, n_branches: int) -> int:
    """The branch a feedback is for, or BadRequest: feedback is never silently dropped."""
    if routing is None:
        raise BadRequest(
            f"{owner}: feedback has no routing for this router, so the reward cannot be "
            "credited to a branch. Send the prediction's response (with its meta.routing) "
            "back in the feedback."
        )
    ok = isinstance(routing, int | np.integer) and not isinstance(routing, bool | np.bool_)
    if not ok or not 0 <= routing < n_branches:
        raise BadRequest(
            f"{owner}: feedback routing {routing!r} is not a branch of this router "
            f"(expected 0 to {n_branches - 1})"
        )
    return int(routing)
