"""The pure half of ``infergraph logs NAME``: one stream of a graph's logs, in time order.

``logs`` fetches each container's log with ``timestamps=true``, so the kubelet prefixes every
line with its RFC 3339 time to the nanosecond (``2026-12-02T10:00:00.123456789Z message``).
:func:`merge` interleaves the streams by that time, so a request can be followed from the
orchestrator into each node, and :func:`labels` names each stream by node, not by pod.

Decisions:

- Python's ``datetime`` holds microseconds, so :attr:`LogLine.time` is the kubelet's time cut
  (never rounded) to the microsecond; cutting keeps each stream's order, and :func:`merge`
  still orders by the full nanoseconds it reads from the raw line.
- A line without a timestamp (the API server's own error text, a line the runtime split) is
  kept, with the time of the line before it in its stream, so it stays next to it; at the
  start of a stream it gets the earliest time. :func:`parse` alone returns None for it.
- Init containers are streams too, labelled ``<node>:init`` (a model-download init container
  under the node whose model it fetches), since a failed download is often the story.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infergraph.kube.pod_status import deployment_of, model_node, node_of

__all__ = ["EARLIEST", "LogLine", "format_line", "labels", "merge", "parse"]

EARLIEST = datetime.min.replace(tzinfo=UTC)
"""The time of untimestamped lines at the start of a stream."""
_STAMP = re.compile(
    r"(?P<second>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d\d:\d\d)(?: |$)"
)


@dataclass(frozen=True, order=True)
class LogLine:
    """One line of one stream."""

    time: datetime
    """The kubelet's timestamp (UTC), cut to the microsecond."""
    label: str
    """The node: its container name, plus ``/<pod suffix>`` when it runs in several pods."""
    text: str


def _stamp(raw: str) -> tuple[datetime, int, str] | None:
    """(time to the microsecond, the nanoseconds below it, text) of a timestamped line."""
    match = _STAMP.match(raw)
    if match is None:
        return None
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    try:
        second = datetime.fromisoformat(match["second"] + zone)
    except ValueError:  # 2026-13-45...: not a timestamp after all
        return None
    nanos = int((match["fraction"] or "").ljust(9, "0"))
    time = second.replace(microsecond=nanos // 1000).astimezone(UTC)
    return time, nanos % 1000, raw[match.end() :]


def _strip(raw: str) -> str:
    return raw.rstrip("\r\n")


def parse(label: str, raw: str) -> LogLine | None:
    """The line ``raw`` of stream ``label``; None when it has no timestamp (:func:`merge`
    keeps such lines, with the time of the line before)."""
    stamped = _stamp(_strip(raw))
    return None if stamped is None else LogLine(stamped[0], label, stamped[2])


_Keyed = tuple[tuple[datetime, int, int, int], LogLine]


def _stream(index: int, label: str, lines: Iterable[str]) -> Iterator[_Keyed]:
    """The stream's lines keyed by (time, nanoseconds, stream, line): ties keep label order,
    then line order."""
    time, nanos = EARLIEST, 0
    for number, raw in enumerate(lines):
        text = _strip(raw)
        stamped = _stamp(text)
        if stamped is not None:
            time, nanos, text = stamped
        elif not text.strip():
            continue  # an empty line with no time says nothing
        yield (time, nanos, index, number), LogLine(time, label, text)


def merge(streams: Mapping[str, Iterable[str]]) -> list[LogLine]:
    """The lines of every stream (label -> raw lines) interleaved by time. Each stream keeps
    its own order, the kubelet's, even where its times go backwards."""
    keyed = [_stream(i, label, lines) for i, (label, lines) in enumerate(streams.items())]
    return [line for _, line in heapq.merge(*keyed, key=lambda item: item[0])]


def _pod_suffix(pod: Mapping[str, Any]) -> str:
    """The pod's name after its Deployment's (``7d9c8b6f5-x2x7k``): what tells replicas apart."""
    name = _pod_name(pod)
    prefix = f"{deployment_of(pod)}-"
    return name.removeprefix(prefix) if name.startswith(prefix) and name != prefix else name


def _predictor(pod: Mapping[str, Any]) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get("infergraph.io/predictor") or deployment_of(pod))


def _streams(
    pods: list[dict[str, Any]], node: Callable[[dict[str, Any], str], str]
) -> list[tuple[dict[str, Any], str, str]]:
    """(pod, container, node label) of every container, init containers first."""
    out = []
    for pod in pods:
        spec = pod.get("spec") or {}
        main = [str(c.get("name")) for c in spec.get("containers") or ()]
        for init in spec.get("initContainers") or ():
            name = str(init.get("name"))
            out.append((pod, name, node(pod, model_node(name, main) or name) + ":init"))
        out += [(pod, name, node(pod, name)) for name in main]
    return out


def labels(
    pods: list[dict[str, Any]], node_of: Callable[[dict[str, Any], str], str] | None = None
) -> dict[tuple[str, str], str]:
    """(pod, container) -> the label of its stream: the node (``node_of(pod, container)``,
    by default the container's name, ``orchestrator`` for the orchestrator), with
    ``/<pod suffix>`` only when the node runs in more than one pod, and ``<predictor>.``
    before it only when several predictors have a node of that name (a canary). For an
    init container ``node_of`` gets the container it downloads for (else its own name) and
    the label ends in ``:init``."""
    streams = _streams(pods, node_of or _default_node)
    predictors_of: dict[str, set[str]] = defaultdict(set)
    for pod, _, label in streams:
        predictors_of[label].add(_predictor(pod))
    qualified = [
        (pod, container, f"{_predictor(pod)}.{label}" if len(predictors_of[label]) > 1 else label)
        for pod, container, label in streams
    ]
    pods_of: dict[str, set[str]] = defaultdict(set)
    for pod, _, label in qualified:
        pods_of[label].add(_pod_name(pod))
    return {
        (_pod_name(pod), container): (
            f"{label}/{_pod_suffix(pod)}" if len(pods_of[label]) > 1 else label
        )
        for pod, container, label in qualified
    }


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def _default_node(pod: dict[str, Any], container: str) -> str:
    return node_of(pod, container)


def format_line(line: LogLine, width: int) -> str:
    """``label | text``, the label padded to ``width`` so the texts line up (a longer label
    is kept whole: it names the stream)."""
    return f"{line.label:<{width}} | {line.text}"
