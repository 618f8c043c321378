"""``infergraph serve --workers N`` and ``--metrics-port``: several orchestrator processes on
one set of ports, their metrics merged on every scrape, a dead one replaced."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.ports import HeldPorts, HoldPorts
from tests.helpers.procs import (
    Service,
    clean_env,
    group_gone,
    http_request,
    metric_sum,
    parse_metrics,
    poll,
    write_module,
)

pytestmark = pytest.mark.slow

DEPLOYMENT = """\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata: {name: pids}
spec:
  predictors:
  - name: default
    componentSpecs:
    - spec:
        containers:
        - name: whoami
          env: [{name: MODEL_NAME, value: WhoAmI}]
    graph: {name: whoami, type: MODEL}
"""
MODEL = """\
import os
import time


class WhoAmI:
    def load(self):
        time.sleep(float(os.environ.get("LOAD_S", "0")))

    def predict(self, X, features_names=None):
        return [[os.getpid()]]
"""
REQUESTS = 40


def _serve(folder: Path, *args: str, env: dict[str, str] | None = None) -> Service:
    held = HeldPorts(3)
    http, grpc, metrics = held.ports
    logs = folder / f"logs-{time.monotonic_ns()}"
    logs.mkdir()
    command = [sys.executable, "-m", "infergraph", "serve", "deployment.yaml", "--host",
               "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc),
               "--metrics-port", str(metrics), *args]  # fmt: skip
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            command, cwd=folder, env=clean_env(env), stdin=subprocess.DEVNULL, stdout=out,
            stderr=err, start_new_session=True,
        )  # fmt: skip
    return Service(proc, http, grpc, metrics, logs, held=held)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT)
    write_module(tmp_path, "WhoAmI", MODEL)
    return tmp_path


@contextlib.contextmanager
def workers(folder: Path, n: int, env: dict[str, str] | None = None) -> Iterator[Service]:
    service = _serve(folder, "--workers", str(n), env=env)
    try:
        service.wait_ready(60)
        yield service
    finally:
        service.kill()


def _pid_answering(service: Service) -> int:
    status, _, body = http_request(service.http, "POST", "/api/v1.0/predictions",
                                   {"data": {"ndarray": [[1]]}})  # fmt: skip
    assert status == 200, body
    return int(json.loads(body)["data"]["ndarray"][0][0])


def test_workers_share_the_ports_and_the_metrics_add_up(folder: Path) -> None:
    with workers(folder, 2) as service:
        pids = {_pid_answering(service) for _ in range(REQUESTS)}  # a new connection each
        assert len(pids) == 2, f"one worker answered all {REQUESTS} calls: {pids}"
        assert service.pid not in pids, "the supervisor itself answered"
        name = "seldon_api_executor_server_requests_seconds_count"
        for port, path in ((service.metrics, "/metrics"), (service.metrics, "/prometheus"),
                           (service.http, "/prometheus")):  # fmt: skip
            for _ in range(4):  # whichever worker the scrape reaches, the sum is the same
                status, _, text = http_request(port, "GET", path)
                assert status == 200
                samples = parse_metrics(text.decode())
                assert metric_sum(samples, name, service="predictions") == REQUESTS, (port, path)


def test_ready_waits_for_every_worker_and_a_dead_one_is_replaced(folder: Path) -> None:
    service = _serve(folder, "--workers", "2", env={"LOAD_S": "1.5"})
    try:
        poll(lambda: http_request(service.http, "GET", "/live")[0] == 200, timeout=30,
             what="/live")  # fmt: skip
        assert http_request(service.http, "GET", "/ready")[0] == 503  # still loading
        service.wait_ready(60)
        pids = {_pid_answering(service) for _ in range(REQUESTS)}
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> set[int]:
            seen = {_pid_answering(service) for _ in range(REQUESTS)}
            return seen if victim not in seen and len(seen) == 2 else set()

        # the replacement loads before it listens, so no call meets a loading worker
        poll(replaced, timeout=30, interval=0.2, what="a replacement worker")
        assert "exited with -9 while serving" in service.stderr()
        service.proc.send_signal(signal.SIGTERM)
        assert service.wait() == 0
        poll(lambda: group_gone(service.pid), timeout=15, what="every worker gone")
    finally:
        service.kill()


def test_workers_cannot_be_combined_with_processes(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infergraph", "serve", "deployment.yaml", "--workers", "2",
         "--processes"],
        cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--workers and --processes cannot be combined" in done.stderr
    assert "replicas" in done.stderr


@pytest.mark.parametrize(("value", "said"), [("0", "must be 1 or more"), ("two", "whole number")])
def test_workers_must_be_a_positive_number(folder: Path, value: str, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infergraph", "serve", "deployment.yaml", "--workers", value],
        cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--workers" in done.stderr and said in done.stderr


def test_metrics_port_in_use_is_refused_naming_it(folder: Path, held_ports: HoldPorts) -> None:
    with workers(folder, 1) as first:
        http, grpc = held_ports(2)
        done = subprocess.run(
            [sys.executable, "-m", "infergraph", "serve", "deployment.yaml", "--http-port",
             str(http), "--grpc-port", str(grpc), "--metrics-port", str(first.metrics)],
            cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot serve metrics on 0.0.0.0:{first.metrics}" in done.stderr
