"""Bandit state shared through a real Redis: atomic across processes, visible to all replicas."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pytest
import redis

from infergraph.errors import LoadError
from infergraph.routers import (
    BanditCounts,
    EpsilonGreedy,
    RedisStore,
    ThompsonSampling,
    seldon_key,
)
from tests.helpers import redis_server
from tests.helpers.ports import HoldPorts

redis_url = redis_server.redis_url  # the session's redis-server

PROCESS_TIMEOUT = 120.0
REWARDS = (0.0, 0.25, 0.5, 0.75, 1.0)  # exact in binary, so sums compare with ==


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A key of its own for each test: the server is shared by the whole session."""
    return seldon_key("test", "default", request.node.name)


def test_store_counts_and_reads_back(redis_url, key):
    store = RedisStore(redis_url)
    try:
        assert store.read(key, 2) == BanditCounts((0, 0), (0, 0), 0.0, 0)
        after = store.add(key, 1, 3, 1, 0.75)
        assert after == BanditCounts((0, 3), (0, 1), 0.75, 1)
        store.add(key, 0, 0, 2, 0.0)
        assert store.read(key, 3) == BanditCounts((0, 3, 0), (2, 1, 0), 0.75, 2)
        assert store.read(key + "-other", 2).feedback_count == 0
    finally:
        store.close()


def test_replicas_route_on_each_others_feedback(redis_url, key):
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    try:
        learner, other = (
            ThompsonSampling(2, seed=i, store=s, key=key) for i, s in enumerate(stores)
        )
        for _ in range(100):
            learner.send_feedback(np.zeros((1, 1)), [], 1.0, None, routing=1)
            learner.send_feedback(np.zeros((1, 1)), [], 0.0, None, routing=0)
        assert [other.route(None, []) for _ in range(50)] == [1] * 50
        greedy = EpsilonGreedy(2, epsilon=0.0, best_branch=0, seed=1, store=stores[1], key=key)
        assert greedy.best_branch == 1  # starts from what the other replica learned
    finally:
        for store in stores:
            store.close()


def test_unreachable_redis_is_a_load_error_naming_the_url(held_ports: HoldPorts):
    url = f"redis://:s3cret@127.0.0.1:{held_ports(1)[0]}/0"  # nothing listens there
    with pytest.raises(
        LoadError, match=r"Cannot reach Redis at redis://:\*\*\*@127\.0\.0\.1:\d+/0"
    ):
        RedisStore(url, timeout_s=2.0)
    try:
        RedisStore(url, timeout_s=2.0)
    except LoadError as exc:
        assert "s3cret" not in str(exc)


def test_a_key_holding_other_data_fails_at_start_up(redis_url, key):
    client = redis.Redis.from_url(redis_url)
    try:
        client.rpush(key, 1, 1, 1, 1)  # the list layout of Seldon's persistent router
        store = RedisStore(redis_url)
        with pytest.raises(LoadError, match=f"ThompsonSampling: cannot read bandit state '{key}'"):
            ThompsonSampling(2, store=store, key=key)
        store.close()
    finally:
        client.delete(key)
        client.close()


def _replica(
    url: str,
    key: str,
    algorithm: type[EpsilonGreedy] | type[ThompsonSampling],
    seed: int,
    feedbacks: int,
    barrier: Any,
    results: Any,
) -> None:
    """One replica process: route and send feedback as fast as it can, then read the state."""
    store = RedisStore(url)
    router = algorithm(2, seed=seed, store=store, key=key)
    sent = [[0, 0], [0, 0]]  # per branch: successes, failures
    rewards = 0.0
    barrier.wait(PROCESS_TIMEOUT)  # both replicas start together
    for i in range(feedbacks):
        rows, reward = 1 + i % 3, REWARDS[(i + seed) % len(REWARDS)]
        features = np.zeros((rows, 2))
        branch = router.route(features, [])
        router.send_feedback(features, [], reward, None, routing=branch)
        successes = int(reward * rows)
        sent[branch][0] += successes
        sent[branch][1] += rows - successes
        rewards += reward
    barrier.wait(PROCESS_TIMEOUT)  # both replicas are done
    seen = store.read(key, 2)
    store.close()
    state = (seen.successes, seen.failures, seen.total_reward, seen.feedback_count)
    results.put((seed, sent, rewards, feedbacks, state))


@pytest.mark.slow
@pytest.mark.parametrize(
    "algorithm",
    [
        pytest.param(EpsilonGreedy, id="epsilon-greedy"),
        pytest.param(ThompsonSampling, id="thompson-sampling"),
    ],
)
def test_concurrent_feedback_from_two_processes_adds_up_exactly(redis_url, key, algorithm):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    feedbacks = 1500
    processes = [
        context.Process(
            target=_replica, args=(redis_url, key, algorithm, seed, feedbacks, barrier, results)
        )
        for seed in (1, 2)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=PROCESS_TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(PROCESS_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()
    assert [process.exitcode for process in processes] == [0, 0]

    store = RedisStore(redis_url)
    final = store.read(key, 2)
    store.close()
    successes = tuple(sum(r[1][b][0] for r in reports) for b in range(2))
    failures = tuple(sum(r[1][b][1] for r in reports) for b in range(2))
    rows_sent = sum((1 + i % 3) for i in range(feedbacks)) * 2
    assert final.total_reward == sum(r[2] for r in reports)
    assert final.feedback_count == 2 * feedbacks
    assert (final.successes, final.failures) == (successes, failures)
    assert sum(final.tries) == rows_sent
    # Both replicas, once both were done, saw exactly the final state.
    for report in reports:
        assert report[4] == (final.successes, final.failures, final.total_reward, 2 * feedbacks)
