"""V2 (Open Inference Protocol) requests, answers and load generators for ``bench/v2.py``.

REST load comes from wrk, as in the other benchmarks, with the request body read from a
file by the Lua script (binary tensor bodies are not text). gRPC load comes from h2load
(nghttp2), which POSTs one pre-serialised gRPC frame (a 0 compressed-flag byte, a 4-byte
big-endian length, a serialised ``inference.ModelInferRequest``) on HTTP/2 streams. h2load
counts an HTTP 200 as a success even when the gRPC status in the trailers is an error, so a
run is only valid when the response DATA bytes it received equal the number of 200s times
the size of the answer a real gRPC client got from the same server before timing (an error
answer is trailers-only and carries no DATA). Latency percentiles come from h2load's
per-request log (``--log-file``), since h2load prints only min/max/mean.

Bodies and answers are built and read here by hand (JSON, little-endian bytes, and the
protobuf message classes of ``inference.proto``), not with infergraph's codecs, so the
benchmark checks infergraph's V2 implementation instead of agreeing with it.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import statistics
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from harness.measure import Measured, Run, Settings, log, wait_for_quiet
from harness.procs import core_idle_seconds, foreign_cpu_seconds, foreign_snapshot, start_server
from harness.targets import Ports, Target, server_env
from harness.wrk import _DONE_HOOK, MARKER, WrkResult, run_wrk

GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"
HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES = {"FP64": np.dtype("<f8"), "FP32": np.dtype("<f4")}
THROUGHPUT, LATENCY = "throughput", "latency"

# ---------------------------------------------------------------- request bodies


def _input_json(name: str, array: np.ndarray, datatype: str) -> dict[str, Any]:
    return {"name": name, "shape": list(array.shape), "datatype": datatype}


def json_body(array: np.ndarray, datatype: str, name: str = "input-0") -> bytes:
    """A V2 REST request with one input tensor as a flat JSON ``data`` list."""
    tensor = _input_json(name, array, datatype)
    tensor["data"] = np.asarray(array, DTYPES[datatype]).ravel().tolist()
    return json.dumps({"inputs": [tensor]}, separators=(",", ":")).encode()


def binary_body(array: np.ndarray, datatype: str, name: str = "input-0") -> tuple[bytes, int]:
    """A V2 REST request using the binary tensor data extension, asking for binary
    outputs too; returns the body and the JSON header's length (its HTTP header)."""
    data = np.ascontiguousarray(array, DTYPES[datatype]).tobytes()
    tensor = _input_json(name, array, datatype)
    tensor["parameters"] = {"binary_data_size": len(data)}
    header = json.dumps(
        {"inputs": [tensor], "parameters": {"binary_data_output": True}}, separators=(",", ":")
    ).encode()
    return header + data, len(header)


def grpc_message(
    model: str, array: np.ndarray, datatype: str, *, raw: bool, name: str = "input-0"
) -> bytes:
    """A serialised ``ModelInferRequest``: typed ``contents`` or ``raw_input_contents``."""
    from infergraph.protocol.proto import inference_pb2 as pb

    request = pb.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
    values = np.ascontiguousarray(array, DTYPES[datatype])
    if raw:
        request.raw_input_contents.append(values.tobytes())
    elif datatype == "FP64":
        tensor.contents.fp64_contents.extend(values.ravel().tolist())
    else:
        tensor.contents.fp32_contents.extend(values.ravel().tolist())
    return request.SerializeToString()


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: uncompressed flag, big-endian length, message."""
    return b"\0" + struct.pack(">I", len(message)) + message


# ---------------------------------------------------------------- reading answers


def _tensor_from_json(obj: dict[str, Any], binary: memoryview | None, offset: int) -> np.ndarray:
    datatype, shape = obj["datatype"], obj["shape"]
    size = (obj.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if binary is None:
            raise ValueError(f"output {obj['name']} says binary_data_size but no binary data")
        chunk = binary[offset : offset + size]
        return np.frombuffer(chunk, DTYPES[datatype]).reshape(shape)
    return np.asarray(obj["data"], DTYPES[datatype]).reshape(shape)


def rest_outputs(body: bytes, header_length: int | None) -> list[np.ndarray]:
    """The output tensors of a V2 REST answer, JSON or with binary data after the JSON."""
    header = body if header_length is None else body[:header_length]
    binary = None if header_length is None else memoryview(body)[header_length:]
    obj = json.loads(header)
    if "outputs" not in obj:
        raise ValueError(f"no outputs in the answer: {body[:300]!r}")
    tensors, offset = [], 0
    for out in obj["outputs"]:
        tensors.append(_tensor_from_json(out, binary, offset))
        offset += (out.get("parameters") or {}).get("binary_data_size") or 0
    return tensors


def grpc_outputs(message: bytes) -> list[np.ndarray]:
    """The output tensors of a serialised ``ModelInferResponse`` (typed or raw contents)."""
    from infergraph.protocol.proto import inference_pb2 as pb

    response = pb.ModelInferResponse.FromString(message)
    tensors = []
    for index, out in enumerate(response.outputs):
        dtype = DTYPES[out.datatype]
        if response.raw_output_contents:
            array = np.frombuffer(response.raw_output_contents[index], dtype)
        elif out.datatype == "FP64":
            array = np.asarray(out.contents.fp64_contents, dtype)
        else:
            array = np.asarray(out.contents.fp32_contents, dtype)
        tensors.append(array.reshape(list(out.shape)))
    return tensors


def expect_close(expected: np.ndarray, rel: float) -> Callable[[list[np.ndarray]], None]:
    """A check that the answer has exactly one output equal to ``expected`` (within
    ``rel``; the shape may differ only by dimensions of 1)."""

    def check(outputs: list[np.ndarray]) -> None:
        if len(outputs) != 1:
            raise ValueError(f"expected 1 output, got {len(outputs)}")
        got = outputs[0]
        if got.size != expected.size or not np.allclose(
            got.ravel(), expected.ravel(), rtol=rel, atol=1e-9
        ):
            raise ValueError(f"expected {expected.ravel()[:6]}..., got {got.ravel()[:6]}...")
        if [d for d in got.shape if d != 1] != [d for d in expected.shape if d != 1]:
            raise ValueError(f"expected shape {list(expected.shape)}, got {list(got.shape)}")

    return check


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class V2Target(Target):
    """A server and the one V2 request it gets. ``body`` is the REST body or the gRPC
    frame; ``validate`` takes the decoded output tensors."""

    transport: str = "rest"  # "rest" (wrk) or "grpc" (h2load)
    headers: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # added to the server's environment
    loads: tuple[str, ...] = (THROUGHPUT,)

    def url_for(self, ports: Ports) -> str:
        port = ports.grpc if self.transport == "grpc" else ports.http
        path = GRPC_METHOD if self.transport == "grpc" else self.path
        return f"http://127.0.0.1:{port}{path}"


@dataclass
class V2Measured(Measured):
    ports: Ports | None = None
    body_path: Path | None = None
    answer_len: int = 0  # gRPC: DATA bytes of one good answer (frame prefix included)


# ---------------------------------------------------------------- one request


def rest_call(t: V2Target, url: str, timeout_s: float) -> list[np.ndarray]:
    headers = dict(t.headers)
    request = urllib.request.Request(url, data=t.body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body, length = response.read(), response.headers.get(HEADER_LENGTH)
    except urllib.error.HTTPError as err:
        raise ValueError(f"HTTP {err.code}: {err.read()[:500]!r}") from err
    return rest_outputs(body, int(length) if length is not None else None)


def grpc_call(t: V2Target, port: int, timeout_s: float) -> tuple[list[np.ndarray], int]:
    """One ModelInfer call with a real gRPC client; the outputs and the answer's size on
    the wire (message plus the 5-byte frame prefix). Raises on any non-OK status."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(GRPC_METHOD)  # bytes in, bytes out
        message = call(t.body[5:], timeout=timeout_s, wait_for_ready=True)
    return grpc_outputs(message), len(message) + 5


