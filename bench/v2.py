"""V2 benchmark: the Open Inference Protocol over REST and gRPC, infergraph vs MLServer vs KServe.

Part 1: the same iris LogisticRegression (one joblib file, ``predict_proba``) behind each
server's V2 endpoints, one-row FP64 requests at concurrency 32: REST JSON with wrk, gRPC
with h2load (``bench/v2_loads.py``). Goal: infergraph at least 3x the req/s of MLServer and
of KServe, over REST and over gRPC. Part 2: what a 1000 x 100 FP32 tensor costs infergraph
over binary V2 (REST binary tensor extension, gRPC ``raw_input_contents``) against a 1 x 100
one on the same trivial model (``bench/models/RowSumsModel.py``): server CPU per request at
concurrency 32 and p50 at concurrency 1, goal at most 5x.

The method is the other benchmarks' (bench/README.md): every server pinned to core 0, the
load generator to core 1; all servers started, checked and warmed up first, then
interleaved rounds in rotating order; CPU per request from /proc over the server's process
tree; runs during which other processes were busy re-run and excluded; medians, and ratios
of medians from the same invocation. Every server's answer is checked against the values
computed here before timing, and again after the warm-up; gRPC runs are checked call by
call through h2load's received DATA bytes (see ``bench/v2_loads.py``).

Peers: ``scripts/peer-venvs.sh all`` (or its ``mlserver``, ``kserve``, ``h2load`` targets). Run
``.venv/bin/python bench/v2.py --help``; ``--targets`` also accepts the optional
``mlserver-rest-nodebug`` and ``mlserver-grpc-nodebug`` (MLServer with ``debug: false``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import cli, report
from harness.measure import Measured, Run, Settings, log
from harness.procs import free_port
from harness.targets import MODELS, ROOT, SAMPLE_ROW, Ports
from v2_loads import (
    HEADER_LENGTH,
    LATENCY,
    THROUGHPUT,
    Measurements,
    V2Target,
    binary_body,
    expect_close,
    grpc_frame,
    grpc_message,
    json_body,
    median,
)

MAX_FOREIGN = 0.10
RESULTS_BEGIN = "<!-- v2-bench:begin -->"
RESULTS_END = "<!-- v2-bench:end -->"
IRIS = "iris"  # the model's name on every server
ROWSUMS = "rowsums"
BIG_SHAPE = (1000, 100)
SMALL_SHAPE = (1, 100)
GOAL_VS_PEERS = 3.0  # infergraph req/s over each peer's, at least
GOAL_BIG = 5.0  # 1000x100 over 1x100, at most

OWN_PACKAGES = ["infergraph", "uvloop", "httptools", "grpcio", "protobuf", "numpy", "scikit-learn"]
MLSERVER_PACKAGES = [
    "mlserver",
    "mlserver-sklearn",
    "fastapi",
    "uvicorn",
    "uvloop",
    "grpcio",
    "protobuf",
    "scikit-learn",
]
KSERVE_PACKAGES = ["kserve", "fastapi", "uvicorn", "uvloop", "grpcio", "protobuf", "scikit-learn"]

STACKS = ("infergraph", "mlserver", "kserve")
PEER_TARGETS = tuple(f"{s}-{t}" for t in ("rest", "grpc") for s in STACKS)
BIG_TARGETS = (
    "rowsums-rest-binary-1x100",
    "rowsums-rest-binary-1000x100",
    "rowsums-grpc-raw-1x100",
    "rowsums-grpc-raw-1000x100",
)
BATCH_TARGETS = ("infergraph-rest-batch", "infergraph-grpc-batch")
REFERENCE_TARGETS = ("bare-grpc-aio", "bare-grpc-native", "infergraph-rest-binary")
# Not run by default: MLServer with debug off (no per-request access log), a side check.
OPTIONAL_TARGETS = ("mlserver-rest-nodebug", "mlserver-grpc-nodebug")
DEFAULT_TARGETS = (*PEER_TARGETS, *BATCH_TARGETS, *REFERENCE_TARGETS, *BIG_TARGETS)
ONE_ROW_TARGETS = (*PEER_TARGETS, *BATCH_TARGETS, *REFERENCE_TARGETS, *OPTIONAL_TARGETS)


def parse_args(argv: list[str]) -> argparse.Namespace:
    args = cli.parse_args(
        argv,
        __doc__.splitlines()[0],
        (*DEFAULT_TARGETS, *OPTIONAL_TARGETS),
        connections_help="concurrent requests of the throughput runs (wrk -c, h2load -c)",
        check_help="exit 3 when a goal is not met",
        repeats_help="measured rounds",
    )
    if "--targets" not in " ".join(argv):
        args.targets = ",".join(DEFAULT_TARGETS)  # the optional ones only when named
    return args


def preflight(args: argparse.Namespace) -> None:
    if shutil.which("h2load") is None:
        sys.exit("error: h2load not found (scripts/peer-venvs.sh h2load installs it)")
    cli.preflight(args)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- the models


def iris_expected() -> np.ndarray:
    """What every iris target must answer: the cached model's probabilities, computed here."""
    sys.path.insert(0, str(MODELS))
    from iris_data import load_model

    return np.asarray(load_model().predict_proba([SAMPLE_ROW]), dtype=np.float64)


