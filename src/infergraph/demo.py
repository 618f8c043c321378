"""``make demo``: serve a Seldon-style class with ``infergraph microservice`` and query it.

Starts the real command line on free ports, waits until it is ready, then sends
predictions over REST (JSON) and gRPC (the Seldon protobuf API), reads metadata
and metrics, and stops the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready in time")


def main() -> int:
    http, grpc_port, metrics = _free_port(), _free_port(), _free_port()
    cmd = [
        sys.executable, "-m", "infergraph", "microservice", "IrisClassifier",
        "--service-type", "MODEL", "--http-port", str(http), "--grpc-port", str(grpc_port),
        "--metrics-port", str(metrics), "--log-level", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, "PREDICTIVE_UNIT_ID": "iris", "PREDICTIVE_UNIT_IMAGE": "demo/iris:0.1"}
    print("$", " ".join(cmd[2:]))
    proc = subprocess.Popen(cmd, cwd=EXAMPLE, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{http}"
        _wait_ready(f"{base}/ready", proc)
        rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
        print("\nREST  POST /api/v1.0/predictions")
        out = _post(f"{base}/api/v1.0/predictions", {"data": {"ndarray": rows}})
        print(json.dumps(out, indent=1)[:600])
        import grpc

        from infergraph.protocol.proto import prediction_pb2 as pb
        from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc

        print("\ngRPC  seldon.protos.Seldon/Predict (tensor)")
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            request = pb.SeldonMessage()
            request.data.tensor.shape.extend([2, 4])
            request.data.tensor.values.extend(v for row in rows for v in row)
            reply = pb_grpc.SeldonStub(channel).Predict(request, timeout=10)
        print(reply.data)
        print("GET /metadata ->", _get(f"{base}/metadata")[1].decode())
        text = _get(f"http://127.0.0.1:{metrics}/metrics")[1].decode()
        print("\nmetrics port, custom metric:")
        print("\n".join(line for line in text.splitlines() if line.startswith("iris_predictions")))
        best = max(range(3), key=lambda i: out["data"]["ndarray"][1][i])
        print(f"\nsecond flower is most likely {out['data']['names'][best]!r}: demo OK")
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
