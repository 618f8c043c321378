"""A real ``redis-server`` for tests: started on a free port in a temporary directory.

Tests of shared bandit state must meet the real thing (atomic transactions, several client
processes), not a fake. Readiness is detected from the server's own "Ready to accept
connections" log line and confirmed with PING, within a deadline; nothing sleeps.

Use it from a test module with ``redis_url = redis_server.redis_url`` (a session fixture).
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import redis

from tests.helpers.ports import released_ports

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
PORT_TRIES = 5
INSTALL_HINT = "redis-server is not on PATH: run scripts/install-services.sh to install it"


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Forward the server's log lines; None marks the end of its output (it exited)."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def _start(executable: str, workdir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """Start one server; return it once it accepts connections, or raise with its log."""
    # No persistence: the data lives and dies with the test session.
    args = [executable, "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    log: list[str] = []
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while True:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            if line is None:
                raise RuntimeError(f"redis-server exited: {''.join(log[-20:])}")
            log.append(line)
            if "Ready to accept connections" in line:
                break
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_timeout=READY_TIMEOUT)
        try:
            assert client.ping()
        finally:
            client.close()
    except (queue.Empty, RuntimeError, redis.RedisError):
        _stop(proc)
        raise
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (``redis://127.0.0.1:PORT/0``) of a private redis-server for this session."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    workdir = tmp_path_factory.mktemp("redis")
    error: Exception | None = None
    for _ in range(PORT_TRIES):  # another process may grab the port first (it is not held)
        try:
            (port,) = released_ports(1)  # redis-server binds without SO_REUSEPORT
            proc, url = _start(executable, workdir, port)
        except (queue.Empty, RuntimeError, redis.RedisError) as exc:
            error = exc
            continue
        try:
            yield url
        finally:
            _stop(proc)
        return
    pytest.fail(f"redis-server did not start: {error!r}", pytrace=False)
