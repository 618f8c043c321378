"""The one helper that runs user methods: awaited if async, else on a thread pool.

Sync methods run on the component's own small thread pool (``threads``, Seldon's
``GUNICORN_THREADS``, default 1) with the caller's contextvars copied, so the event
loop keeps serving health checks and metrics while a model computes. ``inline``
runs them on the event loop instead, which is faster for sub-millisecond models.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Invoker"]


class Invoker:
    def __init__(self, threads: int = 1, inline: bool = False) -> None:
        self.inline = inline
        self._threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="component")
        return self._pool

    async def call(self, fn: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
        if is_async:
            return await fn(*args, **kwargs)
        if self.inline:
            return fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), functools.partial(ctx.run, fn, *args, **kwargs)
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
