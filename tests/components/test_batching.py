"""Adaptive batching: concurrent predict requests stacked into one call, split back in order."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from infergraph.components.batching import Batcher


class Doubler:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, X, names):
        self.batches.append(len(X))
        return X * 2


async def _concurrent(client, bodies):
    return await asyncio.gather(*(client.post("/api/v1.0/predictions", json=b) for b in bodies))


async def test_concurrent_requests_share_one_call_and_get_their_own_rows(asgi_client) -> None:
    model = Doubler()
    client = asgi_client(model, max_batch_size=8)
    bodies = [{"data": {"ndarray": [[i, i + 0.5]] * (1 + i % 2)}} for i in range(6)]
    responses = await _concurrent(client, bodies)
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        rows = response.json()["data"]["ndarray"]
        assert rows == [[2 * i, 2 * i + 1.0]] * (1 + i % 2)
    assert sum(model.batches) == sum(1 + i % 2 for i in range(6))
    assert len(model.batches) < 6  # at least some requests shared a call


async def test_batches_respect_max_batch_size(asgi_client) -> None:
    model = Doubler()
    client = asgi_client(model, max_batch_size=2)
    responses = await _concurrent(client, [{"data": {"ndarray": [[i]]}} for i in range(5)])
    assert [r.json()["data"]["ndarray"] for r in responses] == [[[2 * i]] for i in range(5)]
    assert max(model.batches) <= 2


async def test_off_by_default(asgi_client) -> None:
    model = Doubler()
    await _concurrent(asgi_client(model), [{"data": {"ndarray": [[i]]}} for i in range(4)])
    assert model.batches == [1, 1, 1, 1]


async def test_unstackable_inputs_run_alone(asgi_client) -> None:
    model = Doubler()
    client = asgi_client(model, max_batch_size=8)
    bodies = [{"data": {"ndarray": [[1, 2]]}}, {"data": {"ndarray": [[1, 2, 3]]}}]
    responses = await _concurrent(client, bodies)
    assert [r.json()["data"]["ndarray"] for r in responses] == [[[2, 4]], [[2, 4, 6]]]
    assert sorted(model.batches) == [1, 1]


async def test_a_batched_error_reaches_every_request_in_the_batch(asgi_client) -> None:
    class Broken:
        calls = 0

        def predict(self, X, names):
            Broken.calls += 1
            raise RuntimeError("model exploded")

    client = asgi_client(Broken(), max_batch_size=8)
    responses = await _concurrent(client, [{"data": {"ndarray": [[i]]}} for i in range(3)])
    assert [r.status_code for r in responses] == [500, 500, 500]
    assert all("model exploded" in r.json()["status"]["info"] for r in responses)
    assert Broken.calls < 3


async def test_output_without_one_row_per_input_row_is_a_clear_error() -> None:
    async def run(X, names):
        return np.zeros((1, 1))  # one row for the whole batch

    batcher = Batcher(run, max_batch_size=4)
    results = await asyncio.gather(
        *(batcher(np.ones((1, 1)), []) for _ in range(3)), return_exceptions=True
    )
    assert all("one row per input row" in str(r) for r in results)


@pytest.mark.parametrize(
    "wait", [pytest.param(0.0, id="no-wait"), pytest.param(0.005, id="max-batch-time")]
)
async def test_batcher_groups_what_arrives_together(wait: float) -> None:
    seen: list[int] = []

    async def run(X, names):
        seen.append(len(X))
        return X + 1

    batcher = Batcher(run, max_batch_size=16, max_batch_time=wait)
    results = await asyncio.gather(*(batcher(np.full((1, 2), i), []) for i in range(10)))
    assert [r.tolist() for r in results] == [[[i + 1, i + 1]] for i in range(10)]
    assert seen == [10]