def check_answer(m: V2Measured, timeout_s: float) -> None:
    """Send the target's request once and validate the answer (and remember its size)."""
    t, ports = m.target, m.ports
    assert isinstance(t, V2Target) and ports is not None
    if t.transport == "grpc":
        outputs, m.answer_len = grpc_call(t, ports.grpc, timeout_s)
    else:
        outputs = rest_call(t, t.url_for(ports), timeout_s)
    t.validate(outputs)


# ---------------------------------------------------------------- load generators


def lua_file_script(body_path: Path, headers: tuple[tuple[str, str], ...]) -> str:
    """A wrk script that POSTs the bytes of ``body_path`` and reports via ``done``."""
    lines = [
        f"MARKER = {json.dumps(MARKER)}",
        'wrk.method = "POST"',
        f'local f = assert(io.open({json.dumps(str(body_path))}, "rb"))',
        'wrk.body = f:read("*a")',
        "f:close()",
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers]
    return "\n".join([*lines, _DONE_HOOK])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (as wrk reports them)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _count(pattern: str, text: str) -> dict[str, int]:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"h2load printed no line matching {pattern!r}:\n{text}")
    return {k: int(v) for k, v in found.groupdict().items()}


def run_h2load(
    url: str,
    frame_path: Path,
    log_path: Path,
    *,
    answer_len: int,
    duration_s: int,
    connections: int,
    cpu: int,
) -> WrkResult:
    """h2load pinned to ``cpu``: ``connections`` HTTP/2 connections, one stream in flight
    each (``-m1``, as wrk keeps one request per connection), for ``duration_s`` seconds."""
    argv = [
        "taskset",
        "-c",
        str(cpu),
        "h2load",
        "-t1",
        f"-c{connections}",
        "-m1",
        f"-D{duration_s}",
        "-d",
        str(frame_path),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        f"--log-file={log_path}",
        url,
    ]
    before = _children_cpu_s()
    started = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    client_cpu = _children_cpu_s() - before
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(
            f"h2load exited {done.returncode} after {time.monotonic() - started:.1f}s:\n{out}"
        )
    seconds = float(_require(r"finished in ([\d.]+)s,", out))
    req = _count(
        r"requests: \d+ total, \d+ started, (?P<done>\d+) done, (?P<ok>\d+) succeeded, "
        r"(?P<failed>\d+) failed, (?P<errored>\d+) errored, (?P<timeout>\d+) timeout",
        out,
    )
    codes = _count(r"status codes: (?P<s2xx>\d+) 2xx", out)
    data = _count(r"traffic: .*\((?P<data>\d+)\) data", out)["data"]
    # A gRPC error is a trailers-only 200: no DATA. Count the answers missing from DATA.
    expected = codes["s2xx"] * answer_len
    bad_grpc = math.ceil(abs(expected - data) / answer_len) if answer_len else codes["s2xx"]
    latencies = sorted(
        int(line.split("\t")[2]) / 1e3
        for line in log_path.read_text().splitlines()
        if line.count("\t") == 2 and line.split("\t")[1] == "200"
    )
    log_path.unlink(missing_ok=True)
    return WrkResult(
        requests=req["done"],
        duration_s=seconds,
        p50_ms=_percentile(latencies, 50),
        p90_ms=_percentile(latencies, 90),
        p99_ms=_percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
        errors={
            "failed": req["failed"],
            "errored": req["errored"],
            "timeout": req["timeout"],
            "grpc_not_ok": bad_grpc,
        },
        non_2xx=req["done"] - codes["s2xx"],
        client_cpu_s=client_cpu,
        output=out,
    )


def _require(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"h2load printed no line matching {pattern!r}:\n{text}")
    return found.group(1)


