"""The one helper that runs user methods: awaited if async; sync ones inline or on threads.

A sync method nobody has timed yet could take seconds, and run inline it would hold the
event loop, and every probe and request with it, for as long. So in ``auto`` mode each sync
method **starts on the component's thread pool** (``threads``, Seldon's GUNICORN_THREADS),
with the caller's contextvars copied, and is timed there. After ``fast_calls`` calls in a
row each under ``slow_after`` seconds (on the pool, plus what waiting for the GIL the loop
holds may add) it runs **inline** on the loop: for the
sub-millisecond models that are most of what is served, a thread hop costs more than the
model and worsens tail latency (the GIL bounces between the loop and the worker). The first
inline call that takes longer sends it back to the pool (that one call has held the loop
already), and it must then be fast for twice as many calls in a row before it runs inline
again (up to 128 times as many), so a model that is often slow settles on the pool; a slow
call after a long run of fast ones inline (a pause of the machine's, most likely) starts
the count over instead. A call cancelled while it runs on the pool (its caller's deadline
passed) counts as slow, and the method moves inline only once none of its calls is left on
a thread, so a call inline never overlaps one on a thread. ``mode`` forces ``"inline"`` or
``"thread"`` for every call.

``load()`` is different: it runs once and may take minutes, so a sync one always runs on a
thread of its own (:func:`run_on_own_thread`) while the servers already answer probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Invoker", "run_on_own_thread"]

SLOW_AFTER_SECONDS = 0.002
FAST_CALLS = 12
"""Calls in a row on the pool, each under ``slow_after``, before a method runs inline."""
FORGIVEN_AFTER = 1000
"""Inline calls in a row after which a slow one is taken for a rare pause (the process
descheduled on a busy machine, a garbage collection) rather than the method's habit: the
method then needs its first number of fast calls again, not twice as many."""


_QUEUED, _RUNNING, _DROPPED = "queued", "running", "dropped"
"""Where one call on the pool is: waiting for a thread, on one, cancelled before either."""


class _Placement:
    """Where one sync method runs, learnt from its calls (updated on the loop only)."""

    __slots__ = ("first", "inline", "needed", "running", "stint", "streak")

    def __init__(self, needed: int) -> None:
        self.inline = False
        self.streak = 0
        """Fast calls in a row on the pool."""
        self.first = self.needed = needed
        self.stint = 0
        """Calls inline since it last moved inline."""
        self.running = 0
        """Its calls on a thread now, one cancelled while it runs included (changed under
        the invoker's lock): it moves inline only once there are none, so that a call
        inline never overlaps one on a thread (a model may not be thread-safe)."""

    def learn(self, fast: bool) -> None:
        """One call on the pool has ended (or been cancelled: ``fast`` is False)."""
        if not fast:
            self.streak = 0
            if self.inline:  # a call that was still on the pool when it moved inline
                self.slow_inline()
            return
        self.streak += 1
        if self.streak >= self.needed and not self.running:
            self.inline = True
            self.stint = 0

    def slow_inline(self) -> None:
        self.inline = False
        self.streak = 0
        if self.stint >= FORGIVEN_AFTER:
            self.needed = self.first
        else:
            self.needed = min(self.needed * 2, self.first << 7)


class Invoker:
    def __init__(
        self,
        threads: int = 1,
        mode: str = "auto",
        slow_after: float = SLOW_AFTER_SECONDS,
        fast_calls: int = FAST_CALLS,
    ) -> None:
        if mode not in ("auto", "inline", "thread"):
            raise ValueError(f"sync mode must be auto, inline or thread, not {mode!r}")
        self.mode = mode
        self.slow_after = slow_after
        self.slow_on_pool = slow_after + 2 * sys.getswitchinterval()
        """A call on the pool is slow past this: its time there includes its waits for the
        GIL the loop holds (up to the interpreter's switch interval, 5 ms by default, each
        time the call gives it up, as numpy and BLAS do), which inline it would not wait.
        Judged by ``slow_after`` alone, a 0.1 ms scikit-learn model under load looked slow
        and stayed on the pool for good, a thread hop per call (+15 % CPU per request)."""
        self.fast_calls = max(1, fast_calls)
        self._threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._places: dict[Callable[..., Any], _Placement] = {}
        self._running = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="component")
        return self._pool

    def on_thread(self, fn: Callable[..., Any]) -> bool:
        """Whether the next call of sync ``fn`` goes to the thread pool."""
        if self.mode != "auto":
            return self.mode == "thread"
        place = self._places.get(fn)
        return place is None or not place.inline

    async def call(self, fn: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
        if is_async:
            return await fn(*args, **kwargs)
        if self.mode == "auto":
            place = self._places.get(fn)
            if place is None:
                place = self._places[fn] = _Placement(self.fast_calls)
            elif place.inline:
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    place.stint += 1
                    if time.perf_counter() - started > self.slow_after:
                        place.slow_inline()
            return await self._on_pool(place, fn, args, kwargs)
        if self.mode == "inline":
            return fn(*args, **kwargs)
        return await self._on_pool(None, fn, args, kwargs)

    async def _on_pool(
        self,
        place: _Placement | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """``fn`` on the pool, with the caller's contextvars; timed on its thread, so that
        time spent queueing for a busy pool does not count."""
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        if place is None:
            return await loop.run_in_executor(self._executor(), call)
        lock = self._running
        took: list[float] = []
        state = [_QUEUED]

        def run() -> Any:
            with lock:
                if state[0] is _DROPPED:
                    return None
                state[0] = _RUNNING
            started = time.perf_counter()
            try:
                return call()
            finally:
                seconds = time.perf_counter() - started
                with lock:
                    place.running -= 1
                took.append(seconds)

        with lock:
            place.running += 1
        try:
            return await loop.run_in_executor(self._executor(), run)
        finally:
            with lock:
                dropped = state[0] is _QUEUED  # cancelled before a thread took it
                if dropped:
                    state[0] = _DROPPED
                    place.running -= 1
            if not dropped:  # an empty ``took``: cancelled while it runs, which is slow
                place.learn(bool(took) and took[0] <= self.slow_on_pool)

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
