"""Run a component in one or more worker processes sharing the ports (SO_REUSEPORT).

The user object is built once, in this process, before forking; each worker runs
``load()`` and serves REST, gRPC and metrics on the same ports as its siblings. The
first workers listen at once: each answers calls "loading" until its own ``load()`` has
run, and ``/ready`` 503 until every one of them has
(:mod:`infergraph.serving.worker_marks`). A worker that replaces one that died while
others serve loads first and listens after, so it is never handed a call it would
refuse. Two workers in a row that die before they finished starting (loaded and
listening on every port) stop the whole service with a non-zero exit rather than
looping. A class's ``custom_service`` (Seldon's hook for a server of its own) runs in
one more process beside them, for as long as the service.
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
from collections.abc import Callable
from typing import Any

from infergraph.errors import LoadError
from infergraph.serving.server import BindError, refuse_taken_ports, serve_component
from infergraph.serving.worker_marks import forget, has_started
from infergraph.settings import ComponentSettings

__all__ = ["fork_worker", "run_component", "supervise"]

log = logging.getLogger(__name__)

CRASH_WINDOW_SECONDS = 10.0


def run_loop(coro: Any) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.Runner()
    with runner:
        runner.run(coro)


def _worker(serve: Callable[[], Any]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        run_loop(serve())
    except BaseException as exc:  # report, then exit non-zero: the parent decides
        if not isinstance(exc, KeyboardInterrupt | SystemExit):
            quiet = isinstance(exc, BindError | LoadError)  # clear messages; logged already
            log.error("worker %d failed: %s", os.getpid(), exc, exc_info=None if quiet else exc)
            return 1
    return 0


def fork_worker(serve: Callable[[], Any]) -> int:
    """Fork a worker process that runs the coroutine ``serve()`` makes; its pid."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = _worker(serve)
        finally:
            os._exit(code)
    return pid


def _spawn(user: Any, settings: ComponentSettings, run_dir: str, listen_early: bool = True) -> int:
    return fork_worker(
        lambda: serve_component(user, settings, run_dir=run_dir, listen_early=listen_early)
    )


class CustomService:
    """Seldon's ``custom_service``: a callable of the class, run in a process of its own.

    Forked before any port is bound, so it holds none of them; as in Seldon it is not
    restarted, and it is stopped with the service.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exited = False

    @classmethod
    def start(cls, user: Any) -> CustomService | None:
        target = getattr(user, "custom_service", None)
        if target is None or not callable(target):
            return None
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                target()
                code = 0
            except BaseException as exc:
                log.error("custom_service failed: %s", exc, exc_info=exc)
            finally:
                os._exit(code)
        log.info("custom_service of %s runs in process %d", type(user).__name__, pid)
        return cls(pid)

    def stop(self, grace: float = 5.0) -> None:
        if self.exited:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.exited = True


def run_component(user: Any, settings: ComponentSettings) -> int:
    """Serve ``user`` until SIGTERM/SIGINT; return the process exit code."""
    ports = {"REST": settings.http_port, "metrics": settings.metrics_port}
    if settings.grpc_workers > 0:
        ports["gRPC"] = settings.grpc_port
    refuse_taken_ports(settings.host, ports)
    custom = CustomService.start(user)
    try:
        if settings.workers <= 1:
            run_loop(serve_component(user, settings))
            return 0
        with tempfile.TemporaryDirectory(prefix="infergraph-workers-") as run_dir:
            return supervise(
                lambda early: _spawn(user, settings, run_dir, early),
                settings.workers,
                run_dir,
                custom,
            )
    finally:
        if custom is not None:
            custom.stop()


def supervise(
    spawn: Callable[[bool], int],
    workers: int,
    run_dir: str,
    custom: CustomService | None = None,
) -> int:
    """Start ``workers`` processes with ``spawn(listen_early)`` and keep that many running
    until SIGTERM/SIGINT (a worker that dies is replaced); the exit code."""
    stopping = False
    children: set[int] = set()

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        children.add(spawn(True))
    exit_code = 0
    failed_starts = 0
    recent_deaths: list[float] = []
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if custom is not None and pid == custom.pid:
            custom.exited = True
            log.warning("custom_service process %d exited", pid)
            continue
        if pid not in children:
            continue
        children.discard(pid)
        started = forget(run_dir, pid)
        if stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        log.warning(
            "worker %d exited with %d %s", pid, code, "while serving" if started else "at start"
        )
        failed_starts = 0 if started else failed_starts + 1
        if failed_starts >= 2:
            print(
                f"infergraph: workers keep failing at start (exit {code}); stopping",
                file=sys.stderr,
            )
            exit_code = code if code > 0 else 1  # a signal (-9) is not an exit status
            stop(signal.SIGTERM, None)
            continue
        now = time.monotonic()
        recent_deaths = [t for t in recent_deaths if now - t < CRASH_WINDOW_SECONDS] + [now]
        if len(recent_deaths) > workers * 3:
            time.sleep(1.0)  # a crash loop while serving: restart, but not in a tight loop
        # while a sibling serves, the new worker listens only once it has loaded
        children.add(spawn(not has_started(run_dir, children)))
    return exit_code
