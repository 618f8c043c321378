"""The native gRPC server's memory while a peer floods it and reads nothing, or leaves
its answers stalled on a closed window: ``infergraph microservice`` serving a real model
in a process of its own (its RSS from ``/proc``), a raw socket as the attacker
(``h2_raw``) and grpcio as the well-behaved client beside it.

Before these were bounded, a million PINGs grew the server by 76 MB and two million
SETTINGS by 132 MB (their acknowledgements queued for a client that never read them), and a
hundred 256 KiB answers on a zero window held 101 MB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.helpers.h2_raw import (
    HEADERS,
    INITIAL_WINDOW_SIZE,
    blocking_peer,
    call,
    parse,
    ping,
    rss_bytes,
    settings,
)
from tests.helpers.procs import Service, serving, write_module

pytestmark = pytest.mark.slow

MiB = 1 << 20
PREDICT = "/seldon.protos.Model/Predict"
REQUEST = pb.SeldonMessage(
    data=pb.DefaultData(tensor=pb.Tensor(shape=[1, 2], values=[1.0, 2.0]))
).SerializeToString()

MODELS = """
    import numpy as np


    class Doubler:
        def predict(self, X, names, meta=None):
            return np.asarray(X) * 2


    class Big:
        def predict(self, X, names, meta=None):
            return np.zeros(32_768)  # 256 KiB of float64
"""


@dataclass
class Flood:
    growth: int
    """The server's RSS at its peak, less before."""
    answered: int
    """grpcio's calls answered meanwhile."""
    ended: bool
    """The sender sent everything or failed (rather than being held)."""
    cut_off: bool
    """It failed: the server closed the connection under it."""


def flood(service: Service, unit: bytes, count: int) -> Flood:
    """Send ``count`` copies of ``unit`` to ``service`` from a thread, reading nothing,
    while grpcio calls Predict on a connection of its own, until the sender ends or has
    been held for two seconds."""
    baseline = rss_bytes(service.pid)
    sock = blocking_peer(service.grpc)
    failed, done = threading.Event(), threading.Event()
    progress = [0]

    def send() -> None:
        batch = unit * 10_000
        try:
            for _ in range(count // 10_000):
                sock.sendall(batch)
                progress[0] += 1
        except OSError:
            failed.set()
        finally:
            done.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    peak, answered = baseline, 0
    seen, moved = -1, time.monotonic()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc}") as channel:
            stub = pb_grpc.ModelStub(channel)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reply = stub.Predict(pb.SeldonMessage.FromString(REQUEST), timeout=10)
                assert list(reply.data.tensor.values) == [2.0, 4.0]
                answered += 1
                peak = max(peak, rss_bytes(service.pid))
                if progress[0] != seen:
                    seen, moved = progress[0], time.monotonic()
                if answered >= 10 and (done.is_set() or time.monotonic() - moved > 2):
                    break
        ended = done.is_set()
    finally:
        sock.close()
        sender.join(10)
    return Flood(peak - baseline, answered, ended, failed.is_set())


@pytest.fixture
def models(tmp_path: Path) -> Path:
    write_module(tmp_path, "Models", MODELS)
    return tmp_path


@contextmanager
def microservice(folder: Path, model: str, env: dict[str, str] | None = None) -> Iterator[Service]:
    (folder / f"{model}.py").write_text((folder / "Models.py").read_text())
    with serving(folder, [model], env=env) as service:
        yield service


def test_a_million_pings_from_a_client_that_never_reads_end_its_connection(models: Path) -> None:
    with microservice(models, "Doubler") as service:
        result = flood(service, ping(), 1_000_000)
    assert result.cut_off  # GOAWAY ENHANCE_YOUR_CALM, and the connection closed under it
    assert result.answered >= 10
    assert result.growth < 50 * MiB


@pytest.mark.parametrize(
    ("unit", "count"),
    [
        pytest.param(ping(), 3_000_000, id="pings"),
        pytest.param(settings(), 5_000_000, id="settings"),
    ],
)
def test_a_client_that_never_reads_is_not_read_either(
    models: Path, unit: bytes, count: int
) -> None:
    """With no budget in the way, what bounds a flood is that its answers (PING and
    SETTINGS acknowledgements) must go somewhere: past the socket's high-water mark the
    server stops reading, and the sender blocks, while other connections are served."""
    env = {"INFERGRAPH_HTTP2_MAX_CONTROL_FRAMES": str(10 * count)}
    with microservice(models, "Doubler", env) as service:
        result = flood(service, unit, count)
    assert not result.ended  # the server stopped reading: the sender is held
    assert result.answered >= 10
    assert result.growth < 50 * MiB


def test_a_hundred_answers_stalled_on_a_closed_window_hold_little(models: Path) -> None:
    """A client that asks for 256 KiB answers and gives them no window: the server holds
    each answer's bytes once (no copies), within max_pending_send."""
    with microservice(models, "Big") as service:
        baseline = rss_bytes(service.pid)
        sock = blocking_peer(service.grpc, {INITIAL_WINDOW_SIZE: 0})
        try:
            sock.sendall(b"".join(call(2 * i + 1, PREDICT, REQUEST) for i in range(100)))
            started = _read_answers_started(sock, 100)
            growth = rss_bytes(service.pid) - baseline
        finally:
            sock.close()
    assert started == 100
    assert growth < 50 * MiB


def _read_answers_started(sock: Any, calls: int) -> int:
    """Read until each call has its response HEADERS (its answer then waits on the
    window, or it ended with a status); the calls seen."""
    buffer, seen = bytearray(), set()
    sock.settimeout(20)
    while len(seen) < calls:
        data = sock.recv(1 << 16)
        if not data:
            break
        buffer += data
        seen |= {f.stream for f in parse(buffer) if f.kind == HEADERS}
    return len(seen)
