"""Drive wrk and read its results in a form that cannot be misparsed.

wrk's human-readable output rounds figures and changes units (us/ms/s, k/M), so the
Lua script's ``done`` hook prints one machine-readable line with exact counts and
latency percentiles. The text output is still kept: its "Non-2xx or 3xx responses" line
is cross-checked, because a run with any failed request is invalid.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "WRKJSON "

_DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,'
    .. '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,'
    .. '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f}\\n',
    MARKER, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lua_script(body: bytes, content_type: str = "application/json") -> str:
    """A wrk script that POSTs ``body`` on every request and reports via ``done``."""
    return "\n".join(
        [
            f"MARKER = {_lua_string(MARKER)}",
            'wrk.method = "POST"',
            f"wrk.body = {_lua_string(body.decode())}",
            f'wrk.headers["Content-Type"] = {_lua_string(content_type)}',
            _DONE_HOOK,
        ]
    )


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    non_2xx: int
    client_cpu_s: float  # CPU wrk itself used: shows whether the client was the bottleneck
    output: str

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values()) + self.non_2xx

    def describe_errors(self) -> str:
        parts = [f"{k}={v}" for k, v in self.errors.items() if v]
        if self.non_2xx:
            parts.append(f"non-2xx/3xx={self.non_2xx}")
        return ", ".join(parts) or "none"


def parse_output(output: str, client_cpu_s: float) -> WrkResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{output}")
    data = json.loads(line[len(MARKER) :])
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
        errors={k: int(data[k]) for k in ("connect", "read", "write", "status", "timeout")},
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        client_cpu_s=client_cpu_s,
        output=output,
    )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str,
    script: Path,
    *,
    duration_s: int,
    connections: int,
    threads: int,
    cpu: int,
) -> WrkResult:
    """Run wrk pinned to ``cpu`` for ``duration_s`` whole seconds (wrk takes no fractions);
    the subprocess timeout bounds it even if wrk hangs."""
    argv = [
        "taskset",
        "-c",
        str(cpu),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = _children_cpu_s()
    started = time.monotonic()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"wrk exited {done.returncode} after {time.monotonic() - started:.1f}s:\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return parse_output(done.stdout, _children_cpu_s() - before)
