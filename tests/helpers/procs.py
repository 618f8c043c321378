"""Run ``python -m infergraph microservice`` as a real process for tests.

Every process is started in its own session (``start_new_session=True``) so that
teardown can kill the whole group, worker processes included. Readiness is polled
with a deadline; nothing here sleeps to synchronise with the server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.helpers.ports import HeldPorts

T = TypeVar("T")

PYTHON = sys.executable
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0

# Variables that configure a Seldon microservice: dropped from the inherited
# environment so that a developer's shell cannot change what a test sees.
_SELDON_ENV = re.compile(
    r"^(PREDICTIVE_UNIT_|PREDICTOR_|SELDON_|GUNICORN_|GRPC_|INFERGRAPH_|FLASK_|JAEGER_)"
    r"|^(MODEL_NAME|MODEL_METADATA|SERVICE_TYPE|PERSISTENCE|TRACING|PAYLOAD_PASSTHROUGH"
    r"|INCLUDE_METRICS_IN_CLIENT_RESPONSE|FILTER_METRICS_ACCESS_LOGS)$"
)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SELDON_ENV.match(k)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def write_module(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def poll(
    fn: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------- HTTP


def http_request(
    port: int, method: str, path: str, body: Any = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (so SO_REUSEPORT may pick any worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, data, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- Prometheus text


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append(Sample(m.group(1), labels, float(m.group(3))))
    return samples


def metric_sum(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


# ---------------------------------------------------------------- processes


@dataclass
class Service:
    """A running ``infergraph microservice`` and the ports it was given."""

    proc: subprocess.Popen[bytes]
    http: int
    grpc: int
    metrics: int
    logs: Path
    extra: dict[str, Any] = field(default_factory=dict)
    held: HeldPorts | None = None
    """The ports it was given, held until :meth:`kill` (see :mod:`ports`)."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return (self.logs / "stderr.txt").read_text(errors="replace")

    def get(self, path: str, port: int | None = None) -> tuple[int, dict[str, str], bytes]:
        return http_request(port or self.http, "GET", path)

    def post(self, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.http, "POST", path, body)

    def predict(self, body: Any = None) -> dict[str, Any]:
        status, _, data = self.post("/api/v1.0/predictions", body or {"data": {"ndarray": [[1]]}})
        assert status == 200, (status, data)
        return json.loads(data)

    def scrape(self, path: str = "/metrics") -> list[Sample]:
        status, headers, data = self.get(path, self.metrics)
        assert status == 200, (status, data)
        assert headers["content-type"].startswith("text/plain"), headers
        return parse_metrics(data.decode())

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode} before it was ready:\n"
                    + self.stderr()[-4000:]
                )
            try:
                if self.get("/ready")[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {timeout}s:\n{self.stderr()[-4000:]}")
            time.sleep(0.05)

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"server still running after {timeout}s:\n{self.stderr()[-4000:]}"
            ) from None

    def kill(self) -> None:
        """Kill the whole process group and reap the server (always safe to call)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.held is not None:
            self.held.close()


def _command(args: list[str]) -> list[str]:
    return [PYTHON, "-m", "infergraph", "microservice", *args]


def start(
    folder: Path,
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    ports: bool = True,
) -> Service:
    """Start the server in ``folder`` (its cwd, where the test module lives).

    With ``ports`` the three ports are held here (until :meth:`Service.kill`) and passed
    as flags; without, the caller passes them (through ``args`` or ``env``) and sets
    ``Service.http``/``grpc``/``metrics`` from ``env`` if named there.
    """
    env = clean_env(env)
    held = None
    if ports:
        held = HeldPorts(3)
        http_port, grpc_port, metrics_port = held.ports
        args = [
            *args,
            *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
            *("--metrics-port", str(metrics_port)),
        ]
    else:
        http_port = int(env.get("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", 9000))
        grpc_port = int(env.get("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", 5000))
        metrics_port = int(env.get("PREDICTIVE_UNIT_METRICS_SERVICE_PORT", 6000))
    logs = folder / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            _command(args),
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Service(proc, http_port, grpc_port, metrics_port, logs, held=held)


@contextlib.contextmanager
def serving(
    folder: Path,
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    ports: bool = True,
    timeout: float = READY_TIMEOUT,
) -> Iterator[Service]:
    """A ready server; its process group is killed on exit, whatever happened."""
    service = start(folder, args, env=env, ports=ports)
    try:
        service.wait_ready(timeout)
        yield service
    finally:
        service.kill()


@dataclass(frozen=True)
class Exited:
    returncode: int
    stdout: str
    stderr: str
    leftovers: bool
    """True when processes of the group outlived the main one (orphaned workers)."""


def run_to_exit(
    folder: Path,
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = EXIT_TIMEOUT,
) -> Exited:
    """Run the command until it exits by itself (start-up failures); fail past ``timeout``."""
    proc = subprocess.Popen(
        _command(args),
        cwd=folder,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {timeout}s; stderr:\n{err[-4000:]}") from None
    finally:
        leftovers = not group_gone(proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray workers, if any
        if proc.poll() is None:
            proc.wait()
    return Exited(proc.returncode, out, err, leftovers)


def group_gone(pgid: int) -> bool:
    """True once no process is left in the process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def read_pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []
