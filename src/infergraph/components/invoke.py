"""The one helper that runs user methods: awaited if async; sync ones inline or on threads.

Sync methods start **inline** on the event loop: for the sub-millisecond models that are
most of what is served, a thread hop costs more than the model and worsens tail latency
(the GIL bounces between the loop and the worker). Each method's duration is tracked; one
whose typical call takes longer than ``slow_after`` seconds moves to the component's thread
pool (``threads``, Seldon's GUNICORN_THREADS), with the caller's contextvars copied, so the
loop keeps answering probes and metrics while a slow model computes. ``mode`` forces
``"inline"`` or ``"thread"`` for every call.

``load()`` is different: it runs once and may take minutes, so a sync one always runs on a
thread of its own (:func:`run_on_own_thread`) while the servers already answer probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Invoker", "run_on_own_thread"]

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


async def run_on_own_thread(fn: Callable[[], Any], name: str) -> Any:
    """``fn()`` on a new daemon thread, with the caller's contextvars; awaited on the loop.

    For a long one-off call (a model's ``load()``): the loop keeps serving meanwhile, and
    a process told to stop while it runs exits without waiting for it, which a pool's
    thread (joined at interpreter exit) would not allow.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    ctx = contextvars.copy_context()

    def run() -> None:
        try:
            report = functools.partial(_settle, done, ctx.run(fn), None)
        except BaseException as exc:
            report = functools.partial(_settle, done, None, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(report)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


def _settle(done: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if done.done():  # the awaiting task was cancelled
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)
