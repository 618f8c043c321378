"""The orchestrator's own record of recent requests, and each node's calls over a recent window.

Prometheus answers "how is this node doing on average"; nobody could see what one request
did. This keeps, per deployment, the last ``capacity`` predictions (default 100): puid,
time, predictor, status, total time, and every node call in the order it started (node,
method, start offset, duration, status), plus the routing the executor chose. The shadow
predictor's run of the same puid is attached to the primary's record, with whether it
agreed. Beside it, each node keeps its last calls in a bounded window, from which the
dashboard computes requests per second, error rate and p50/p99.

The serving path pays little: per node call, one tuple appended to the request's list and
to the node's window; per request, one record built and one ordered-dict insert.
Everything is turned into JSON only when someone asks (:mod:`infergraph.runtime.dashboard`).
Recording is off when the executor holds ``None`` instead of a :class:`RecentRequests`.

A node in another process (``serve --processes``) reports no time of its own, so a hop's
duration is the call as the orchestrator saw it: the wire and the node together.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_CAPACITY",
    "WINDOW_CALLS",
    "WINDOW_S",
    "Call",
    "NodeWindow",
    "RecentRequests",
    "RequestRecord",
    "WindowSummary",
]

DEFAULT_CAPACITY = 100
"""Predictions kept (``--dashboard-requests``, INFERGRAPH_DASHBOARD_REQUESTS)."""
WINDOW_S = 60.0
"""The live figures of a node cover its calls of the last minute..."""
WINDOW_CALLS = 4096
"""...or its last 4096 calls, whichever is fewer."""

Call = tuple[str, str, float, float, str]
"""One node call: node, method (``/predict``...), start (``perf_counter``), seconds, status."""


@dataclass(slots=True)
class RequestRecord:
    """One prediction as the executor ran it."""

    puid: str
    predictor: str
    time: float
    """Wall-clock start (``time.time()``)."""
    started: float
    """``perf_counter()`` at the start: node calls' offsets are measured from it."""
    seconds: float
    status: str
    """``200``, or the HTTP status of the error it ended with."""
    calls: list[Call]
    routing: dict[str, int]
    """Node -> the child its router chose (-1 all, -2 none), as in ``meta.routing``."""
    shadow: RequestRecord | None = None
    """The shadow predictor's run of the same request, once it finished."""
    shadow_outcome: str = ""
    """``agree``, ``disagree`` or ``error``, once the shadow's answer was compared."""


@dataclass(frozen=True, slots=True)
class WindowSummary:
    calls: int
    rps: float
    error_rate: float
    p50_s: float | None
    p99_s: float | None


@dataclass(slots=True)
class NodeWindow:
    """A node's last calls (the same tuples as the requests'), bounded by :data:`WINDOW_CALLS`."""

    since: float = field(default_factory=time.perf_counter)
    calls: deque[Call] = field(default_factory=lambda: deque(maxlen=WINDOW_CALLS))

    def summary(self, now: float | None = None, window: float = WINDOW_S) -> WindowSummary:
        """The calls that ended in the last ``window`` seconds (at most the last 4096)."""
        now = time.perf_counter() if now is None else now
        recent = [c for c in list(self.calls) if now - (c[2] + c[3]) <= window]
        if not recent:
            return WindowSummary(0, 0.0, 0.0, None, None)
        span = min(window, max(now - self.since, 1e-3))
        if len(recent) == self.calls.maxlen:  # the window is full: it covers less time
            span = min(span, max(now - (recent[0][2] + recent[0][3]), 1e-3))
        failed = sum(1 for c in recent if c[4] != "200")
        durations = sorted(c[3] for c in recent)
        return WindowSummary(
            calls=len(recent),
            rps=len(recent) / span,
            error_rate=failed / len(recent),
            p50_s=_quantile(durations, 0.50),
            p99_s=_quantile(durations, 0.99),
        )


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values."""
    rank = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return ordered[rank]


class RecentRequests:
    """The last ``capacity`` predictions by puid, newest last, and every node's window."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"the dashboard keeps at least 1 request, not {capacity}")
        self.capacity = capacity
        self._records: OrderedDict[str, RequestRecord] = OrderedDict()
        self.windows: dict[tuple[str, str], NodeWindow] = {}
        """By (predictor, node)."""

    def window(self, predictor: str, node: str) -> NodeWindow:
        """The window of one node, made on first use; the executor keeps it."""
        key = (predictor, node)
        found = self.windows.get(key)
        if found is None:
            found = self.windows[key] = NodeWindow()
        return found

    def add(self, record: RequestRecord, shadow: bool = False) -> None:
        """Keep ``record``; a shadow's run is attached to its primary's (dropped if evicted)."""
        if shadow:
            primary = self._records.get(record.puid)
            if primary is not None:
                primary.shadow = record
            return
        records = self._records
        if record.puid in records:
            del records[record.puid]  # a client that reuses a puid: the latest wins
        records[record.puid] = record
        if len(records) > self.capacity:
            records.popitem(last=False)

    def shadow_outcome(self, puid: str, outcome: str) -> None:
        record = self._records.get(puid)
        if record is not None:
            record.shadow_outcome = outcome

    def get(self, puid: str) -> RequestRecord | None:
        return self._records.get(puid)

    def latest(self, limit: int) -> list[RequestRecord]:
        """The ``limit`` newest records, newest first."""
        out: list[RequestRecord] = []
        for record in reversed(self._records.values()):
            if len(out) >= limit:
                break
            out.append(record)
        return out

    def __len__(self) -> int:
        return len(self._records)
