"""The I/O half of ``infergraph logs NAME``: fetch every container's log and merge it.

Each container of each pod of the deployment is read with ``timestamps=true`` and labelled by
node (:func:`~infergraph.kube.log_merge.labels`); the streams are merged by time. With
``follow``, one thread per container keeps its stream open and a short hold (a fraction of a
second) lets lines that arrive close together come out in time order.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infergraph.kube.api import Api, ApiError
from infergraph.kube.log_merge import LogLine, labels, merge, parse

__all__ = ["LogRequest", "follow", "node_of_label", "parse_since", "read", "streams"]

_SINCE = re.compile(r"(\d+)(s|m|h|d)\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
HOLD_S = 0.3


def parse_since(text: str) -> int:
    """``30s``, ``10m``, ``2h``, ``1d`` as seconds; ValueError naming the accepted forms."""
    match = _SINCE.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"--since {text!r}: give a duration like 30s, 10m, 2h or 1d")
    return int(match[1]) * _UNIT[match[2]]


def node_of_label(label: str) -> str:
    """The node a stream label names: ``canary.model/5c7d-x`` and ``model:init`` -> ``model``."""
    node = label.split("/", 1)[0].removesuffix(":init")
    return node.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class LogRequest:
    """Which logs, as the command line asked."""

    node: str | None = None
    predictor: str | None = None
    since_seconds: int | None = None
    tail: int | None = None


def streams(pods: list[dict[str, Any]], want: LogRequest) -> dict[tuple[str, str], str]:
    """(pod, container) -> label of every stream ``want`` selects."""
    if want.predictor:
        pods = [
            p
            for p in pods
            if (p.get("metadata", {}).get("labels") or {}).get("infergraph.io/predictor")
            == want.predictor
        ]
    named = labels(pods)
    if want.node:
        named = {key: label for key, label in named.items() if node_of_label(label) == want.node}
    return named


def _params(container: str, want: LogRequest, follow: bool = False) -> dict[str, str]:
    params = {"container": container, "timestamps": "true"}
    if want.since_seconds:
        params["sinceSeconds"] = str(want.since_seconds)
    if want.tail is not None:
        params["tailLines"] = str(want.tail)
    if follow:
        params["follow"] = "true"
    return params


def read(
    api: Api, namespace: str, selected: Mapping[tuple[str, str], str], want: LogRequest
) -> tuple[list[LogLine], list[str]]:
    """Every selected stream's log so far, merged; and a note per stream that had none."""
    texts: dict[str, list[str]] = {}
    notes = []
    for (pod, container), label in selected.items():
        try:
            texts[label] = api.logs(namespace, pod, _params(container, want)).splitlines()
        except ApiError as exc:
            notes.append(f"{label}: no log ({exc})")
    return merge(texts), notes


def follow(
    api: Api,
    namespace: str,
    selected: Mapping[tuple[str, str], str],
    want: LogRequest,
    emit: Callable[[LogLine], None],
    note: Callable[[str], None],
    stop: threading.Event | None = None,
) -> None:
    """Stream every selected log until all streams end or ``stop`` is set."""
    stop = stop or threading.Event()
    lines: queue.Queue[LogLine | None] = queue.Queue()

    def pump(pod: str, container: str, label: str) -> None:
        try:
            for raw in api.stream_logs(namespace, pod, _params(container, want, follow=True)):
                if stop.is_set():
                    break
                line = parse(label, raw)
                lines.put(line if line is not None else LogLine(_now(), label, raw))
        except ApiError as exc:
            note(f"{label}: {exc}")
        finally:
            lines.put(None)

    threads = [
        threading.Thread(target=pump, args=(pod, container, label), daemon=True)
        for (pod, container), label in selected.items()
    ]
    for thread in threads:
        thread.start()
    for line in _ordered(lines, len(threads), stop):
        emit(line)


def _now() -> datetime:
    return datetime.now(UTC)


def _ordered(
    lines: queue.Queue[LogLine | None], streams: int, stop: threading.Event
) -> Iterator[LogLine]:
    """Lines as they come, held ``HOLD_S`` so near neighbours leave in time order."""
    held: list[tuple[float, LogLine]] = []
    open_ = streams
    while (open_ or held) and not stop.is_set():
        try:
            item = lines.get(timeout=HOLD_S / 3)
            if item is None:
                open_ -= 1
            else:
                held.append((time.monotonic(), item))
        except queue.Empty:
            pass
        now = time.monotonic()
        due = [entry for entry in held if now - entry[0] >= HOLD_S or not open_]
        if due:
            held = [entry for entry in held if entry not in due]
            yield from sorted((line for _, line in due), key=lambda line: line.time)
