"""Serve examples/dashboard with ``infergraph serve`` for the dashboard's tests.

The graph: a TRANSFORMER (doubler), an EPSILON_GREEDY router (chooser) and two MODELs
(adder, careful-adder), and the shadow predictor candidate. Readiness is polled; the whole
process group is killed on exit.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.ports import HeldPorts
from tests.helpers.procs import clean_env, http_request, poll

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "dashboard"
READY_TIMEOUT = 60.0


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    http: int
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.http, "GET", path)

    def json(self, path: str, status: int = 200) -> Any:
        code, headers, body = self.get(path)
        assert code == status, (path, code, body)
        assert headers["content-type"].startswith("application/json"), headers
        return json.loads(body)

    def predict(self, row: list[Any], puid: str) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=10)
        try:
            body = json.dumps({"data": {"ndarray": [row]}}).encode()
            headers = {"Content-Type": "application/json", "Seldon-Puid": puid}
            conn.request("POST", "/api/v1.0/predictions", body, headers)
            answer = conn.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            conn.close()


@contextlib.contextmanager
def serve(folder: Path, *flags: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    held = HeldPorts(2)
    http, grpc = held.ports
    log = folder / f"serve-{time.monotonic_ns()}.log"
    args = [sys.executable, "-m", "infergraph", "serve", str(EXAMPLE / "deployment.yaml")]
    args += ["--path", str(EXAMPLE), "--host", "127.0.0.1", *flags]
    args += ["--http-port", str(http), "--grpc-port", str(grpc)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=folder,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    served = Served(proc, http, log)
    try:

        def ready() -> bool:
            assert proc.poll() is None, f"exited {proc.returncode}:\n{served.stderr()}"
            return served.get("/ready")[0] == 200

        poll(ready, timeout=READY_TIMEOUT, what="ready")
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        held.close()
