"""Which worker processes have started: one mark per worker in the shared run folder.

A worker marks itself once it has loaded its model and listens on every port. The
supervisor reads the mark of a worker that exited to tell a failure at start from a death
while serving. The workers that listen from the start read the marks to answer ``/ready``
only once every worker has loaded: the kernel hands each probe to any of them, so a pod
must not turn ready while some still answer "loading" to the calls they are given.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["AllStarted", "forget", "has_started", "mark_started"]

_PREFIX = "ready-"


def _mark(run_dir: str | Path, pid: int) -> Path:
    return Path(run_dir) / f"{_PREFIX}{pid}"


def mark_started(run_dir: str | Path) -> None:
    """This worker has loaded and listens on every port."""
    _mark(run_dir, os.getpid()).touch()


def has_started(run_dir: str | Path, pids: Iterable[int]) -> bool:
    """Whether any of the workers ``pids`` has started (and not exited since)."""
    return any(_mark(run_dir, pid).exists() for pid in pids)


def forget(run_dir: str | Path, pid: int) -> bool:
    """Remove an exited worker's mark; whether it had started."""
    mark = _mark(run_dir, pid)
    started = mark.exists()
    mark.unlink(missing_ok=True)
    return started


class AllStarted:
    """True once ``workers`` workers have started; it stays true after (a worker that dies is
    replaced by one that listens only once loaded, so it never answers "loading")."""

    def __init__(self, run_dir: str | Path, workers: int) -> None:
        self.run_dir = Path(run_dir)
        self.workers = workers
        self._seen = False

    def __call__(self) -> bool:
        if not self._seen:
            started = sum(1 for p in self.run_dir.iterdir() if p.name.startswith(_PREFIX))
            self._seen = started >= self.workers
        return self._seen
