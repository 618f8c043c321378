"""The one helper that runs user methods: awaited if async; sync ones inline or on threads.

Sync methods start **inline** on the event loop: for the sub-millisecond models that are
most of what is served, a thread hop costs more than the model and worsens tail latency
(the GIL bounces between the loop and the worker). Each method's duration is tracked; one
whose typical call takes longer than ``slow_after`` seconds moves to the component's thread
pool (``threads``, Seldon's GUNICORN_THREADS), with the caller's contextvars copied, so the
loop keeps answering probes and metrics while a slow model computes. ``mode`` forces
``"inline"`` or ``"thread"`` for every call.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Invoker"]

SLOW_AFTER_SECONDS = 0.002
_WEIGHT = 0.2  # of the newest call in the moving average


class Invoker:
    def __init__(
        self, threads: int = 1, mode: str = "auto", slow_after: float = SLOW_AFTER_SECONDS
    ) -> None:
        if mode not in ("auto", "inline", "thread"):
            raise ValueError(f"sync mode must be auto, inline or thread, not {mode!r}")
        self.mode = mode
        self.slow_after = slow_after
        self._threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._average: dict[Callable[..., Any], float] = {}

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="component")
        return self._pool

    def on_thread(self, fn: Callable[..., Any]) -> bool:
        """Whether the next call of sync ``fn`` goes to the thread pool."""
        if self.mode != "auto":
            return self.mode == "thread"
        return self._average.get(fn, 0.0) > self.slow_after

    async def call(self, fn: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
        if is_async:
            return await fn(*args, **kwargs)
        if self.on_thread(fn):
            ctx = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            try:
                return await loop.run_in_executor(
                    self._executor(), functools.partial(ctx.run, fn, *args, **kwargs)
                )
            finally:
                self._learn(fn, time.perf_counter() - started)
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if self.mode == "auto":
                self._learn(fn, time.perf_counter() - started)

    def _learn(self, fn: Callable[..., Any], seconds: float) -> None:
        previous = self._average.get(fn)
        self._average[fn] = (
            seconds if previous is None else previous + _WEIGHT * (seconds - previous)
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
