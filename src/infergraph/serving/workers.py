"""Run a component in one or more worker processes sharing the ports (SO_REUSEPORT).

The user object is built once, in this process, before forking; each worker runs
``load()`` and serves REST, gRPC and metrics on the same ports as its siblings. A
worker that dies is replaced; one that dies at once, twice in a row, stops the
whole service with a non-zero exit rather than looping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from typing import Any

from infergraph.serving.server import BindError, serve_component
from infergraph.settings import ComponentSettings

__all__ = ["run_component"]

log = logging.getLogger(__name__)

FAST_DEATH_SECONDS = 5.0


def _run_loop(coro: Any) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.Runner()
    with runner:
        runner.run(coro)


def _worker(user: Any, settings: ComponentSettings, run_dir: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _run_loop(serve_component(user, settings, run_dir=run_dir))
    except BaseException as exc:  # report, then exit non-zero: the parent decides
        if not isinstance(exc, KeyboardInterrupt | SystemExit):
            quiet = isinstance(exc, BindError)  # a clear message; no traceback needed
            log.error("worker %d failed: %s", os.getpid(), exc, exc_info=None if quiet else exc)
            return 1
    return 0


def _spawn(user: Any, settings: ComponentSettings, run_dir: str) -> int:
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = _worker(user, settings, run_dir)
        finally:
            os._exit(code)
    return pid


def run_component(user: Any, settings: ComponentSettings) -> int:
    """Serve ``user`` until SIGTERM/SIGINT; return the process exit code."""
    if settings.workers <= 1:
        _run_loop(serve_component(user, settings))
        return 0
    with tempfile.TemporaryDirectory(prefix="infergraph-workers-") as run_dir:
        return _supervise(user, settings, run_dir)


def _supervise(user: Any, settings: ComponentSettings, run_dir: str) -> int:
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    children: dict[int, float] = {}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(settings.workers):
        children[_spawn(user, settings, run_dir)] = time.monotonic()
    exit_code = 0
    fast_deaths = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        lived = time.monotonic() - started
        log.warning("worker %d exited with %d after %.1fs", pid, code, lived)
        fast_deaths = fast_deaths + 1 if lived < FAST_DEATH_SECONDS else 0
        if fast_deaths >= 2:
            print(
                f"infergraph: workers keep failing at start (exit {code}); stopping",
                file=sys.stderr,
            )
            exit_code = code or 1
            stop(signal.SIGTERM, None)
            continue
        children[_spawn(user, settings, run_dir)] = time.monotonic()
    return exit_code
