"""Start servers pinned to one core, and account the CPU their whole process tree burns.

CPU is read from ``/proc/<pid>/stat`` rather than from ``resource``: the servers are not
our direct children only (gunicorn and multiprocessing fork workers), so the only honest
figure is utime+stime summed over every live process in the server's tree, plus the
cutime+cstime those processes have collected from children they already reaped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    start_ticks: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5); offsets below are field number - 3.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        start_ticks=int(fields[19]),
        cpu_ticks=utime + stime + cutime + cstime,
    )


def all_processes() -> dict[int, ProcStat]:
    stats: dict[int, ProcStat] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = read_stat(int(entry.name))
            if st is not None:
                stats[st.pid] = st
    return stats


def _subtree(stats: dict[int, ProcStat], root: int) -> list[ProcStat]:
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(stats[pid])
        todo.extend(children.get(pid, []))
    return tree


def process_tree(root: int) -> list[ProcStat]:
    """All live processes descending from ``root`` (inclusive)."""
    return _subtree(all_processes(), root)


KTHREADD = 2  # parent of all kernel threads


def foreign_snapshot(ours: int) -> dict[tuple[int, int], int]:
    """CPU ticks of every user process outside the tree rooted at ``ours``.

    The difference of two snapshots is how much CPU *other* work (another benchmark, a
    test suite, a build) took while we measured. It is machine-wide, not per core, on
    purpose: a starved load generator idles the server as surely as a shared server core
    slows it. Kernel threads are left out, since they mostly do our own packet work.
    Processes are keyed by (pid, start time) so a reused pid is not mistaken for the old one.
    """
    stats = all_processes()
    mine = {st.pid for st in _subtree(stats, ours)}
    return {
        (st.pid, st.start_ticks): st.cpu_ticks
        for st in stats.values()
        if st.pid not in mine and st.pid != KTHREADD and st.ppid != KTHREADD
    }


def foreign_cpu_seconds(
    before: dict[tuple[int, int], int], after: dict[tuple[int, int], int]
) -> float:
    """CPU seconds others used between two snapshots (new processes count in full)."""
    return sum(ticks - before.get(key, 0) for key, ticks in after.items()) / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    """Cumulative CPU seconds of the process tree rooted at ``root``."""
    return sum(st.cpu_ticks for st in process_tree(root)) / CLK_TCK


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process started in its own session, so its whole group can be killed."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    _seen: dict[int, int] = field(default_factory=dict)  # pid -> start ticks

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def remember_tree(self) -> None:
        """Note every descendant, so stragglers that left the group can still be killed."""
        for st in process_tree(self.pid):
            self._seen[st.pid] = st.start_ticks

    def cpu_seconds(self) -> float:
        self.remember_tree()
        return tree_cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it."""
        if self.alive():
            self.remember_tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pid, start in self._seen.items():
            st = read_stat(pid)
            if st is not None and st.start_ticks == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def start_server(
    name: str,
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    cpu: int,
    log_path: Path,
) -> Server:
    """Start ``argv`` under ``taskset -c cpu``; output goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name=name, proc=proc, log_path=log_path)


def core_idle_seconds(cpu: int) -> float:
    """Cumulative idle+iowait time of one core, from /proc/stat: if the server's core sat
    idle during a run, the server was not the bottleneck."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name == f"cpu{cpu}":
            return (int(values[3]) + int(values[4])) / CLK_TCK
    raise ValueError(f"cpu{cpu} not in /proc/stat")