def drive(m: V2Measured, settings: Settings, duration_s: int) -> WrkResult:
    """One load run against ``m`` with ``settings.connections`` concurrent requests."""
    t = m.target
    assert isinstance(t, V2Target) and m.ports is not None and m.body_path is not None
    if t.transport == "grpc":
        return run_h2load(
            t.url_for(m.ports),
            m.body_path,
            settings.work_dir / f"{t.name}.h2load.tsv",
            answer_len=m.answer_len,
            duration_s=duration_s,
            connections=settings.connections,
            cpu=settings.client_cpu,
        )
    assert m.script is not None
    return run_wrk(
        t.url_for(m.ports),
        m.script,
        duration_s=duration_s,
        connections=settings.connections,
        threads=settings.threads,
        cpu=settings.client_cpu,
    )


# ---------------------------------------------------------------- measuring


def start(target: V2Target, settings: Settings, ports: Ports) -> V2Measured:
    """Start one target, check its answer, and warm it up; failures are recorded."""
    m = V2Measured(target=target, max_foreign=settings.max_foreign, ports=ports, port=ports.http)
    if not target.executable.exists():
        m.failure = f"not installed: {target.executable} missing ({target.install_hint})"
        return m
    m.body_path = settings.work_dir / f"{target.name}.body"
    m.body_path.write_bytes(target.body)
    if target.transport == "rest":
        m.script = settings.work_dir / f"{target.name}.lua"
        m.script.write_text(lua_file_script(m.body_path, target.headers))
    argv = target.command(ports)
    env = {**server_env(), **dict(target.env)}
    wait_for_quiet(settings)  # start and warm up while other processes are quiet, too
    log(f"{target.name}: starting `{' '.join(argv)}` (cwd {target.cwd})")
    m.server = start_server(
        target.name,
        argv,
        cwd=target.cwd,
        env=env,
        cpu=settings.server_cpu,
        log_path=settings.work_dir / f"{target.name}.log",
    )
    try:
        _wait_ready(m, settings)
        if settings.warmup_s > 0:
            warm = drive(m, settings, settings.warmup_s)
            if warm.error_count:
                raise RuntimeError(f"errors during warm-up: {warm.describe_errors()}")
            _check_again(m)  # still right after the warm-up
        log(f"{target.name}: ready ({target.url_for(ports)})")
    except Exception as err:  # one broken target must not stop the others
        m.failure = f"{type(err).__name__}: {err}"
        m.server.stop()
        log(f"{target.name}: FAILED to start: {m.failure}")
    return m


def _check_again(m: V2Measured, attempts: int = 3, timeout_s: float = 10.0) -> None:
    """The answer check after the warm-up, allowing for a stalled moment of a shared machine
    (a wrong answer still fails at once; only timeouts are retried)."""
    for attempt in range(attempts):
        try:
            check_answer(m, timeout_s)
            return
        except Exception as err:
            text = f"{type(err).__name__}: {err}"
            if attempt + 1 == attempts or not any(
                s in text for s in ("TimeoutError", "timed out", "DEADLINE_EXCEEDED")
            ):
                raise
            log(f"{m.target.name}: no answer within {timeout_s:.0f}s after the warm-up; again")


def _wait_ready(m: V2Measured, settings: Settings) -> None:
    assert m.server is not None
    deadline = time.monotonic() + settings.startup_timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not m.server.alive():
            tail = m.server.log_tail()
            raise RuntimeError(
                f"exited with code {m.server.proc.returncode} during startup\n{tail}"
            )
        try:
            check_answer(m, 2.0)
            return
        except (OSError, ConnectionError) as err:
            last = str(err)
        except Exception as err:
            text = str(err)
            if not any(s in text for s in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "HTTP 503")):
                raise
            last = text.splitlines()[0]
        time.sleep(0.25)
    raise RuntimeError(
        f"not ready after {settings.startup_timeout_s:.0f}s ({last}):\n{m.server.log_tail()}"
    )