@functools.cache
def model_file(python: Path) -> Path:
    """The joblib file the iris model is cached in for ``python``'s scikit-learn (trained and
    cached first if needed), as ``bench/models/iris_data.py`` names it."""
    code = "import iris_data; iris_data.load_model(); print(iris_data._cache_path())"
    done = subprocess.run(
        [str(python), "-c", code], cwd=MODELS, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python} could not load the iris model:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def big_tensor(shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(0).random(shape, dtype=np.float32)


# ---------------------------------------------------------------- targets


def build_targets(work: Path) -> dict[str, V2Target]:
    venv, ks_venv, ml_venv = ROOT / ".venv", ROOT / ".venv-kserve", ROOT / ".venv-mlserver"
    infergraph = venv / "bin" / "infergraph"
    mlserver = ml_venv / "bin" / "mlserver"
    ks_python = ks_venv / "bin" / "python"
    peers_hint = "run scripts/peer-venvs.sh"
    row = np.asarray([SAMPLE_ROW], dtype=np.float64)
    iris_ok = expect_close(iris_expected(), 1e-9)
    rest_json = {
        "path": f"/v2/models/{IRIS}/infer",
        "body": json_body(row, "FP64"),
        "headers": (("Content-Type", "application/json"),),
    }
    grpc_typed = {"path": "", "body": grpc_frame(grpc_message(IRIS, row, "FP64", raw=False))}

    def infergraph_cmd(model: str, *extra: str) -> Callable[[Ports], list[str]]:
        return lambda p: [
            str(infergraph),
            "microservice",
            model,
            "--http-port",
            str(p.http),
            "--grpc-port",
            str(p.grpc),
            "--metrics-port",
            str(p.metrics),
            *extra,
        ]

    def mlserver_cmd(name: str, **extra: object) -> Callable[[Ports], list[str]]:
        """MLServer's own CLI on a model repository holding one model-settings.json; the
        server settings (ports, one process) go in the repository's settings.json."""

        def command(p: Ports) -> list[str]:
            repo = work / name
            (repo / IRIS).mkdir(parents=True, exist_ok=True)
            settings = {
                "host": "127.0.0.1",
                "http_port": p.http,
                "grpc_port": p.grpc,
                "metrics_port": p.metrics,
                "parallel_workers": 0,
                **extra,
            }
            (repo / "settings.json").write_text(json.dumps(settings, indent=2))
            model = {
                "name": IRIS,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {
                    "uri": str(model_file(ml_venv / "bin" / "python")),
                    "extra": {"predict_fn": "predict_proba"},
                },
            }
            (repo / IRIS / "model-settings.json").write_text(json.dumps(model, indent=2))
            return [str(mlserver), "start", str(repo)]

        return command

    def kserve_cmd(p: Ports) -> list[str]:
        return [
            str(ks_python),
            str(MODELS / "kserve_v2_iris.py"),
            "--http_port",
            str(p.http),
            "--grpc_port",
            str(p.grpc),
        ]

    targets: list[V2Target] = []
    for transport, request in (("rest", rest_json), ("grpc", grpc_typed)):
        what = "V2 REST JSON" if transport == "rest" else "V2 gRPC, typed fp64_contents"
        targets += [
            V2Target(
                name=f"infergraph-{transport}",
                description=f"infergraph microservice IrisModel, {what}",
                executable=infergraph,
                install_hint="make venv",
                cwd=MODELS,
                validate=iris_ok,
                command=infergraph_cmd("IrisModel"),
                transport=transport,
                env=(("PREDICTIVE_UNIT_ID", IRIS),),
                **request,
            ),
            V2Target(
                name=f"mlserver-{transport}",
                description=f"mlserver start, mlserver_sklearn.SKLearnModel, {what}",
                executable=mlserver,
                install_hint=peers_hint,
                cwd=work,
                validate=iris_ok,
                command=mlserver_cmd(f"mlserver-{transport}"),
                transport=transport,
                **request,
            ),
            V2Target(
                name=f"kserve-{transport}",
                description=f"kserve.ModelServer, 1 worker, {what}",
                executable=ks_python,
                install_hint=peers_hint,
                cwd=MODELS,
                validate=iris_ok,
                command=kserve_cmd,
                transport=transport,
                **request,
            ),
            V2Target(
                name=f"infergraph-{transport}-batch",
                description=f"infergraph microservice IrisModel --max-batch-size 32, {what}",
                executable=infergraph,
                install_hint="make venv",
                cwd=MODELS,
                validate=iris_ok,
                command=infergraph_cmd("IrisModel", "--max-batch-size", "32"),
                transport=transport,
                env=(("PREDICTIVE_UNIT_ID", IRIS),),
                **request,
            ),
            V2Target(
                name=f"mlserver-{transport}-nodebug",
                description=f"mlserver start with debug: false, {what}",
                executable=mlserver,
                install_hint=peers_hint,
                cwd=work,
                validate=iris_ok,
                command=mlserver_cmd(f"mlserver-{transport}-nodebug", debug=False),
                transport=transport,
                **request,
            ),
        ]
    for kind, what in (("aio", "grpc.aio"), ("native", "infergraph's HTTP/2 server")):
        targets.append(
            V2Target(
                name=f"bare-grpc-{kind}",
                description=f"{what} on uvloop returning a fixed ModelInferResponse (a floor)",
                executable=venv / "bin" / "python",
                install_hint="make venv",
                cwd=ROOT / "bench",
                validate=iris_ok,
                command=lambda p, k=kind: [
                    str(venv / "bin" / "python"),
                    "bare_grpc.py",
                    str(p.grpc),
                    k,
                ],
                transport="grpc",
                **grpc_typed,
            )
        )
    body, length = binary_body(row, "FP64")
    targets.append(
        V2Target(
            name="infergraph-rest-binary",
            description="infergraph microservice IrisModel, V2 REST binary tensor extension",
            executable=infergraph,
            install_hint="make venv",
            cwd=MODELS,
            path=f"/v2/models/{IRIS}/infer",
            body=body,
            headers=(
                ("Content-Type", "application/octet-stream"),
                (HEADER_LENGTH, str(length)),
            ),
            validate=iris_ok,
            command=infergraph_cmd("IrisModel"),
            env=(("PREDICTIVE_UNIT_ID", IRIS),),
        )
    )
    for shape in (SMALL_SHAPE, BIG_SHAPE):
        array = big_tensor(shape)
        sums_ok = expect_close(array.sum(axis=1), 1e-5)
        size = f"{shape[0]}x{shape[1]}"
        body, length = binary_body(array, "FP32")
        common = {
            "executable": infergraph,
            "install_hint": "make venv",
            "cwd": MODELS,
            "validate": sums_ok,
            "command": infergraph_cmd("RowSumsModel"),
            "env": (("PREDICTIVE_UNIT_ID", ROWSUMS),),
            "loads": (THROUGHPUT, LATENCY),
        }
        targets += [
            V2Target(
                name=f"rowsums-rest-binary-{size}",
                description=f"infergraph microservice RowSumsModel, {size} FP32, REST binary",
                path=f"/v2/models/{ROWSUMS}/infer",
                body=body,
                headers=(
                    ("Content-Type", "application/octet-stream"),
                    (HEADER_LENGTH, str(length)),
                ),
                **common,
            ),
            V2Target(
                name=f"rowsums-grpc-raw-{size}",
                description=f"infergraph microservice RowSumsModel, {size} FP32, gRPC raw",
                path="",
                body=grpc_frame(grpc_message(ROWSUMS, array, "FP32", raw=True)),
                transport="grpc",
                **common,
            ),
        ]
    return {t.name: t for t in targets}


# ---------------------------------------------------------------- figures


def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def median_of(m: Measured | None, metric: Callable[[Run], float]) -> float:
    return median([metric(r) for r in m.clean_runs]) if m is not None else math.nan


def rps(r: Run) -> float:
    return r.wrk.rps


def cpu_us(r: Run) -> float:
    return r.cpu_us_per_request


def p50(r: Run) -> float:
    return r.wrk.p50_ms


def p99(r: Run) -> float:
    return r.wrk.p99_ms


def client_name(m: Measured) -> str:
    t = m.target
    return "h2load" if isinstance(t, V2Target) and t.transport == "grpc" else "wrk"


def table(measured: list[Measured], connections: int) -> list[str]:
    lines = [
        "| target | req/s | p50 ms | p99 ms | CPU µs/req | server CPU | core idle "
        "| client CPU | other processes | clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measured:
        name = m.target.name
        if not m.clean_runs:
            reason = (m.failure or "no clean run").splitlines()[0]
            lines.append(f"| {name} | FAILED: {reason} |" + " |" * 7 + f" 0/{len(m.runs)} |")
            continue
        lines.append(
            f"| {name} | {median_of(m, rps):,.0f} | {median_of(m, p50):.2f} "
            f"| {median_of(m, p99):.2f} | {median_of(m, cpu_us):,.0f} "
            f"| {median_of(m, lambda r: r.server_cpu_s / r.wall_s):.0%} "
            f"| {median_of(m, lambda r: r.core_idle_s / r.wall_s):.0%} "
            f"| {client_name(m)} {median_of(m, lambda r: r.wrk.client_cpu_s / r.wall_s):.0%} "
            f"| {median_of(m, lambda r: r.foreign_share):.0%} "
            f"| {len(m.clean_runs)}/{len(m.runs)} |"
        )
    return lines


@dataclass(frozen=True)
class Ratio:
    label: str
    numerator: Measured | None
    denominator: Measured | None
    metric: Callable[[Run], float]
    op: str | None  # ">=", "<=" or None (no goal)
    bound: float = math.nan

    def value(self) -> tuple[float, list[float]]:
        num, den = self.numerator, self.denominator
        if num is None or den is None or not num.clean_runs or not den.clean_runs:
            return math.nan, []
        by_round = {r.round: self.metric(r) for r in den.clean_runs}
        rounds = [self.metric(r) / by_round[r.round] for r in num.clean_runs if r.round in by_round]
        return median_of(num, self.metric) / median_of(den, self.metric), rounds


def ratio_lines(ratios: list[Ratio]) -> tuple[list[str], bool]:
    lines = ["| ratio | value | per-round range | goal | verdict |", "|---|---:|---:|---:|---|"]
    all_met = True
    for ratio in ratios:
        value, rounds = ratio.value()
        spread = f"{min(rounds):.2f} to {max(rounds):.2f}" if rounds else ""
        goal = f"{ratio.op} {ratio.bound:g}" if ratio.op else "none"
        if math.isnan(value):
            verdict = "not measured"
        elif ratio.op is None:
            verdict = ""
        elif (value >= ratio.bound) if ratio.op == ">=" else (value <= ratio.bound):
            verdict = "met"
        else:
            verdict = "**NOT met**"
            all_met = False
        lines.append(f"| {ratio.label} | {_fmt(value, '.2f')} | {spread} | {goal} | {verdict} |")
    return lines, all_met


def peer_ratios(tp: dict[str, Measured]) -> list[Ratio]:
    out: list[Ratio] = []
    for transport in ("rest", "grpc"):
        ours = tp.get(f"infergraph-{transport}")
        batch = tp.get(f"infergraph-{transport}-batch")
        kind = "REST" if transport == "rest" else "gRPC"
        for peer in ("mlserver", "kserve"):
            theirs = tp.get(f"{peer}-{transport}")
            label = f"{kind}: infergraph / {peer}"
            out += [
                Ratio(f"{label} req/s", ours, theirs, rps, ">=", GOAL_VS_PEERS),
                Ratio(f"{label} CPU per request (lower is better)", ours, theirs, cpu_us, None),
                Ratio(f"{label} p50 (lower is better)", ours, theirs, p50, None),
            ]
            if batch is not None:
                out.append(
                    Ratio(f"{kind}: infergraph-batch / {peer} req/s", batch, theirs, rps, None)
                )
        quiet = tp.get(f"mlserver-{transport}-nodebug")
        if quiet is not None:
            out.append(
                Ratio(
                    f"{kind}: mlserver debug off / on req/s",
                    quiet,
                    tp.get(f"mlserver-{transport}"),
                    rps,
                    None,
                )
            )
    return out


def big_ratios(measurements: Measurements) -> list[Ratio]:
    out: list[Ratio] = []
    for kind, label in (("rest-binary", "REST binary"), ("grpc-raw", "gRPC raw")):
        big, small = f"rowsums-{kind}-1000x100", f"rowsums-{kind}-1x100"
        tp = (measurements.get(THROUGHPUT, big), measurements.get(THROUGHPUT, small))
        lat = (measurements.get(LATENCY, big), measurements.get(LATENCY, small))
        out += [
            Ratio(f"{label}: server CPU per request (c32)", *tp, cpu_us, "<=", GOAL_BIG),
            Ratio(f"{label}: p50 latency (c1)", *lat, p50, "<=", GOAL_BIG),
            Ratio(f"{label}: p50 latency (c32)", *tp, p50, None),
        ]
    return out


def big_table(measurements: Measurements, names: list[str]) -> list[str]:
    lines = [
        "| target | req/s (c32) | CPU µs/req (c32) | p50 ms (c32) | server CPU (c32) "
        "| client CPU (c32) | p50 ms (c1) | p99 ms (c1) | CPU µs/req (c1) | request bytes "
        "| clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        t, la = measurements.get(THROUGHPUT, name), measurements.get(LATENCY, name)
        assert t is not None and la is not None
        if not t.clean_runs or not la.clean_runs:
            reason = (t.failure or la.failure or "no clean run").splitlines()[0]
            lines.append(f"| {name} | FAILED: {reason} |" + " |" * 9)
            continue
        lines.append(
            f"| {name} | {median_of(t, rps):,.0f} | {median_of(t, cpu_us):,.0f} "
            f"| {median_of(t, p50):.2f} "
            f"| {median_of(t, lambda r: r.server_cpu_s / r.wall_s):.0%} "
            f"| {client_name(t)} {median_of(t, lambda r: r.wrk.client_cpu_s / r.wall_s):.0%} "
            f"| {median_of(la, p50):.3f} | {median_of(la, p99):.3f} "
            f"| {median_of(la, cpu_us):,.0f} | {len(t.target.body):,} "
            f"| {len(t.clean_runs)}/{len(t.runs)} + {len(la.clean_runs)}/{len(la.runs)} |"
        )
    return lines


def problems(measurements: Measurements) -> list[str]:
    out: list[str] = []
    for load, measured in measurements.by_load.items():
        tagged = [
            replace(
                m, target=replace(m.target, name=name if load == THROUGHPUT else f"{name} (c1)")
            )
            for name, m in measured.items()
        ]
        out += report.errors(tagged, MAX_FOREIGN)
    return list(dict.fromkeys(out))


def h2load_version() -> str:
    try:
        done = subprocess.run(["h2load", "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def render(
    args: argparse.Namespace, argv: list[str], measurements: Measurements
) -> tuple[str, bool]:
    command = shlex.join([".venv/bin/python", "bench/v2.py", *argv])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    tp = measurements.by_load[THROUGHPUT]
    first = [tp[n] for n in ONE_ROW_TARGETS if n in tp]
    big = [n for n in BIG_TARGETS if n in tp]
    peer_lines, peers_met = ratio_lines(peer_ratios(tp))
    big_lines, big_met = ratio_lines(big_ratios(measurements))
    c = args.connections
    lines = [
        f"## V2 protocol: infergraph vs MLServer vs KServe ({now})",
        "",
        f"- command: `{command}`",
        f"- date: {now}",
        f"- CPU: {report.cpu_model()} ({os.cpu_count()} cores); "
        f"kernel {platform.release()}; Python {platform.python_version()}",
        f"- method: servers on CPU {args.server_cpu} (`taskset`), load generators on CPU "
        f"{args.client_cpu}: REST `wrk -t1 -c{c} --latency`, gRPC `h2load -t1 -c{c} -m1` "
        f"({c} HTTP/2 connections, one call in flight on each); {args.repeats} interleaved "
        f"rounds x {args.duration} s after a {args.warmup} s warm-up; medians over clean "
        "runs (no errors, cores not shared)",
        "- model: one `LogisticRegression(max_iter=1000)` fitted on `load_iris()`, one joblib "
        "file (`bench/models/iris_data.py`), `predict_proba` on every server; request: the "
        "row `[[5.1, 3.5, 1.4, 0.2]]` as one FP64 tensor of shape [1, 4], named `iris`; "
        "REST: V2 JSON to `POST /v2/models/iris/infer`; gRPC: "
        "`inference.GRPCInferenceService/ModelInfer` with typed `fp64_contents`",
        "- infergraph: `infergraph microservice IrisModel --http-port P --grpc-port G "
        "--metrics-port M` (cwd `bench/models`, `PREDICTIVE_UNIT_ID=iris`), its defaults",
        "- MLServer: `mlserver start REPO`, model-settings.json `mlserver_sklearn.SKLearnModel` "
        "with `uri` the joblib file and `extra.predict_fn: predict_proba`; settings.json sets "
        "only host 127.0.0.1, the ports and `parallel_workers: 0` (inference in the server "
        "process: one process on one core, like the others; its default of 1 adds a worker "
        "process fed over IPC, which on a single core only adds cost); its other defaults "
        "kept (`debug: true`: access logs on REST and gRPC, metrics on)",
        "- KServe: `bench/models/kserve_v2_iris.py`: `kserve.ModelServer(workers=1)` with a "
        "`kserve.Model` doing what KServe's sklearnserver does (`get_predict_input` → "
        "`predict_proba` → `get_predict_response`); gRPC on by default; its defaults otherwise",
        f"- project venv: {report.package_versions(ROOT / '.venv/bin/python', OWN_PACKAGES)}",
        "- mlserver venv: "
        f"{report.package_versions(ROOT / '.venv-mlserver/bin/python', MLSERVER_PACKAGES)}",
        "- kserve venv: "
        f"{report.package_versions(ROOT / '.venv-kserve/bin/python', KSERVE_PACKAGES)}",
        f"- load generators: {report.wrk_version()}; {h2load_version()}",
        "",
        f"### One-row iris, concurrency {c}",
        "",
        *table(first, c),
        "",
        *peer_lines,
        "",
        "`bare-grpc-aio` / `bare-grpc-native` (`bench/bare_grpc.py`): `grpc.aio` (the gRPC "
        "server of MLServer and KServe) or infergraph's own HTTP/2 server (its default) on "
        "uvloop answering every ModelInfer with the same pre-serialised response, parsing "
        "nothing and running no model: each server's floor. `infergraph-rest-binary`: the "
        f"iris request with the binary tensor extension (`{HEADER_LENGTH}`, binary output "
        "asked for); MLServer does not implement that extension, so the cross-server REST "
        "comparison uses JSON on all three.",
        "",
        f"### Large tensor: {BIG_SHAPE[0]} x {BIG_SHAPE[1]} FP32 vs {SMALL_SHAPE[0]} x "
        f"{SMALL_SHAPE[1]}, infergraph",
        "",
        "`infergraph microservice RowSumsModel` (`bench/models/RowSumsModel.py`: returns "
        "`X.sum(axis=1)`, a few µs of numpy) so the transport and codec are what is measured; "
        "REST: binary tensor extension both ways; gRPC: `raw_input_contents`. The baseline "
        "is the same server, model and encoding with one row of 100 values. Each round runs "
        f"every target at `-c{c}` (server CPU per request) and at `-c1` (latency without "
        "queueing).",
        "",
        *big_table(measurements, big),
        "",
        *big_lines,
        "",
        "CPU µs/req: CPU time of the server's whole process tree during a run "
        "(/proc utime+stime) divided by requests completed. server CPU / client CPU: share "
        "of one core each used during the run (a client near 100% would be the limit). core "
        "idle: share of the run the server's core sat idle. other processes: CPU of "
        "processes not started by the benchmark, machine-wide, as a share of one core; runs "
        f"above {MAX_FOREIGN:.0%} are re-run and left out of the medians. Ratios: medians "
        "of one target over another's from this invocation; the range is the same ratio "
        "round by round. gRPC runs count only if every answer was gRPC-OK: h2load's DATA "
        "bytes must equal its 200s times the size of the answer a grpcio client got from "
        "the same server (a gRPC error is trailers-only, with no DATA).",
    ]
    found = problems(measurements)
    if found:
        lines += [
            "",
            "**Problems** (failed, invalid and contended runs are excluded from the medians):",
            "",
            *found,
        ]
    return "\n".join(lines) + "\n", peers_met and big_met


def dump_json(path: Path, measurements: Measurements) -> None:
    data = {
        load: {name: report.measured_json(m) for name, m in measured.items()}
        for load, measured in measurements.by_load.items()
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    preflight(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    from v2_loads import measure

    with tempfile.TemporaryDirectory(prefix="v2-", dir=cache) as work:
        all_targets = build_targets(Path(work))
        selected = [all_targets[name] for name in args.targets.split(",")]
        throughput = Settings(
            duration_s=args.duration,
            repeats=args.repeats,
            warmup_s=args.warmup,
            connections=args.connections,
            threads=1,
            server_cpu=args.server_cpu,
            client_cpu=args.client_cpu,
            startup_timeout_s=args.startup_timeout,
            work_dir=Path(work),
            max_foreign=MAX_FOREIGN,
            retries=args.retries,
        )
        loads = {THROUGHPUT: throughput, LATENCY: replace(throughput, connections=1)}
        measurements = measure(
            selected, loads, lambda: Ports(free_port(), free_port(), free_port())
        )
        logs = cache / "logs"
        logs.mkdir(exist_ok=True)
        for log_file in Path(work).glob("*.log"):
            shutil.copy(log_file, logs / f"v2-{log_file.name}")
    text, met = render(args, argv, measurements)
    print()
    print(text)
    if args.json:
        dump_json(args.json, measurements)
    if args.write_results:
        report.update_results(ROOT / "bench" / "RESULTS.md", text, RESULTS_BEGIN, RESULTS_END)
        log("updated bench/RESULTS.md")
    every = [m for measured in measurements.by_load.values() for m in measured.values()]
    return report.exit_status(every, met, args.check)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\n[bench] interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
