"""``--workers N``: forked processes sharing the ports, one ``load()`` each, merged metrics.

Seldon facts (reference §1.7, §1.10; checklist 3, 42, 46): the constructor runs once
before forking, ``load()`` runs in every worker, workers share the ports with
SO_REUSEPORT, and the Prometheus figures are aggregated across workers, a dead
worker's series being removed.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from infergraph.protocol.proto import prediction_pb2 as pb
from infergraph.protocol.proto import prediction_pb2_grpc as pb_grpc
from tests.helpers.ports import HoldPorts
from tests.helpers.procs import (
    Service,
    group_gone,
    metric_sum,
    parse_metrics,
    poll,
    read_pids,
    run_to_exit,
    serving,
    write_module,
)

pytestmark = pytest.mark.slow

PID_MODEL = """
    import os
    from pathlib import Path

    HERE = Path(__file__).resolve().parent


    def _note(name):
        with open(HERE / name, "a") as fh:
            fh.write(f"{os.getpid()}\\n")


    class PidModel:
        def __init__(self):
            _note("init.pids")

        def load(self):
            _note("load.pids")

        def predict(self, X, features_names, meta=None):
            return [[os.getpid()]]

        def metrics(self):
            return [{"type": "COUNTER", "key": "worker_predictions", "value": 1}]
"""

BAD_LOAD = """
    class BadLoad:
        def load(self):
            raise RuntimeError("weights file is missing")

        def predict(self, X, features_names):
            return X
"""

REQUESTS = "seldon_api_executor_server_requests_seconds_count"
N_REST = 60
N_GRPC = 12


def _pid_folder(folder: Path) -> Path:
    write_module(folder, "PidModel", PID_MODEL)
    return folder


def _first_loads(folder: Path, n: int) -> list[int] | None:
    """The pids of the first ``n`` load() calls, once there were ``n``."""
    pids = read_pids(folder / "load.pids")
    return pids[:n] if len(pids) >= n else None


def _answering_pid(service: Service) -> int:
    return int(service.predict()["data"]["ndarray"][0][0])


def _grpc_pid(port: int) -> int:
    """One gRPC Predict on its own connection (no shared subchannel)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        request = pb.SeldonMessage()
        request.data.ndarray.extend([[1.0]])
        reply = pb_grpc.ModelStub(channel).Predict(request, timeout=10)
    return int(reply.data.ndarray[0][0])