def run_once(m: V2Measured, round_no: int, settings: Settings) -> Run:
    assert m.server is not None
    cpu_before = m.server.cpu_seconds()
    idle_before = core_idle_seconds(settings.server_cpu)
    others_before = foreign_snapshot(os.getpid())
    t0 = time.monotonic()
    result = drive(m, settings, settings.duration_s)
    wall = time.monotonic() - t0
    server_cpu = m.server.cpu_seconds() - cpu_before
    idle = core_idle_seconds(settings.server_cpu) - idle_before
    foreign = foreign_cpu_seconds(others_before, foreign_snapshot(os.getpid()))
    return Run(
        round=round_no,
        wrk=result,
        server_cpu_s=server_cpu,
        wall_s=wall,
        foreign_cpu_s=foreign,
        core_idle_s=idle,
    )


def measure_once(m: V2Measured, round_no: int, settings: Settings, label: str) -> None:
    """One measured run; re-run (boundedly) when other processes were busy meanwhile."""
    assert m.server is not None
    for attempt in range(settings.retries + 1):
        if not m.server.alive():
            m.failure = f"server died (exit {m.server.proc.returncode}):\n{m.server.log_tail()}"
            log(f"{label}: FAILED: {m.failure}")
            return
        wait_for_quiet(settings)
        run = run_once(m, round_no, settings)
        if run.foreign_share <= settings.max_foreign or attempt == settings.retries:
            break
        m.contended.append(run)
        log(f"{label} round {round_no}: {run.describe_foreign()}; re-running")
    m.runs.append(run)
    result = run.wrk
    status = "ok" if run.valid else f"INVALID (errors: {result.describe_errors()})"
    if run.valid and run.foreign_share > settings.max_foreign:
        status += f", CONTENDED ({run.describe_foreign()})"
    log(
        f"{label} round {round_no}: {result.rps:,.0f} req/s, "
        f"p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms, "
        f"{run.cpu_us_per_request:.0f} CPU us/req, {status}"
    )


@dataclass
class Measurements:
    """Every target's runs, per load (``THROUGHPUT``, ``LATENCY``)."""

    by_load: dict[str, dict[str, V2Measured]] = field(default_factory=dict)

    def get(self, load: str, name: str) -> V2Measured | None:
        return self.by_load.get(load, {}).get(name)


def measure(
    targets: list[V2Target], loads: dict[str, Settings], ports: Callable[[], Ports]
) -> Measurements:
    """Start every target, then run interleaved rounds: in each round every target gets
    one run per load it takes, the target order rotating from round to round. All servers
    stay up (idle) while the others run; CPU is read per process tree. Always stops them."""
    first = loads[THROUGHPUT]
    found = Measurements({load: {} for load in loads})
    started: list[V2Measured] = []
    try:
        for target in targets:
            m = start(target, first, ports())
            started.append(m)
            for load in target.loads:
                found.by_load[load][target.name] = m if load == THROUGHPUT else _copy_empty(m)
        live = [m.target.name for m in started if m.failure is None]
        for round_no in range(1, first.repeats + 1):
            shift = (round_no - 1) % max(len(live), 1)
            for name in live[shift:] + live[:shift]:
                for load, settings in loads.items():
                    m = found.get(load, name)
                    if m is None:
                        continue
                    if any((found.get(other, name) or m).failure for other in loads):
                        break
                    label = name if load == THROUGHPUT else f"{name} ({load})"
                    try:
                        measure_once(m, round_no, settings, label)
                    except (RuntimeError, OSError, ValueError) as err:
                        m.failure = f"measurement failed: {err}"
                        log(f"{label}: FAILED: {m.failure}")
    finally:
        for m in started:
            if m.server is not None:
                m.server.stop()
    return found


def _copy_empty(m: V2Measured) -> V2Measured:
    return replace(m, runs=[], contended=[])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
