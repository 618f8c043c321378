"""Built-in routers and combiners, and the stores that hold bandit state.

The ``implementation`` names of a graph node (``RANDOM_ABTEST``, ``AVERAGE_COMBINER``,
``EPSILON_GREEDY``, ``THOMPSON_SAMPLING``, ``UCB1``) map to ordinary Seldon-style component
classes, so the graph loads, calls and observes them exactly like user components and no
router logic hides in the executor. Their parameters keep Seldon's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from infergraph.routers.abtest import RandomABTest
from infergraph.routers.average import AverageCombiner
from infergraph.routers.bandits import BanditRouter
from infergraph.routers.epsilon_greedy import EpsilonGreedy
from infergraph.routers.simple import SimpleModel, SimpleRouter
from infergraph.routers.state import (
    BanditCounts,
    BanditStore,
    MemoryStore,
    RedisStore,
    seldon_key,
)
from infergraph.routers.thompson import ThompsonSampling
from infergraph.routers.ucb import UCB1

__all__ = [
    "BUILTIN_CLASSES",
    "UCB1",
    "AverageCombiner",
    "BanditCounts",
    "BanditRouter",
    "BanditStore",
    "EpsilonGreedy",
    "MemoryStore",
    "RandomABTest",
    "RedisStore",
    "ThompsonSampling",
    "builtin_class",
    "seldon_key",
]

BUILTIN_CLASSES: Mapping[str, type] = MappingProxyType(
    {
        "RANDOM_ABTEST": RandomABTest,
        "AVERAGE_COMBINER": AverageCombiner,
        "EPSILON_GREEDY": EpsilonGreedy,
        "THOMPSON_SAMPLING": ThompsonSampling,
        "UCB1": UCB1,
        "SIMPLE_MODEL": SimpleModel,
        "SIMPLE_ROUTER": SimpleRouter,
    }
)
"""Graph node ``implementation`` -> the class that implements it (read-only)."""


def builtin_class(implementation: str) -> type | None:
    """The class for a built-in ``implementation`` name, or None for anything else.

    None lets the caller decide: ``UNKNOWN_IMPLEMENTATION`` means a user component, and the
    prepackaged model servers (``SKLEARN_SERVER`` ...) live in ``infergraph.servers``.
    """
    return BUILTIN_CLASSES.get(implementation)
