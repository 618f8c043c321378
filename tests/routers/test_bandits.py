"""EPSILON_GREEDY, THOMPSON_SAMPLING and UCB1: learning, Seldon's rules, validation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from infergraph.errors import BadParameter, BadRequest
from infergraph.routers import (
    UCB1,
    BanditCounts,
    EpsilonGreedy,
    MemoryStore,
    ThompsonSampling,
    seldon_key,
)

ALGORITHMS = [
    pytest.param(EpsilonGreedy, id="epsilon-greedy"),
    pytest.param(ThompsonSampling, id="thompson-sampling"),
    pytest.param(UCB1, id="ucb1"),
]

ROUTER_SEED = 11
ENV_SEED = 2024
PAYOFF = (0.2, 0.8)  # arm 1 is the better one


def simulate(router, requests: int = 400, env_seed: int = ENV_SEED) -> list[int]:
    """Each request is routed, then its Bernoulli reward comes back as feedback (one row)."""
    env = np.random.default_rng(env_seed)
    features = np.zeros((1, 2))
    chosen = []
    for _ in range(requests):
        branch = router.route(features, ["a", "b"])
        reward = 1.0 if env.random() < PAYOFF[branch] else 0.0
        router.send_feedback(features, ["a", "b"], reward, None, routing=branch)
        chosen.append(branch)
    return chosen


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_converges_to_the_better_arm(algorithm):
    chosen = simulate(algorithm(n_branches=2, seed=ROUTER_SEED))
    share = chosen[-150:].count(1) / 150
    assert share >= 0.8, f"{algorithm.__name__} sent {share:.0%} of the last 150 to the best arm"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_same_decisions(algorithm):
    first = simulate(algorithm(2, seed=5), requests=100)
    assert simulate(algorithm(2, seed=5), requests=100) == first
    assert all(type(branch) is int for branch in first)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_feedback_counts_int_reward_times_rows(algorithm):
    store = MemoryStore()
    router = algorithm(3, seed=1, store=store, key="k")
    router.send_feedback(np.zeros((10, 4)), [], 0.75, None, routing=2)  # 7 of 10
    router.send_feedback(np.zeros((3, 4)), [], 0.5, None, routing=2)  # int(1.5) = 1 of 3
    router.send_feedback(np.array([]), [], 1.0, None, routing=0)  # no rows still counts 1
    router.send_feedback([[1], [2]], [], 0.0, None, routing=1)  # a list of 2 rows
    counts = store.read("k", 3)
    assert counts.successes == (1, 0, 8)
    assert counts.failures == (0, 2, 5)
    assert counts.tries == (1, 2, 13)
    assert counts.total_reward == 2.25
    assert counts.feedback_count == 4


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_feedback_without_routing_is_an_error(algorithm):
    router = algorithm(2, seed=1)
    with pytest.raises(BadRequest, match="feedback has no routing for this router"):
        router.send_feedback(np.zeros((1, 1)), [], 1.0, None)
    with pytest.raises(BadRequest, match="feedback has no routing for this router"):
        router.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=None)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "routing",
    [
        pytest.param(2, id="past-the-end"),
        pytest.param(-1, id="all-children"),
        pytest.param(-2, id="abort"),
        pytest.param(1.0, id="float"),
        pytest.param(True, id="bool"),
    ],
)
def test_feedback_for_an_unknown_branch_is_an_error(algorithm, routing):
    router = algorithm(2, seed=1)
    with pytest.raises(BadRequest, match=r"feedback routing .* is not a branch .*0 to 1"):
        router.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=routing)
    assert router.store.read(router.key, 2).feedback_count == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "reward",
    [
        pytest.param(1.5, id="above-one"),
        pytest.param(-0.5, id="negative"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(None, id="none"),
    ],
)
def test_rewards_outside_zero_one_are_rejected(algorithm, reward):
    router = algorithm(2, seed=1)
    with pytest.raises(BadRequest, match="reward must be a number between 0 and 1"):
        router.send_feedback(np.zeros((1, 1)), [], reward, None, routing=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"n_branches": 0}, r"parameter n_branches must be an integer >= 1", id="n0"),
        pytest.param({"n_branches": "2"}, r"parameter n_branches", id="n-string"),
        pytest.param({"n_branches": 2, "epsilon": 1.2}, r"parameter epsilon", id="epsilon"),
        pytest.param(
            {"n_branches": 2, "best_branch": 2},
            r"parameter best_branch must be an integer from 0 to 1, got 2",
            id="best-branch",
        ),
        pytest.param(
            {"n_branches": 3, "branch_names": "a:b"},
            r"parameter branch_names 'a:b' names 2 branches but n_branches is 3",
            id="branch-names",
        ),
        pytest.param({"n_branches": 2, "seed": -1}, r"parameter seed", id="seed"),
        pytest.param(
            {"n_branches": 2, "store": MemoryStore()}, r"parameter key is required", id="no-key"
        ),
    ],
)
def test_epsilon_greedy_validates_parameters(kwargs, message):
    with pytest.raises(BadParameter, match=f"EpsilonGreedy: {message}"):
        EpsilonGreedy(**kwargs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_n_branches_is_validated_by_every_algorithm(algorithm):
    with pytest.raises(BadParameter, match=f"{algorithm.__name__}: parameter n_branches"):
        algorithm(n_branches=-3)


def test_stored_state_with_more_branches_is_refused():
    store = MemoryStore()
    store.add("k", 2, 1, 0, 1.0)
    with pytest.raises(BadParameter, match="counters for 3 branches but parameter n_branches is 2"):
        ThompsonSampling(2, store=store, key="k")


def test_epsilon_greedy_exploits_best_branch_and_explores_the_others():
    router = EpsilonGreedy(3, epsilon=0.3, best_branch=0, seed=3)
    routes = [router.route(None, []) for _ in range(9_000)]
    assert router.best_branch == 0  # no feedback, no change (best_branch=0 is honoured)
    assert abs(routes.count(0) / 9_000 - 0.7) < 0.02
    assert abs(routes.count(1) / 9_000 - 0.15) < 0.02
    assert abs(routes.count(2) / 9_000 - 0.15) < 0.02


@pytest.mark.parametrize(
    ("epsilon", "expected"),
    [pytest.param(0.0, {1}, id="never-explores"), pytest.param(1.0, {0, 2}, id="always")],
)
def test_epsilon_greedy_extremes(epsilon, expected):
    router = EpsilonGreedy(3, epsilon=epsilon, best_branch=1, seed=3)
    assert {router.route(None, []) for _ in range(500)} == expected


def test_epsilon_greedy_single_branch_always_routes_to_it():
    router = EpsilonGreedy(1, epsilon=1.0, seed=3)
    assert {router.route(None, []) for _ in range(50)} == {0}


def test_epsilon_greedy_best_branch_follows_values():
    router = EpsilonGreedy(3, best_branch=0, seed=2)
    router.send_feedback(np.zeros((4, 1)), [], 0.5, None, routing=1)
    assert router.best_branch == 1
    assert router.branch_values == [0.0, 0.5, 0.0]
    router.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=2)
    assert router.best_branch == 2


def test_epsilon_greedy_breaks_ties_at_random():
    bests = set()
    for seed in range(20):
        router = EpsilonGreedy(3, best_branch=0, seed=seed)
        router.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=0)
        router.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=2)
        bests.add(router.best_branch)
    assert bests == {0, 2}


def test_epsilon_greedy_starts_from_shared_state():
    store = MemoryStore()
    store.add("k", 1, 3, 1, 0.75)
    router = EpsilonGreedy(2, best_branch=0, seed=1, store=store, key="k")
    assert router.best_branch == 1  # what was learned wins over the starting branch


def test_thompson_sampling_uses_beta_one_plus_counts():
    store = MemoryStore()
    store.add("k", 0, 30, 10, 0.75)
    router = ThompsonSampling(2, store=store, key="k", rng=np.random.default_rng(9))
    reference = np.random.default_rng(9)
    for _ in range(50):
        draws = reference.beta([31.0, 1.0], [11.0, 1.0])
        assert router.route(None, []) == int(np.argmax(draws))


def test_ucb1_tries_every_branch_first():
    router = UCB1(3, seed=4)
    first = []
    for _ in range(3):
        branch = router.route(None, [])
        first.append(branch)
        router.send_feedback(np.zeros((1, 1)), [], 0.0, None, routing=branch)
    assert sorted(first) == [0, 1, 2]


def test_ucb1_maximises_mean_plus_bonus():
    store = MemoryStore()
    store.add("k", 0, 9, 1, 0.9)
    store.add("k", 1, 1, 9, 0.1)
    store.add("k", 2, 0, 1, 0.0)
    router = UCB1(3, seed=4, store=store, key="k")
    # N = 21: bounds 0.9 + 0.78, 0.1 + 0.78, 0.0 + 2.47: the rarely tried branch wins
    assert router.route(None, []) == 2
    store.add("k", 2, 0, 9, 0.0)
    # N = 30: bounds 0.9 + 0.82, 0.1 + 0.82, 0.0 + 0.82
    assert router.route(None, []) == 0


def test_history_keeps_routing_and_reward_pairs():
    router = ThompsonSampling(2, seed=1, history=True)
    router.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=1)
    router.send_feedback(np.zeros((1, 1)), [], 0.0, None, routing=0)
    assert router.feedback_history == [(1, 1.0), (0, 0.0)]
    assert ThompsonSampling(2, seed=1).feedback_history == []


def test_branch_names_label_branches():
    router = EpsilonGreedy(2, branch_names="blue:green", verbose=True, seed=1)
    assert router.branch_names == ["blue", "green"]


def test_routers_sharing_a_store_learn_from_each_others_feedback():
    store = MemoryStore()
    key = seldon_key("dep", "pred", "router")
    replicas = [ThompsonSampling(2, seed=s, store=store, key=key) for s in range(2)]
    for _ in range(200):
        replicas[0].send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=1)
        replicas[1].send_feedback(np.zeros((1, 1)), [], 0.0, None, routing=0)
    for replica in replicas:
        assert [replica.route(None, []) for _ in range(100)] == [1] * 100


def test_seldon_key_format():
    assert seldon_key("sdep", "default", "router") == "seldon_sdep_default_router-beta-params"
    assert seldon_key("a", "b", "c", "-eg") == "seldon_a_b_c-eg"


def test_memory_store_updates_are_atomic_across_threads():
    store = MemoryStore()
    router = EpsilonGreedy(2, seed=1, store=store, key="k")

    def send(branch: int) -> None:
        for i in range(500):
            router.send_feedback(np.zeros((2, 1)), [], 0.5 * (i % 3), None, routing=branch)

    threads = [threading.Thread(target=send, args=(i % 2,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = store.read("k", 2)
    assert counts == BanditCounts((1996, 1996), (2004, 2004), 1996.0, 4000)


async def test_bandit_served_as_a_component_with_feedback_routing(asgi_client, seldon_error):
    router = EpsilonGreedy(2, best_branch=1, epsilon=0.0, seed=1)
    client = asgi_client(router, unit_id="eg")
    response = await client.post("/route", json={"data": {"ndarray": [[1.0, 2.0]]}})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["ndarray"] == [[1]]

    feedback = {
        "request": {"data": {"ndarray": [[1.0, 2.0], [3.0, 4.0]]}},
        "response": {"meta": {"routing": {"eg": 0}}, "data": {"ndarray": [[0.1]]}},
        "reward": 0.5,
    }
    response = await client.post("/send-feedback", json=feedback)
    assert response.status_code == 200, response.text
    counts = router.store.read(router.key, 2)
    assert (counts.successes, counts.failures) == ((1, 0), (1, 0))

    del feedback["response"]["meta"]
    response = await client.post("/send-feedback", json=feedback)
    seldon_error(response, 400, "MICROSERVICE_BAD_DATA", "feedback has no routing")
