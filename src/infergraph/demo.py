"""``make demo``: a multi-armed bandit learns which of two models to trust.

Serves ``examples/bandit/deployment.yaml`` (an unchanged Seldon ``SeldonDeployment``: a
TRANSFORMER in front of an ``EPSILON_GREEDY`` router over two classifiers) with the real
``infergraph serve`` command, sends held-out digits to ``/api/v1.0/predictions``, rewards every
correct answer on ``/api/v1.0/feedback``, and shows the traffic moving to the better model.
The server always stops at the end.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path("examples/bandit")
DEPLOYMENT = EXAMPLE / "deployment.yaml"
REQUESTS = 400
WINDOW = 100
READY_TIMEOUT = 60.0


class DemoError(Exception):
    """Something went wrong; the message says what."""


@dataclass
class Tally:
    """What the client saw: the model that answered each request, and whether it was right."""

    branches: list[str]
    chosen: list[str] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)

    def add(self, model: str, right: bool) -> None:
        self.chosen.append(model)
        self.correct.append(right)

    def shares(self, chosen: list[str]) -> dict[str, float]:
        counts = Counter(chosen)
        return {b: counts[b] / max(len(chosen), 1) for b in self.branches}

    def accuracy(self, model: str) -> tuple[float, int]:
        hits = [ok for m, ok in zip(self.chosen, self.correct, strict=True) if m == model]
        return (sum(hits) / len(hits) if hits else 0.0), len(hits)


class Progress:
    """``[#####.....] 200/400  stump 23%  logreg 77%``, redrawn in place on a terminal; one
    line per ``WINDOW`` requests otherwise (logs, CI, pytest)."""

    def __init__(self, total: int, stream: IO[str] = sys.stdout, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.tty = stream.isatty()

    def update(self, done: int, shares: dict[str, float]) -> None:
        if not self.tty and done % WINDOW and done != self.total:
            return
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        split = "  ".join(f"{name} {share:4.0%}" for name, share in shares.items())
        line = f"[{bar}] {done:>{len(str(self.total))}}/{self.total}  {split}"
        if self.tty:
            end = "\n" if done == self.total else ""
            self.stream.write(f"\r{line}{end}")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()


def _held_ports(n: int) -> list[socket.socket]:
    """``n`` free ports, each held by a bound, not listening, ``SO_REUSEPORT`` socket until
    the server stops: ``infergraph serve`` binds beside it, and no other program (a test run
    beside the demo) is handed the port meanwhile, which, binding with ``SO_REUSEPORT`` too,
    it would share silently with the demo's server."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(socket.socket())
            socks[-1].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            socks[-1].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            socks[-1].bind(("127.0.0.1", 0))
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks


def _router(node: dict[str, Any]) -> dict[str, Any]:
    """The first EPSILON_GREEDY node of a graph (depth first)."""
    if node.get("implementation") == "EPSILON_GREEDY":
        return node
    for child in node.get("children", []):
        found = _router(child)
        if found:
            return found
    return {}


def _tail(log: IO[bytes], lines: int = 20) -> str:
    log.seek(0)
    text = log.read().decode(errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(
                f"infergraph serve exited with code {proc.returncode} before it was ready; "
                f"its output ends with:\n{_tail(log)}"
            )
        try:
            if client.get("/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise DemoError(
        f"infergraph serve was not ready after {READY_TIMEOUT:.0f} s; "
        f"its output ends with:\n{_tail(log)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    if response.status_code != 200:
        raise DemoError(f"POST {path} answered {response.status_code}: {response.text[:500]}")
    result: dict[str, Any] = response.json()
    return result


def _metrics(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of one metric in Prometheus text: (labels, value)."""
    samples = []
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            labels, _, value = line.rpartition(" ")
            samples.append((dict(re.findall(r'(\w+)="([^"]*)"', labels)), float(value)))
    return samples


def _total(text: str, name: str) -> float:
    return sum(value for _, value in _metrics(text, name))


def _run(
    client: httpx.Client, router: dict[str, Any], X: Any, y: Any
) -> tuple[Tally, dict[str, Any]]:
    """Predict every test row, reward each answer; return the tally and the last response."""
    tally = Tally([child["name"] for child in router["children"]])
    progress = Progress(REQUESTS)
    print(
        f"\nSending {REQUESTS} held-out digits to /api/v1.0/predictions, each followed by "
        "its reward (1 if right, else 0) on /api/v1.0/feedback:"
    )
    response: dict[str, Any] = {}
    for i in range(REQUESTS):
        request = {"data": {"ndarray": [X[i].tolist()]}}
        response = _post(client, "/api/v1.0/predictions", request)
        probabilities = response["data"]["ndarray"][0]
        right = max(range(len(probabilities)), key=probabilities.__getitem__) == int(y[i])
        feedback = {
            "request": request,
            "response": response,  # its meta.routing tells the router which branch answered
            "reward": 1.0 if right else 0.0,
            "truth": {"data": {"ndarray": [[int(y[i])]]}},
        }
        _post(client, "/api/v1.0/feedback", feedback)
        tally.add(tally.branches[response["meta"]["routing"][router["name"]]], right)
        progress.update(i + 1, tally.shares(tally.chosen))
    return tally, response


def _overhead_report(metrics: str) -> list[str]:
    """What ``infergraph_executor_overhead_seconds`` says, and what it is not.

    It is wall-clock time the server measures: a request's time in the orchestrator minus the
    time inside its node calls, averaged over every request of the run, warm-up included, on
    whatever else the machine is doing. The text says so, because a bare "µs per hop"
    reads as the README's figure: the CPU per hop that ``bench/graph.py`` measures on no-op
    nodes, warmed up, on a pinned core (``bench/RESULTS.md``), a different quantity.
    """
    overhead = _total(metrics, "infergraph_executor_overhead_seconds_sum")
    graphs = _total(metrics, "infergraph_executor_overhead_seconds_count")
    calls = _total(metrics, "infergraph_executor_hops_sum")
    if not (graphs and calls):
        return []
    text = (
        f"infergraph_executor_overhead_seconds: {overhead / graphs * 1e6:.0f} µs per request "
        f"in the orchestrator outside the nodes, {calls / graphs:.0f} node calls per request: "
        f"{overhead / calls * 1e6:.1f} µs per node call (wall-clock time measured by the "
        f"server, the mean over all {graphs:.0f} requests, the first ones' warm-up included; "
        "not CPU time, and not the CPU per hop of bench/RESULTS.md, which bench/graph.py "
        "measures on no-op nodes, warmed up, on a pinned core)"
    )
    return textwrap.wrap(text, width=92, subsequent_indent="  ")


def _summary(tally: Tally, router: dict[str, Any], routing: dict[str, int], metrics: str) -> None:
    windows = {"first 10": tally.chosen[:10], "first 100": tally.chosen[:WINDOW]}
    windows["last 100"] = tally.chosen[-WINDOW:]
    shares = {title: tally.shares(chosen) for title, chosen in windows.items()}
    print("\nTraffic to each model, and how often it was right:")
    print(f"  {'model':<8}" + "".join(f"{title:>11}" for title in windows) + "   accuracy")
    for name in tally.branches:
        accuracy, answered = tally.accuracy(name)
        cells = "".join(f"{shares[title][name]:>11.0%}" for title in windows)
        print(f"  {name:<8}{cells}   {accuracy:>4.0%} of {answered}")
    print(f"  first requests went to: {' '.join(tally.chosen[:8])} ...")

    name = router["name"]
    print(f"\nmeta.routing of the last response: {json.dumps(routing)}")
    print(
        f"  ({name} chose branch {routing[name]} = {tally.branches[routing[name]]}; "
        "-1: a node that makes no routing choice)"
    )

    print("\nFrom /metrics:")
    for line in _overhead_report(metrics):
        print(f"  {line}")
    counts = ", ".join(
        f"{labels.get('model_name', '?')} {value:.0f}"
        for labels, value in _metrics(metrics, "seldon_api_model_feedback_total")
    )
    print(f"  seldon_api_model_feedback_total (non-zero rewards, as Seldon counts): {counts}")


def _describe(graph: dict[str, Any], router: dict[str, Any]) -> str:
    params = {p["name"]: p["value"] for p in router.get("parameters", [])}
    branches = [child["name"] for child in router["children"]]
    start = branches[int(params["best_branch"])] if "best_branch" in params else "a random branch"
    return (
        f"{graph['name']} ({graph.get('type', '')}) -> {router['name']} (EPSILON_GREEDY, "
        f"epsilon {params.get('epsilon', '0.1')}, starts on {start}) -> {' | '.join(branches)}"
    )


def main() -> int:
    if not (ROOT / DEPLOYMENT).is_file():
        print(
            f"demo: {ROOT / DEPLOYMENT} not found; run it from a source checkout", file=sys.stderr
        )
        return 2
    graph = yaml.safe_load((ROOT / DEPLOYMENT).read_text())["spec"]["predictors"][0]["graph"]
    router = _router(graph)
    if not router:
        print(f"demo: {DEPLOYMENT} has no EPSILON_GREEDY router", file=sys.stderr)
        return 2
    held = _held_ports(2)
    http_port, grpc_port = (int(s.getsockname()[1]) for s in held)
    cmd = [
        sys.executable, "-m", "infergraph", "serve", str(DEPLOYMENT), "--path", str(EXAMPLE),
        "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--seed", "0",
        "--log-level", "WARNING",
    ]  # fmt: skip
    print("$ infergraph", " ".join(cmd[3:]))
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            # the split the models were trained on, loaded while the server starts
            sys.path.insert(0, str(ROOT / EXAMPLE))
            try:
                _, X_test, _, y_test = importlib.import_module("components").split()
            except ImportError as exc:
                raise DemoError(f"{exc}; the demo needs pip install 'infergraph[sklearn]'") from exc
            base_url = f"http://127.0.0.1:{http_port}"
            with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as client:
                _wait_ready(client, proc, log)
                print(f"ready in {time.monotonic() - started:.1f} s: {_describe(graph, router)}")
                began = time.monotonic()
                tally, last = _run(client, router, X_test, y_test)
                seconds = time.monotonic() - began
                metrics = client.get("/metrics").text
        except (DemoError, httpx.HTTPError) as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            if not isinstance(exc, DemoError):
                print(f"infergraph serve's output ends with:\n{_tail(log)}", file=sys.stderr)
            return 1
        finally:
            _stop(proc)
            for sock in held:
                sock.close()
    print(
        f"{REQUESTS} predictions + {REQUESTS} feedbacks in {seconds:.1f} s "
        f"({seconds / (2 * REQUESTS) * 1e3:.1f} ms per call, seen by this client: "
        "the HTTP round trip included); server stopped"
    )
    _summary(tally, router, last["meta"]["routing"], metrics)
    better = max(tally.branches, key=lambda name: tally.accuracy(name)[0])
    received = tally.chosen[-WINDOW:].count(better)
    if received <= WINDOW // 2:
        print(
            f"\ndemo failed: {better}, the better model, received only {received} of the last "
            f"{WINDOW} requests",
            file=sys.stderr,
        )
        return 1
    print(
        f"\ndemo OK: {better}, the better model, received {received} of the last {WINDOW} requests"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
