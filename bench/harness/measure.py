"""Start targets, warm them up, and measure them in interleaved rounds.

Rounds are interleaved (round 1 runs every target once, then round 2 ...), and the order
rotates each round, so slow drift in a noisy machine's background load spreads over all
targets instead of landing on whichever ran last. Every server stays up, idle, while the
others are measured; an idle server's CPU is not counted against the one being measured,
because CPU is read per process tree.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.procs import (
    Server,
    core_idle_seconds,
    foreign_cpu_seconds,
    foreign_snapshot,
    free_port,
    start_server,
)
from harness.targets import Ports, Target, server_env
from harness.wrk import WrkResult, lua_script, run_wrk


@dataclass(frozen=True)
class Settings:
    duration_s: int
    repeats: int
    warmup_s: int
    connections: int
    threads: int
    server_cpu: int
    client_cpu: int
    startup_timeout_s: float
    work_dir: Path
    max_foreign: float = 0.10  # share of a core other processes may use before a re-run
    retries: int = 2  # re-runs allowed per measurement when the core was shared


@dataclass(frozen=True)
class Run:
    round: int
    wrk: WrkResult
    server_cpu_s: float
    wall_s: float
    foreign_cpu_s: float  # CPU that processes other than ours used meanwhile
    core_idle_s: float  # time the server's core sat idle: the server was not saturated
    counters: dict[str, float] = field(default_factory=dict)  # Target.counters, after - before

    @property
    def foreign_share(self) -> float:
        """Share of one core that other processes took during the run."""
        return max(self.foreign_cpu_s, 0.0) / self.wall_s if self.wall_s else 0.0

    def describe_foreign(self) -> str:
        return f"other processes used {self.foreign_share:.0%} of a core"

    @property
    def valid(self) -> bool:
        return self.wrk.error_count == 0 and self.wrk.requests > 0

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s * 1e6 / self.wrk.requests if self.wrk.requests else float("nan")


@dataclass
class Measured:
    target: Target
    runs: list[Run] = field(default_factory=list)
    contended: list[Run] = field(default_factory=list)  # discarded: core was shared
    failure: str | None = None
    server: Server | None = None
    script: Path | None = None
    port: int = 0

    max_foreign: float = 0.10

    @property
    def valid_runs(self) -> list[Run]:
        """Runs without errors (contended or not)."""
        return [r for r in self.runs if r.valid]

    @property
    def clean_runs(self) -> list[Run]:
        """Valid runs that had both cores to themselves: the ones the medians use."""
        return [r for r in self.valid_runs if r.foreign_share <= self.max_foreign]


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def post(url: str, body: bytes, timeout_s: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_ready(m: Measured, settings: Settings) -> None:
    """Poll the prediction endpoint until it answers 200 with the expected body (a 503 while
    the server loads its models is waited out)."""
    assert m.server is not None
    url = m.target.url(m.port)
    deadline = time.monotonic() + settings.startup_timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not m.server.alive():
            tail = m.server.log_tail()
            last = tail.splitlines()[-1] if tail else "no output"
            raise RuntimeError(
                f"exited with code {m.server.proc.returncode} during startup ({last})\n{tail}"
            )
        try:
            status, body = post(url, m.target.body, timeout_s=2.0)
        except OSError as err:
            last = str(err)
            time.sleep(0.25)
            continue
        if status == 503:  # listening while its models load (infergraph, KServe): wait
            last = f"HTTP 503: {body[:200]!r}"
            time.sleep(0.25)
            continue
        if status != 200:
            raise RuntimeError(f"answered HTTP {status}: {body[:500]!r}")
        payload: Any = json.loads(body)
        m.target.validate(payload)
        return
    raise RuntimeError(
        f"not ready after {settings.startup_timeout_s:.0f}s ({last}):\n{m.server.log_tail()}"
    )


def start(target: Target, settings: Settings) -> Measured:
    """Start one target, check its answer, and warm it up; failures are recorded, not raised."""
    m = Measured(target=target, max_foreign=settings.max_foreign)
    if not target.executable.exists():
        m.failure = f"not installed: {target.executable} missing ({target.install_hint})"
        return m
    ports = Ports(free_port(), free_port(), free_port())
    m.port = ports.http
    m.script = settings.work_dir / f"{target.name}.lua"
    m.script.write_text(lua_script(target.body))
    argv = target.command(ports)
    log(f"{target.name}: starting `{' '.join(argv)}` (cwd {target.cwd})")
    m.server = start_server(
        target.name,
        argv,
        cwd=target.cwd,
        env=server_env(),
        cpu=settings.server_cpu,
        log_path=settings.work_dir / f"{target.name}.log",
    )
    try:
        wait_ready(m, settings)
        if settings.warmup_s > 0:
            warm = run_wrk(
                m.target.url(m.port),
                m.script,
                duration_s=settings.warmup_s,
                connections=settings.connections,
                threads=settings.threads,
                cpu=settings.client_cpu,
            )
            if warm.error_count:
                raise RuntimeError(f"errors during warm-up: {warm.describe_errors()}")
        log(f"{target.name}: ready on port {m.port}")
    except Exception as err:  # one broken target must not stop the others
        m.failure = f"{type(err).__name__}: {err}"
        m.server.stop()
        log(f"{target.name}: FAILED to start: {m.failure}")
    return m


def wait_for_quiet(settings: Settings, limit_s: float = 60.0) -> None:
    """Hold the next run until other processes are (nearly) idle, for at most ``limit_s``.

    Starting a run while someone else's work is running would only waste the run.
    """
    waited = 0.0
    while waited < limit_s:
        before = foreign_snapshot(os.getpid())
        time.sleep(1.0)
        waited += 1.0
        if foreign_cpu_seconds(before, foreign_snapshot(os.getpid())) <= settings.max_foreign / 2:
            break
    else:
        log(f"other processes still busy after {limit_s:.0f}s; measuring anyway")
        return
    if waited > 1.0:
        log(f"waited {waited:.0f}s for other processes to go quiet")


def run_once(m: Measured, round_no: int, settings: Settings) -> Run:
    assert m.server is not None and m.script is not None
    # Read outside the CPU window, so that scraping is not billed to the requests.
    counters_before = m.target.counters(m.port) if m.target.counters else {}
    cpu_before = m.server.cpu_seconds()
    idle_before = core_idle_seconds(settings.server_cpu)
    others_before = foreign_snapshot(os.getpid())
    t0 = time.monotonic()
    result = run_wrk(
        m.target.url(m.port),
        m.script,
        duration_s=settings.duration_s,
        connections=settings.connections,
        threads=settings.threads,
        cpu=settings.client_cpu,
    )
    wall = time.monotonic() - t0
    server_cpu = m.server.cpu_seconds() - cpu_before
    idle = core_idle_seconds(settings.server_cpu) - idle_before
    foreign = foreign_cpu_seconds(others_before, foreign_snapshot(os.getpid()))
    counters: dict[str, float] = {}
    if m.target.counters:
        after = m.target.counters(m.port)
        counters = {k: v - counters_before.get(k, 0.0) for k, v in after.items()}
    return Run(
        round=round_no,
        wrk=result,
        server_cpu_s=server_cpu,
        wall_s=wall,
        foreign_cpu_s=foreign,
        core_idle_s=idle,
        counters=counters,
    )


def measure_once(m: Measured, round_no: int, settings: Settings) -> None:
    """One measured run; re-run (boundedly) when other processes were busy meanwhile."""
    assert m.server is not None
    for attempt in range(settings.retries + 1):
        if not m.server.alive():
            m.failure = f"server died (exit {m.server.proc.returncode}):\n{m.server.log_tail()}"
            log(f"{m.target.name}: FAILED: {m.failure}")
            return
        wait_for_quiet(settings)
        run = run_once(m, round_no, settings)
        if run.foreign_share <= settings.max_foreign or attempt == settings.retries:
            break
        m.contended.append(run)
        log(f"{m.target.name} round {round_no}: {run.describe_foreign()}; re-running")
    m.runs.append(run)
    result = run.wrk
    status = "ok" if run.valid else f"INVALID (errors: {result.describe_errors()})"
    if run.valid and run.foreign_share > settings.max_foreign:
        status += f", CONTENDED ({run.describe_foreign()})"
    log(
        f"{m.target.name} round {round_no}: {result.rps:,.0f} req/s, "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"{run.cpu_us_per_request:.0f} CPU us/req, {status}"
    )


def measure_all(targets: list[Target], settings: Settings) -> list[Measured]:
    """Start every target, then run ``repeats`` interleaved rounds. Always stops servers."""
    measured: list[Measured] = []
    try:
        for target in targets:
            measured.append(start(target, settings))
        live = [m for m in measured if m.failure is None]
        for round_no in range(1, settings.repeats + 1):
            shift = (round_no - 1) % max(len(live), 1)
            for m in live[shift:] + live[:shift]:
                if m.failure is None:
                    try:
                        measure_once(m, round_no, settings)
                    except (RuntimeError, OSError, ValueError) as err:
                        m.failure = f"measurement failed: {err}"
                        log(f"{m.target.name}: FAILED: {m.failure}")
    finally:
        for m in measured:
            if m.server is not None:
                m.server.stop()
    return measured
