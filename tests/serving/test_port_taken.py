"""A second server on ports another process listens on is refused, not silently shared
(the ports are bound with SO_REUSEPORT so a server's own workers can share them)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infergraph.serving.server import BindError, refuse_taken_ports
from tests.helpers.ports import HoldPorts


def listening() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, sock.getsockname()[1]


def test_a_listened_port_is_refused_and_a_free_one_is_not(held_ports: HoldPorts) -> None:
    sock, port = listening()
    with sock:
        with pytest.raises(
            BindError, match=f"cannot serve REST on 0.0.0.0:{port}: the port is in use"
        ):
            refuse_taken_ports("0.0.0.0", {"REST": port})
        refuse_taken_ports("127.0.0.1", {"REST": held_ports(1)[0], "any": 0})


@pytest.mark.parametrize("command", [pytest.param("microservice", id="microservice")])
def test_the_cli_exits_non_zero_naming_the_port(
    tmp_path: Path, command: str, held_ports: HoldPorts
) -> None:
    (tmp_path / "model.py").write_text(
        "class Model:\n    def predict(self, X, names):\n        return X\n"
    )
    sock, port = listening()
    grpc_port, metrics = held_ports(2)
    with sock:
        done = subprocess.run(
            [
                sys.executable, "-m", "infergraph", command, "model.Model",
                "--http-port", str(port), "--grpc-port", str(grpc_port),
                "--metrics-port", str(metrics),
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    assert (
        f"cannot serve REST on 0.0.0.0:{port}: the port is in use by another process" in done.stderr
    )
