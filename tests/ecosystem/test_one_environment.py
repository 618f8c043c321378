"""infergraph installed and imported next to TensorFlow, tritonclient, KServe and MLServer.

Each of those registers ``inference.*`` or ``tensorflow.*`` in protobuf's default
descriptor pool and needs protobuf < 7; infergraph keeps its own descriptors in a private
pool and takes protobuf from 4.21.6 on. The environments come from
``scripts/ecosystem-venvs.sh`` (``make envs``), where ``pip check`` must be clean; here
``probe.py`` runs in each, once with the library imported before infergraph and once
after, serving infergraph's REST and gRPC in that same process and calling it with the
library's own clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe.py")
# the probes run in the ecosystem environments: the run on the lowest dependencies skips them
pytestmark = pytest.mark.own_environment

# (environment, the libraries one process imports beside infergraph, the checks that must
# have really run there): tritonclient.grpc, kserve and mlserver each register the same
# `inference.*` names, so they cannot share one process with each other, only with us
RUNS = [
    (".venv-eco-tf", "tritonclient,tensorflow", {"triton-grpc-v2", "triton-http-v2"}),
    (".venv-eco-tf", "kserve,tensorflow", {"kserve-rest-v2"}),
    (".venv-eco-mlserver", "mlserver", {"mlserver-message-over-grpc"}),
    (".venv-eco-seldon", "seldon_core", {"seldon-client"}),
]
# seldon-core 1.18's generated modules predate protobuf 4's C runtime (its own pin is
# protobuf<4): they load on the pure-Python runtime only, which its users set already
SELDON_ENV = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
ALWAYS = {"imports", "seldon-rest", "seldon-grpc"}


def _python(venv: str) -> Path:
    python = ROOT / venv / "bin" / "python"
    if not (ROOT / venv / ".eco-installed").exists():
        message = f"{venv} is missing: run `bash scripts/ecosystem-venvs.sh` (or `make envs`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def _probe(venv: str, libs: str, order: str) -> list[dict[str, Any]]:
    env = {**os.environ, **(SELDON_ENV if "seldon" in venv else {})}
    done = subprocess.run(
        [str(_python(venv)), str(PROBE), "--order", order, "--libs", libs],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in records if not r["ok"]]
    assert done.returncode == 0 and records and not failed, (
        f"exit {done.returncode}; failed: {failed}\nstderr:\n{done.stderr[-4000:]}"
    )
    return records


@pytest.mark.slow
@pytest.mark.parametrize("order", ["before", "after"])
@pytest.mark.parametrize(
    ("venv", "libs", "checks"), [pytest.param(*run, id=f"{run[0]}-{run[1]}") for run in RUNS]
)
def test_one_process_serves_and_is_called_by_their_clients(
    venv: str, libs: str, checks: set[str], order: str
) -> None:
    records = _probe(venv, libs, order)
    ran = {r["check"] for r in records if not str(r.get("detail", "")).startswith("skipped")}
    assert ALWAYS | checks <= ran, ran


@pytest.mark.slow
@pytest.mark.parametrize("venv", [".venv-eco-mlserver", ".venv-eco-tf"])
def test_pip_check_is_clean(venv: str) -> None:
    done = subprocess.run(
        [str(_python(venv)), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_default_pool_holds_none_of_our_names() -> None:
    """What the ecosystem runs rely on, checked in the project's own environment too."""
    code = (
        "import infergraph, infergraph.protocol.proto.prediction_pb2, "
        "infergraph.protocol.proto.inference_pb2\n"
        "from google.protobuf import descriptor_pool\n"
        "pool = descriptor_pool.Default()\n"
        "for find, name in ((pool.FindMessageTypeByName, 'seldon.protos.SeldonMessage'),\n"
        "                   (pool.FindMessageTypeByName, 'inference.ModelInferRequest'),\n"
        "                   (pool.FindMessageTypeByName, 'tensorflow.TensorProto'),\n"
        "                   (pool.FindServiceByName, 'seldon.protos.Seldon')):\n"
        "    try:\n"
        "        find(name)\n"
        "    except KeyError:\n"
        "        continue\n"
        "    raise SystemExit(f'{name} is in the default pool')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
