"""Adaptive batching of ``predict`` calls (opt-in, like MLServer's ``max_batch_size``).

Requests that reach ``predict`` while others are queued are stacked into one call: their
2-D numeric inputs are concatenated row-wise, the model runs once, and its output rows are
split back in order. With ``max_batch_time`` 0 (the default) nothing waits: a batch is
whatever arrived during the current turn of the event loop, so batches grow with load and
an idle server answers each request at once. A positive ``max_batch_time`` holds the first
request up to that long for company.

Batching changes what a model sees (rows of several requests at once), so it is only for
models that treat rows independently, which is why it is off unless configured. Inputs
that cannot be stacked (other shapes, names or kinds) run alone; a batched call gets
``meta={}``; its output must have one row per input row.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from infergraph.errors import BadRequest

__all__ = ["Batcher"]


@dataclass(slots=True)
class _Item:
    X: np.ndarray
    names: list[str]
    future: asyncio.Future[Any]


def stackable(X: Any) -> bool:
    return isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "iufb"


class Batcher:
    """Groups concurrent calls of one sync-or-async function ``run(X, names)``."""

    def __init__(
        self,
        run: Callable[[Any, list[str]], Awaitable[Any]],
        max_batch_size: int,
        max_batch_time: float = 0.0,
    ) -> None:
        self._run = run
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_time = max(0.0, max_batch_time)
        self._pending: list[_Item] = []
        self._flush: asyncio.Handle | asyncio.TimerHandle | None = None

    async def __call__(self, X: Any, names: list[str]) -> Any:
        if not stackable(X):
            return await self._run(X, names)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Item(X, names, future))
        if len(self._pending) >= self.max_batch_size:
            self._start(loop)
        elif self._flush is None:
            if self.max_batch_time:
                self._flush = loop.call_later(self.max_batch_time, self._start, loop)
            else:
                self._flush = loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        items, self._pending = self._pending, []
        while items:
            batch, items = items[: self.max_batch_size], items[self.max_batch_size :]
            loop.create_task(self._execute(batch))

    async def _execute(self, items: list[_Item]) -> None:
        groups: dict[tuple[int, str, tuple[str, ...]], list[_Item]] = {}
        for item in items:
            key = (item.X.shape[1], item.X.dtype.str, tuple(item.names))
            groups.setdefault(key, []).append(item)
        await asyncio.gather(*(self._execute_group(group) for group in groups.values()))

    async def _execute_group(self, items: list[_Item]) -> None:
        if len(items) == 1:
            item = items[0]
            await self._settle([item], lambda: self._run(item.X, item.names), split=False)
            return
        X = np.concatenate([item.X for item in items])
        await self._settle(items, lambda: self._run(X, items[0].names), split=True)

    async def _settle(
        self, items: list[_Item], call: Callable[[], Awaitable[Any]], split: bool
    ) -> None:
        try:
            result = await call()
            parts = _split(result, [len(item.X) for item in items]) if split else [result]
        except Exception as exc:  # each waiter gets the error its own call would have raised
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, part in zip(items, parts, strict=True):
            if not item.future.done():
                item.future.set_result(part)


def _split(result: Any, sizes: list[int]) -> list[Any]:
    """Cut a batched result back into one part per request, in order."""
    total = sum(sizes)
    if isinstance(result, list):
        if len(result) != total:
            raise BadRequest(_mismatch(f"{len(result)} rows", total))
        starts = np.cumsum([0, *sizes]).tolist()
        return [result[a:b] for a, b in itertools.pairwise(starts)]
    if not isinstance(result, np.ndarray) or result.ndim == 0 or len(result) != total:
        got = getattr(result, "shape", type(result).__name__)
        raise BadRequest(_mismatch(got, total))
    return np.split(result, np.cumsum(sizes)[:-1])


def _mismatch(got: Any, total: int) -> str:
    return (
        f"adaptive batching: predict returned {got} for a batch of {total} rows; a batched "
        "model must return one row per input row (disable batching for this model)"
    )