def _listeners(port: int) -> int:
    """How many sockets listen on ``port`` (Linux /proc/net)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


# ---------------------------------------------------------------- three workers


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = _pid_folder(tmp_path_factory.mktemp("pool"))
    with serving(folder, ["PidModel", "--workers", "3", "--log-level", "WARNING"]) as service:
        service.extra["folder"] = folder
        poll(lambda: _first_loads(folder, 3), what="3 workers loaded")
        yield service


@pytest.fixture(scope="module")
def burst(pool: Service) -> dict[str, list[int]]:
    """N_REST REST and N_GRPC gRPC predictions, concurrent, each on a fresh connection."""
    with ThreadPoolExecutor(12) as ex:
        rest = list(ex.map(lambda _: _answering_pid(pool), range(N_REST)))
        grpc_pids = list(ex.map(lambda _: _grpc_pid(pool.grpc), range(N_GRPC)))
    return {"rest": rest, "grpc": grpc_pids}


def test_constructor_once_in_parent_and_load_once_per_worker(pool: Service) -> None:
    folder = pool.extra["folder"]
    assert read_pids(folder / "init.pids") == [pool.pid]
    loads = read_pids(folder / "load.pids")
    assert len(loads) == 3, loads
    assert len(set(loads)) == 3, loads
    assert pool.pid not in loads


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
@pytest.mark.parametrize("which", ["http", "grpc", "metrics"])
def test_three_workers_listen_on_each_port(pool: Service, which: str) -> None:
    port = getattr(pool, which)
    poll(lambda: _listeners(port) == 3, what=f"3 listeners on the {which} port")


def test_rest_requests_are_spread_over_workers(pool: Service, burst: dict[str, list[int]]) -> None:
    loads = set(read_pids(pool.extra["folder"] / "load.pids"))
    answered = set(burst["rest"])
    assert answered <= loads, (answered, loads)
    assert len(answered) > 1, f"all {N_REST} REST requests answered by {answered}"


def test_grpc_requests_are_answered_by_the_workers(
    pool: Service, burst: dict[str, list[int]]
) -> None:
    loads = set(read_pids(pool.extra["folder"] / "load.pids"))
    assert set(burst["grpc"]) <= loads
    assert len(burst["grpc"]) == N_GRPC


def test_metrics_are_summed_across_workers(pool: Service, burst: dict[str, list[int]]) -> None:
    def figures() -> tuple[float, float]:
        samples = pool.scrape()
        return (
            metric_sum(samples, "worker_predictions_total", method="predict"),
            metric_sum(samples, REQUESTS, service="predictions", code="200"),
        )

    expected = (float(N_REST + N_GRPC), float(N_REST))
    # the request histogram is updated just after the response goes out: wait for it once
    poll(lambda: figures() == expected, what=f"figures {expected}")
    for _ in range(8):  # each scrape on a fresh connection: any worker may answer
        assert figures() == expected
    samples = pool.scrape()
    series = {
        s.labels["worker_id"]: s.value for s in samples if s.name == "worker_predictions_total"
    }
    answered = set(burst["rest"]) | set(burst["grpc"])
    assert set(series) == {str(pid) for pid in answered}, series
    for pid in answered:
        expected_for_pid = burst["rest"].count(pid) + burst["grpc"].count(pid)
        assert series[str(pid)] == expected_for_pid, (pid, series)


def test_metrics_endpoint_on_the_http_port_merges_too(
    pool: Service, burst: dict[str, list[int]]
) -> None:
    for _ in range(4):
        status, _, body = pool.get("/metrics")
        assert status == 200
        samples = parse_metrics(body.decode())
        assert metric_sum(samples, "worker_predictions_total") == N_REST + N_GRPC


# ---------------------------------------------------------------- a worker dies


def test_killed_worker_is_replaced_and_its_series_removed(tmp_path: Path) -> None:
    folder = _pid_folder(tmp_path)
    with serving(folder, ["PidModel", "--workers", "2", "--log-level", "WARNING"]) as service:
        initial = poll(lambda: _first_loads(folder, 2), what="2 workers loaded")
        # both workers answer before the kill, so both have metric series
        seen: set[int] = set()

        def both_answered() -> bool:
            seen.add(_answering_pid(service))
            return seen == set(initial)

        poll(both_answered, what="both workers answering")
        before = {s.labels.get("worker_id") for s in service.scrape()}
        victim = initial[0]
        assert str(victim) in before

        os.kill(victim, signal.SIGKILL)
        loads = poll(lambda: _first_loads(folder, 3), what="a replacement worker")
        assert read_pids(folder / "load.pids") == loads  # one replacement, no more
        replacement = loads[2]
        assert replacement not in initial
        assert replacement != service.pid
        with pytest.raises(ProcessLookupError):
            os.kill(victim, 0)  # reaped by the supervisor
        assert read_pids(folder / "init.pids") == [service.pid]  # not constructed again

        # later requests all succeed, and the new worker serves some of them
        poll(lambda: _answering_pid(service) == replacement, what="the replacement answers")
        for _ in range(10):
            assert _answering_pid(service) in {initial[1], replacement}
        after = {s.labels.get("worker_id") for s in service.scrape()}
        assert str(victim) not in after
        assert str(replacement) in after
        assert service.proc.poll() is None


# ---------------------------------------------------------------- start and stop


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="1-worker"), pytest.param(2, id="2-workers")]
)
def test_sigterm_stops_cleanly(tmp_path: Path, workers: int) -> None:
    folder = _pid_folder(tmp_path)
    with serving(folder, ["PidModel", "--workers", str(workers)]) as service:
        poll(lambda: _first_loads(folder, workers), what="workers loaded")
        assert service.predict()["data"]["ndarray"]
        os.kill(service.pid, signal.SIGTERM)  # as Kubernetes does: to the main process only
        assert service.wait(15) == 0, service.stderr()[-3000:]
        poll(lambda: group_gone(service.pid), timeout=5, what="no worker left behind")
        assert "Traceback" not in service.stderr()


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="1-worker"), pytest.param(2, id="2-workers")]
)
def test_load_failure_exits_non_zero(tmp_path: Path, workers: int, held_ports: HoldPorts) -> None:
    write_module(tmp_path, "BadLoad", BAD_LOAD)
    http, grpc_port, metrics = held_ports(3)
    ports = ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    result = run_to_exit(
        tmp_path,
        ["BadLoad", "--workers", str(workers), *ports, "--metrics-port", str(metrics)],
        timeout=20,  # the supervisor gives up after repeated fast failures
    )
    assert result.returncode != 0
    assert "BadLoad.load() raised" in result.stderr
    assert "weights file is missing" in result.stderr
    assert "infergraph" in result.stderr
    assert result.leftovers is False
    if workers == 1:  # one clear line; the traceback goes to the log only with workers
        assert "infergraph microservice: error: BadLoad.load() raised" in result.stderr


def test_serving_workers_killed_quickly_are_replaced_not_fatal(tmp_path: Path) -> None:
    """Only workers that die before they finished starting count as start failures."""
    folder = _pid_folder(tmp_path)
    with serving(folder, ["PidModel", "--workers", "2", "--log-level", "WARNING"]) as service:
        first = poll(lambda: _first_loads(folder, 2), what="2 workers loaded")
        poll(lambda: service.get("/ready")[0] == 200, what="ready")
        for victim in first:  # both, at once, right after start
            os.kill(victim, signal.SIGKILL)
        later = poll(lambda: _first_loads(folder, 4), what="two replacement workers")
        assert not set(later[2:]) & set(first)
        poll(lambda: _answering_pid(service) in later[2:], what="a replacement answers")
        assert service.proc.poll() is None


def test_env_gunicorn_workers(tmp_path: Path) -> None:
    """GUNICORN_WORKERS sets the number of worker processes, as in Seldon."""
    folder = _pid_folder(tmp_path)
    with serving(folder, ["PidModel"], env={"GUNICORN_WORKERS": "2"}) as service:
        loads = poll(lambda: _first_loads(folder, 2), what="2 workers loaded")
        assert service.pid not in loads
        assert json.loads(service.get("/ready")[2]) == {"ready": True}
