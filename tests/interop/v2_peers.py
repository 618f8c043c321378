"""What the V2 interop tests share: real infergraph processes, and the peer clients' venv.

:func:`serving` starts ``python -m infergraph microservice|serve`` on held ports and waits
until both its REST and gRPC V2 endpoints say ready. :func:`kserve_python` builds (or
reuses) ``.venv-kserve`` with ``scripts/peer-venvs.sh kserve``, where kserve and
``tritonclient[grpc]`` live because they need protobuf < 7; :func:`run_probe` runs
``v2_client_probe.py`` there. A failing install fails the test with the installer's
output; the only skip is ``INFERGRAPH_SKIP_INTEROP=1`` (offline machines).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from infergraph.protocol.proto import inference_pb2 as pb
from infergraph.protocol.proto import inference_pb2_grpc as pb_grpc
from tests.helpers.ports import HeldPorts
from tests.helpers.procs import PYTHON, clean_env, http_request

ROOT = Path(__file__).resolve().parents[2]
KSERVE_VENV = ROOT / ".venv-kserve"
KSERVE_PYTHON = KSERVE_VENV / "bin" / "python"
PROBE = Path(__file__).with_name("v2_client_probe.py")
INSTALL_TIMEOUT = 1800.0
READY_TIMEOUT = 60.0
PROBE_TIMEOUT = 300.0


# ---------------------------------------------------------------- infergraph processes


@dataclass(frozen=True)
class Endpoint:
    """A served V2 model: where to reach it, and what it is called there."""

    http: int
    grpc: int
    model: str
    log: Path

    @property
    def http_address(self) -> str:
        return f"127.0.0.1:{self.http}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc}"


def _v2_ready(endpoint: Endpoint) -> bool:
    try:
        status, _, _ = http_request(endpoint.http, "GET", "/v2/health/ready", timeout=2)
    except OSError:
        return False
    if status != 200:
        return False
    with grpc.insecure_channel(endpoint.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            return stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready
        except grpc.RpcError:
            return False


@contextlib.contextmanager
def serving(
    folder: Path, argv: list[str], model: str, *, env: dict[str, str] | None = None
) -> Iterator[Endpoint]:
    """``python -m infergraph *argv`` in ``folder`` on held ports, ready over REST and gRPC;
    its process group is killed on exit."""
    held = HeldPorts(3)
    http_port, grpc_port, metrics_port = held.ports
    ports = ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    if argv[0] == "microservice":
        ports += ["--metrics-port", str(metrics_port)]
    log = folder / f"{argv[0]}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "infergraph", *argv, *ports, "--host", "127.0.0.1"],
            cwd=folder, env=clean_env(env), stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    endpoint = Endpoint(http_port, grpc_port, model, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _v2_ready(endpoint):
            if proc.poll() is not None:
                pytest.fail(f"infergraph {argv[0]} exited with {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"infergraph {argv[0]} not ready after {READY_TIMEOUT}s:\n{_tail(log)}")
            time.sleep(0.05)
        yield endpoint
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        held.close()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


# ---------------------------------------------------------------- the peer clients' venv


def kserve_python() -> Path:
    """``.venv-kserve/bin/python`` with kserve and tritonclient[grpc], built if needed."""
    if os.environ.get("INFERGRAPH_SKIP_INTEROP") == "1":
        pytest.skip("INFERGRAPH_SKIP_INTEROP=1: V2 peer-client interop tests not run")
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "peer-venvs.sh"), "kserve"],
            cwd=ROOT, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/peer-venvs.sh kserve still running after {exc.timeout}s")
    if done.returncode != 0 or not KSERVE_PYTHON.exists():
        pytest.fail(
            f"scripts/peer-venvs.sh kserve failed (exit {done.returncode}); "
            f"set INFERGRAPH_SKIP_INTEROP=1 to skip on offline machines.\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    # one import per process: the two clients cannot share one (see v2_client_probe.py)
    for module in ("tritonclient.grpc", "kserve"):
        check = subprocess.run(
            [str(KSERVE_PYTHON), "-c", f"import {module}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if check.returncode != 0:
            pytest.fail(
                f"{KSERVE_VENV} exists but cannot import {module}; delete it to rebuild.\n"
                f"--- installer\n{done.stdout}{done.stderr}\n--- import\n{check.stderr}"
            )
    return KSERVE_PYTHON


def run_probe(
    python: Path, plan: list[dict[str, Any]], folder: Path, libs: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Run the probe once per client library, side by side; its records by case name
    (``_versions`` becomes ``_versions-<lib>``)."""
    plan_path = folder / f"plan-{time.monotonic_ns()}.json"
    plan_path.write_text(json.dumps(plan))
    procs = {
        lib: subprocess.Popen(
            [str(python), str(PROBE), "--lib", lib, "--plan", str(plan_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for lib in libs
    }
    records: dict[str, dict[str, Any]] = {}
    for lib, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"v2_client_probe.py --lib {lib} still running after {PROBE_TIMEOUT}s")
        assert proc.returncode == 0, f"probe --lib {lib} failed:\n{out}\n{err}"
        for line in out.splitlines():
            record = json.loads(line)
            case = record["case"] if record["case"] != "_versions" else f"_versions-{lib}"
            assert case not in records, f"duplicate case {case}"
            records[case] = record
    missing = {call["case"] for call in plan} - set(records)
    assert not missing, f"the probe ran no record for {sorted(missing)}"
    return records
