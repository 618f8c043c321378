"""RANDOM_ABTEST, AVERAGE_COMBINER and the registry of built-in implementations."""

from __future__ import annotations

import numpy as np
import pytest

from infergraph.errors import BadParameter, BadRequest
from infergraph.routers import (
    UCB1,
    AverageCombiner,
    EpsilonGreedy,
    RandomABTest,
    ThompsonSampling,
    builtin_class,
)

# ---------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("implementation", "cls"),
    [
        pytest.param("RANDOM_ABTEST", RandomABTest, id="random-abtest"),
        pytest.param("AVERAGE_COMBINER", AverageCombiner, id="average-combiner"),
        pytest.param("EPSILON_GREEDY", EpsilonGreedy, id="epsilon-greedy"),
        pytest.param("THOMPSON_SAMPLING", ThompsonSampling, id="thompson-sampling"),
        pytest.param("UCB1", UCB1, id="ucb1"),
    ],
)
def test_builtin_class_maps_implementation_names(implementation, cls):
    assert builtin_class(implementation) is cls


@pytest.mark.parametrize(
    "implementation",
    [
        pytest.param("UNKNOWN_IMPLEMENTATION", id="user-component"),
        pytest.param("SKLEARN_SERVER", id="model-server"),
        pytest.param("random_abtest", id="case-sensitive"),
    ],
)
def test_builtin_class_is_none_for_other_names(implementation):
    assert builtin_class(implementation) is None


# ---------------------------------------------------------------- RANDOM_ABTEST


def test_abtest_split_matches_ratio_a():
    router = RandomABTest(ratioA=0.3, seed=42)
    routes = [router.route(np.zeros((1, 1)), []) for _ in range(10_000)]
    assert set(routes) == {0, 1}
    assert abs(routes.count(0) / len(routes) - 0.3) < 0.02


def test_abtest_default_ratio_is_half():
    router = RandomABTest(seed=7)
    routes = [router.route(None, []) for _ in range(10_000)]
    assert router.ratioA == 0.5
    assert abs(routes.count(0) / len(routes) - 0.5) < 0.02


@pytest.mark.parametrize(
    ("ratio", "child"),
    [pytest.param(1.0, 0, id="ratio-1-always-A"), pytest.param(0.0, 1, id="ratio-0-always-B")],
)
def test_abtest_extreme_ratios(ratio, child):
    router = RandomABTest(ratioA=ratio, seed=1)
    assert {router.route(None, []) for _ in range(1_000)} == {child}


def test_abtest_is_reproducible_with_a_seed_and_returns_plain_ints():
    a, b = RandomABTest(0.5, seed=3), RandomABTest(0.5, seed=3)
    routes_a = [a.route(None, []) for _ in range(200)]
    assert routes_a == [b.route(None, []) for _ in range(200)]
    assert all(type(r) is int for r in routes_a)


def test_abtest_takes_an_injected_generator():
    router = RandomABTest(0.5, rng=np.random.default_rng(5))
    expected = np.random.default_rng(5).random(50) < 0.5
    assert [router.route(None, []) for _ in range(50)] == [0 if e else 1 for e in expected]


@pytest.mark.parametrize(
    "ratio",
    [
        pytest.param(-0.1, id="negative"),
        pytest.param(1.5, id="above-one"),
        pytest.param(float("nan"), id="nan"),
        pytest.param("0.5", id="string"),
        pytest.param(True, id="bool"),
    ],
)
def test_abtest_rejects_bad_ratio_a(ratio):
    with pytest.raises(BadParameter, match=r"RandomABTest: parameter ratioA must be a number"):
        RandomABTest(ratioA=ratio)


def test_abtest_rejects_seed_and_rng_together():
    with pytest.raises(BadParameter, match="seed or rng, not both"):
        RandomABTest(0.5, seed=1, rng=np.random.default_rng(1))


# ---------------------------------------------------------------- AVERAGE_COMBINER


def test_average_combiner_returns_the_element_wise_mean():
    combiner = AverageCombiner()
    xs = [np.array([[1, 2, 3], [4, 5, 6]]), [[3.0, 2.0, 1.0], [0.0, 1.0, 2.0]], np.ones((2, 3))]
    out = combiner.aggregate(xs, [["a", "b", "c"], ["x", "y", "z"], []])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[5 / 3, 5 / 3, 5 / 3], [5 / 3, 7 / 3, 3.0]])


def test_average_combiner_of_one_child_is_that_child_as_float():
    out = AverageCombiner().aggregate([np.array([[1, 2]], dtype=np.int32)], [["a", "b"]])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1.0, 2.0]])


def test_average_combiner_keeps_the_first_childs_names():
    assert AverageCombiner.output_names([["p0", "p1"], ["q0", "q1"]]) == ["p0", "p1"]
    assert AverageCombiner.output_names([]) == []


@pytest.mark.parametrize(
    ("xs", "message"),
    [
        pytest.param([], "Combiner received no inputs", id="no-inputs"),
        pytest.param(
            [np.ones((2, 3)), np.ones(3)],
            r"Combiner received data that is not 2 dimensional: child 1 has shape \(3,\)",
            id="child-1-is-1d",
        ),
        pytest.param(
            [np.ones((1, 2, 2))],
            r"not 2 dimensional: child 0 has shape \(1, 2, 2\)",
            id="child-0-is-3d",
        ),
        pytest.param(
            [np.ones((2, 3)), np.ones((3, 3))],
            r"Expected batch length 2 with 3 columns like child 0 \(2, 3\) "
            r"but child 1 has shape \(3, 3\)",
            id="batch-length-differs",
        ),
        pytest.param(
            [np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4))],
            r"Expected batch length 2 .* but child 2 has shape \(2, 4\)",
            id="columns-differ",
        ),
        pytest.param(
            [np.ones((1, 2)), [["a", "b"]]],
            r"Combiner received data that is not numeric: child 1 has values of type <U1",
            id="strings",
        ),
        pytest.param(
            [[[1, 2], [3]]],
            r"Combiner cannot extract data shape: child 0",
            id="ragged",
        ),
        pytest.param(
            [np.ones((1, 2), dtype=complex)],
            r"not numeric: child 0 has values of type complex128",
            id="complex",
        ),
    ],
)
def test_average_combiner_errors(xs, message):
    with pytest.raises(BadRequest, match=message):
        AverageCombiner().aggregate(xs, [[] for _ in xs])


# ---------------------------------------------------------------- served like user code


async def test_builtins_are_served_like_user_components(asgi_client):
    router = asgi_client(RandomABTest(ratioA=1.0, seed=0), unit_id="ab")
    response = await router.post("/route", json={"data": {"ndarray": [[1.0]]}})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["ndarray"] == [[0]]

    combiner = asgi_client(AverageCombiner(), unit_id="avg")
    body = [{"data": {"ndarray": [[1, 2]]}}, {"data": {"ndarray": [[3, 6]]}}]
    response = await combiner.post("/aggregate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["ndarray"] == [[2.0, 4.0]]


async def test_average_combiner_error_is_a_seldon_400(asgi_client, seldon_error):
    combiner = asgi_client(AverageCombiner(), unit_id="avg")
    body = [{"data": {"ndarray": [[1, 2]]}}, {"data": {"ndarray": [1, 2]}}]
    response = await combiner.post("/aggregate", json=body)
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "not 2 dimensional", "child 1")
