"""A small, fast metrics registry owned by the application, rendered as Prometheus text.

There is no process-global registry: each server builds its own. Snapshots are
plain data, so the registries of several worker processes can be merged into one
exposition (counters and histograms add up; gauges keep one series per worker,
since every custom metric carries a ``worker_id`` label as in Seldon).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from infergraph.wire import trips

__all__ = [
    "EXECUTOR_BUCKETS",
    "TIMER_BUCKETS",
    "Histogram",
    "Registry",
    "merge_snapshots",
    "render",
]

EXECUTOR_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Seldon's TIMER buckets: 0, then 50 log-spaced edges from 1 ms to 30 s (+Inf implied)
TIMER_BUCKETS: tuple[float, ...] = (
    0.0,
    *(10 ** (-3 + i * (math.log10(30) + 3) / 49) for i in range(50)),
)

WIRE_TRIPS = "infergraph_wire_limit_trips"
WIRE_TRIPS_HELP = (
    "Requests, streams and connections refused because a wire limit tripped, by limit "
    "(docs/limits.md)"
)
Labels = tuple[tuple[str, str], ...]
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str) -> str:
    clean = _NAME_BAD.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def label_name(name: str) -> str:
    clean = _LABEL_BAD.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


class Histogram:
    """Cumulative-on-render histogram: one count per bucket, plus sum and count."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Registry:
    """Counters, gauges and histograms keyed by name and label pairs."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        self.help: dict[str, str] = {}
        self.counters: dict[tuple[str, Labels], float] = {}
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], Histogram] = {}
        self.live = True
        """This process's own registry: it carries the process's wire limit trips (a
        registry merged from several processes' snapshots has theirs already)."""

    def pull_process_counters(self) -> None:
        """Copy in the counts kept outside the registry: :mod:`infergraph.wire.trips`."""
        if not self.live:
            return
        for limit, count in trips.counts().items():
            key = (WIRE_TRIPS, (("limit", limit),))
            if key not in self.counters:
                self._declare(WIRE_TRIPS, "counter", WIRE_TRIPS_HELP)
            self.counters[key] = float(count)

    def _declare(self, name: str, kind: str, help_text: str) -> None:
        known = self.kinds.setdefault(name, kind)
        if known != kind:
            raise ValueError(f"metric {name!r} is a {known}, not a {kind}")
        if help_text:
            self.help.setdefault(name, help_text)

    def inc(self, name: str, labels: Labels, value: float = 1.0, help_text: str = "") -> None:
        key = (name, labels)
        if key not in self.counters:
            self._declare(name, "counter", help_text)
            self.counters[key] = 0.0
        self.counters[key] += value

    def set(self, name: str, labels: Labels, value: float, help_text: str = "") -> None:
        key = (name, labels)
        if key not in self.gauges:
            self._declare(name, "gauge", help_text)
        self.gauges[key] = value

    def histogram(
        self, name: str, labels: Labels, buckets: Sequence[float], help_text: str = ""
    ) -> Histogram:
        """The histogram child for these labels; keep it to observe without lookups."""
        key = (name, labels)
        child = self.histograms.get(key)
        if child is None:
            self._declare(name, "histogram", help_text)
            child = self.histograms[key] = Histogram(buckets)
        return child

    def share(self, name: str, labels: Labels, child: Histogram, help_text: str = "") -> None:
        """Expose ``child`` under another name and labels too: one observation, two series."""
        self._declare(name, "histogram", help_text)
        self.histograms.setdefault((name, labels), child)

    def observe(
        self, name: str, labels: Labels, value: float, buckets: Sequence[float], help_text: str = ""
    ) -> None:
        self.histogram(name, labels, buckets, help_text).observe(value)

    def snapshot(self) -> dict[str, Any]:
        """Plain data (JSON/msgpack-able) describing every series."""
        self.pull_process_counters()
        return {
            "kinds": self.kinds,
            "help": self.help,
            "counters": [[n, list(map(list, lb)), v] for (n, lb), v in self.counters.items()],
            "gauges": [[n, list(map(list, lb)), v] for (n, lb), v in self.gauges.items()],
            "histograms": [
                [n, list(map(list, lb)), list(h.buckets), list(h.counts), h.sum, h.count]
                for (n, lb), h in self.histograms.items()
            ],
        }


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> Registry:
    """Add up counters and histograms across workers; gauges are per worker already."""
    merged = Registry()
    merged.live = False
    for snap in snapshots:
        for name, kind in snap["kinds"].items():
            merged.kinds.setdefault(name, kind)
        for name, text in snap["help"].items():
            merged.help.setdefault(name, text)
        for name, labels, value in snap["counters"]:
            key = (name, tuple(tuple(p) for p in labels))
            merged.counters[key] = merged.counters.get(key, 0.0) + value
        for name, labels, value in snap["gauges"]:
            merged.gauges[(name, tuple(tuple(p) for p in labels))] = value
        for name, labels, buckets, counts, total, count in snap["histograms"]:
            key = (name, tuple(tuple(p) for p in labels))
            hist = merged.histograms.get(key)
            if hist is None or list(hist.buckets) != list(buckets):
                hist = merged.histograms[key] = Histogram(buckets)
            hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
            hist.sum += total
            hist.count += count
    return merged


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else f"{value:.1f}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    pairs = list(labels) + ([extra] if extra else [])
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs)
    return "{" + body + "}"


def render(registry: Registry) -> str:
    """Prometheus text exposition format 0.0.4."""
    registry.pull_process_counters()
    lines: list[str] = []
    by_name: dict[str, list[str]] = {}
    for (name, labels), value in sorted(registry.counters.items()):
        exposed = name if name.endswith("_total") else f"{name}_total"
        by_name.setdefault(name, []).append(f"{exposed}{_labels(labels)} {_fmt(value)}")
    for (name, labels), value in sorted(registry.gauges.items()):
        by_name.setdefault(name, []).append(f"{name}{_labels(labels)} {_fmt(value)}")
    for (name, labels), hist in sorted(registry.histograms.items(), key=lambda kv: kv[0]):
        series = by_name.setdefault(name, [])
        cumulative = 0
        for edge, count in zip((*hist.buckets, math.inf), hist.counts, strict=True):
            cumulative += count
            series.append(f"{name}_bucket{_labels(labels, ('le', _fmt(edge)))} {cumulative}")
        series.append(f"{name}_sum{_labels(labels)} {_fmt(hist.sum)}")
        series.append(f"{name}_count{_labels(labels)} {hist.count}")
    for name in sorted(by_name):
        kind = registry.kinds[name]
        family = f"{name}_total" if kind == "counter" and not name.endswith("_total") else name
        lines.append(f"# HELP {family} {registry.help.get(name, name)}")
        lines.append(f"# TYPE {family} {kind}")
        lines.extend(by_name[name])
    return "\n".join(lines) + "\n"
