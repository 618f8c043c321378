"""The servers under comparison: how each is started, what it is sent, what it must answer.

Every target serves one-row requests for the same fitted iris model (or a no-op), so the
numbers differ only by serving stack. Peers run from their own virtualenvs, built by
``scripts/peer-venvs.sh``, with their default settings: that is what their users run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "bench" / "models"

SAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]
SELDON_BODY = json.dumps({"data": {"ndarray": [SAMPLE_ROW]}}, separators=(",", ":")).encode()
KSERVE_BODY = json.dumps({"instances": [SAMPLE_ROW]}, separators=(",", ":")).encode()

# Variables that would switch a server into a debug, profiling or dev mode.
_DEBUG_ENV = (
    "SELDON_DEBUG",
    "FLASK_DEBUG",
    "FLASK_ENV",
    "PYTHONDEVMODE",
    "PYTHONASYNCIODEBUG",
    "PYTHONTRACEMALLOC",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONWARNINGS",
    "UVICORN_RELOAD",
)


def server_env() -> dict[str, str]:
    """The environment every server gets: ours, minus anything that enables debug modes
    and minus seldon port variables that could override the ports we chose."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in _DEBUG_ENV and not k.startswith("PREDICTIVE_UNIT_")
    }


class Ports(NamedTuple):
    http: int
    grpc: int
    metrics: int


Validator = Callable[[Any], None]


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    executable: Path  # must exist for the target to run
    install_hint: str
    cwd: Path
    path: str  # URL path of the prediction endpoint
    body: bytes
    validate: Validator
    command: Callable[[Ports], list[str]]
    # Optional: the server's own cumulative counters (e.g. from /metrics), given its HTTP
    # port; read before and after every run, and the difference kept with the run.
    counters: Callable[[int], dict[str, float]] | None = None

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}{self.path}"


def _expect_rows(rows: Any, expected: list[list[float]], what: str) -> None:
    ok = (
        isinstance(rows, list)
        and len(rows) == len(expected)
        and all(
            isinstance(r, list)
            and len(r) == len(e)
            and all(
                math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(r, e, strict=True)
            )
            for r, e in zip(rows, expected, strict=True)
        )
    )
    if not ok:
        raise ValueError(f"{what}: expected {expected}, got {rows!r}")


def seldon_rows(expected: list[list[float]]) -> Validator:
    def check(resp: Any) -> None:
        _expect_rows(resp.get("data", {}).get("ndarray"), expected, "data.ndarray")

    return check


def kserve_rows(expected: list[list[float]]) -> Validator:
    def check(resp: Any) -> None:
        _expect_rows(resp.get("predictions"), expected, "predictions")

    return check


def build_targets(iris_proba: list[list[float]]) -> dict[str, Target]:
    """All known targets; ``iris_proba`` is what the iris model must answer for SAMPLE_ROW."""
    venv, kserve_venv, seldon_venv = ROOT / ".venv", ROOT / ".venv-kserve", ROOT / ".venv-seldon"
    peers_hint = "run scripts/peer-venvs.sh"

    def seldon_style(prefix: list[str], model: str) -> Callable[[Ports], list[str]]:
        return lambda p: [
            *prefix,
            model,
            "--http-port",
            str(p.http),
            "--grpc-port",
            str(p.grpc),
            "--metrics-port",
            str(p.metrics),
        ]

    infergraph = venv / "bin" / "infergraph"
    seldon = seldon_venv / "bin" / "seldon-core-microservice"
    targets = [
        Target(
            name="infergraph",
            description="infergraph microservice IrisModel (Seldon REST protocol)",
            executable=infergraph,
            install_hint="make venv",
            cwd=MODELS,
            path="/api/v1.0/predictions",
            body=SELDON_BODY,
            validate=seldon_rows(iris_proba),
            command=seldon_style([str(infergraph), "microservice"], "IrisModel"),
        ),
        Target(
            name="infergraph-batch",
            description="infergraph microservice IrisModel --max-batch-size 32 (adaptive batching)",
            executable=infergraph,
            install_hint="make venv",
            cwd=MODELS,
            path="/api/v1.0/predictions",
            body=SELDON_BODY,
            validate=seldon_rows(iris_proba),
            command=lambda p: [
                *seldon_style([str(infergraph), "microservice"], "IrisModel")(p),
                "--max-batch-size",
                "32",
            ],
        ),
        Target(
            name="seldon",
            description="seldon-core-microservice IrisModel (defaults: gunicorn, 1 worker)",
            executable=seldon,
            install_hint=peers_hint,
            cwd=MODELS,
            path="/api/v1.0/predictions",
            body=SELDON_BODY,
            validate=seldon_rows(iris_proba),
            command=seldon_style([str(seldon)], "IrisModel"),
        ),
        Target(
            name="kserve",
            description="kserve.ModelServer, 1 worker, V1 protocol",
            executable=kserve_venv / "bin" / "python",
            install_hint=peers_hint,
            cwd=MODELS,
            path="/v1/models/iris:predict",
            body=KSERVE_BODY,
            validate=kserve_rows(iris_proba),
            command=lambda p: [
                str(kserve_venv / "bin" / "python"),
                str(MODELS / "kserve_iris.py"),
                "--http_port",
                str(p.http),
                "--grpc_port",
                str(p.grpc),
            ],
        ),
        Target(
            name="infergraph-noop",
            description="infergraph microservice NoopModel (returns its input)",
            executable=infergraph,
            install_hint="make venv",
            cwd=MODELS,
            path="/api/v1.0/predictions",
            body=SELDON_BODY,
            validate=seldon_rows([SAMPLE_ROW]),
            command=seldon_style([str(infergraph), "microservice"], "NoopModel"),
        ),
        Target(
            name="bare-asgi",
            description="raw ASGI app, fixed JSON reply (uvicorn, httptools, uvloop, 1 process)",
            executable=venv / "bin" / "uvicorn",
            install_hint="make venv",
            cwd=ROOT / "bench",
            path="/api/v1.0/predictions",
            body=SELDON_BODY,
            validate=seldon_rows([SAMPLE_ROW]),
            command=lambda p: [
                str(venv / "bin" / "uvicorn"),
                "bare_asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(p.http),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
        ),
    ]
    return {t.name: t for t in targets}
