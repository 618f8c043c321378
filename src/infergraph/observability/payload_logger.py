"""Payload logging's sender: each logged payload as a CloudEvent over HTTP, off the request path.

Seldon's executor (``logger/worker.go``) puts each payload on a bounded queue that a pool
of workers sends, CloudEvents v1.0 in HTTP binary mode, to the node's ``logger.url`` or
the namespace's Knative broker. We do the same with asyncio tasks. The request path only
pays for ``put_nowait``: encoding and I/O happen in the workers, a full queue drops (and
counts) the entry instead of waiting, and no failure ever reaches the caller.

The sender knows nothing of the graph or its codecs: a payload is whatever
:meth:`PayloadSender.encode` turns into the body's bytes. The graph's payload logger
(:mod:`infergraph.runtime.payload_logger`) queues its messages and encodes them as Seldon
or V2 JSON there, in the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from infergraph.observability.metrics import Registry

__all__ = [
    "DEFAULT_ENDPOINT",
    "DROPPED",
    "FAILED",
    "SENT",
    "SKIP_HEADER",
    "PayloadSender",
    "logger_options",
]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://default-broker"
QUEUE_SIZE_ANNOTATION = "seldon.io/executor-logger-queue-size"
WRITE_TIMEOUT_ANNOTATION = "seldon.io/executor-logger-write-timeout-ms"
SKIP_HEADER = "seldon-skip-logging"
_SKIP_VALUES = frozenset({"true", "on", "1"})
_WARN_EVERY = 10.0  # seconds between two warnings about the same node

DROPPED = "infergraph_payload_log_dropped_total"
FAILED = "infergraph_payload_log_failed_total"
SENT = "infergraph_payload_log_sent_total"

# node, its logger URL (None: the default endpoint), CloudEvents type, payload, puid,
# submit time
_Entry = tuple[str, str | None, str, Any, str, float]


def _positive_int(value: str | None) -> int | None:
    if value is not None and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def logger_options(annotations: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Constructor keywords from the deployment's annotations and the process environment,
    as Seldon reads them; a missing or invalid value keeps the default."""
    options: dict[str, Any] = {}
    size = _positive_int(annotations.get(QUEUE_SIZE_ANNOTATION))
    if size is not None:
        options["queue_size"] = size
    write_ms = _positive_int(annotations.get(WRITE_TIMEOUT_ANNOTATION))
    if write_ms is not None:
        options["write_timeout"] = write_ms / 1000.0
    endpoint = environ.get("REQUEST_LOGGER_DEFAULT_ENDPOINT")
    if endpoint:
        options["default_endpoint"] = endpoint
    return options


def _new_id() -> str:
    return str(uuid.uuid4())


class PayloadSender:
    """Sends one predictor's payloads: :meth:`put` queues, workers encode and post.

    One instance per predictor, since ``Ce-Endpoint`` and the metric labels name it.
    ``start()`` must run inside the serving event loop; ``close()`` before it stops.
    Payloads are sent as :meth:`encode` makes them: bytes as they are, here; a subclass
    encodes what else it queues.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        deployment: str,
        predictor: str,
        namespace: str = "",
        protocol: str = "seldon",
        hostname: str | None = None,
        http_port: int = 8000,
        default_endpoint: str = DEFAULT_ENDPOINT,
        queue_size: int = 10000,
        workers: int = 4,
        timeout: float = 60.0,
        write_timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.registry = registry
        self.deployment = deployment
        self.predictor = predictor
        self.namespace = namespace
        self.protocol = protocol
        self.source = f"http://{hostname or socket.gethostname()}:{http_port}/"
        self.default_endpoint = default_endpoint
        self.workers = max(1, workers)
        self.timeout = httpx.Timeout(timeout, write=min(write_timeout, timeout))
        self.clock = clock
        self.new_id = new_id
        self._queue: asyncio.Queue[_Entry] = asyncio.Queue(maxsize=max(1, queue_size))
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        self._warned: dict[str, float] = {}

    # ---------------------------------------------------------------- request path

    def put(
        self,
        node: str,
        url: str | None,
        event: str,
        payload: Any,
        puid: str,
        headers: Mapping[str, str],
    ) -> None:
        """Queue one ``event`` payload of ``node`` for ``url`` (None: the default endpoint);
        never waits and never raises (a full queue drops it). A request whose ``headers``
        say ``seldon-skip-logging: true`` is not logged."""
        try:
            value = headers.get(SKIP_HEADER)
            if value is not None and value.strip().lower() in _SKIP_VALUES:
                return
            if self._closed:
                self._count(DROPPED, node, "shutdown")
                return
            self._queue.put_nowait((node, url, event, payload, puid, self.clock()))
        except asyncio.QueueFull:
            self._count(DROPPED, node, "queue_full")
        except Exception:  # a bug here must not fail the request being served
            log.exception("payload logger: could not queue a payload of node %r", node)

    def encode(self, payload: Any) -> bytes:
        """The body sent for ``payload`` (as ``application/json``), in a worker: bytes are
        sent as they are."""
        if isinstance(payload, bytes):
            return payload
        raise TypeError(f"a {type(payload).__name__} payload: only bytes can be sent")

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Create the HTTP client and spawn the workers (idempotent)."""
        if self._tasks or self._closed:
            return
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._tasks = [
            asyncio.create_task(self._work(), name=f"payload-logger-{self.predictor}-{i}")
            for i in range(self.workers)
        ]

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Send what is queued for up to ``drain_timeout`` s; drop (and count) the rest."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():
            node = self._queue.get_nowait()[0]
            self._queue.task_done()
            self._count(DROPPED, node, "shutdown")
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---------------------------------------------------------------- workers

    async def _work(self) -> None:
        while True:
            entry = await self._queue.get()
            try:
                await self._send(entry)
            except asyncio.CancelledError:  # close() gave up waiting for this one
                self._count(DROPPED, entry[0], "shutdown")
                raise
            except Exception as exc:  # the worker must outlive any one bad entry
                self._fail(entry[0], "error", f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    async def _send(self, entry: _Entry) -> None:
        node, url, event, payload, puid, when = entry
        try:
            body = self.encode(payload)
        except Exception as exc:
            self._fail(node, "encode", f"{type(exc).__name__}: {exc}")
            return
        url = url or self.default_endpoint
        headers = {
            "Ce-Specversion": "1.0",
            "Ce-Id": self.new_id(),
            "Ce-Type": event,
            "Ce-Source": self.source,
            "Ce-Time": _rfc3339(when),
            "Ce-Modelid": node,
            "Ce-Requestid": puid,
            "Ce-Inferenceservicename": self.deployment,
            "Ce-Namespace": self.namespace,
            "Ce-Endpoint": self.predictor,
            "Ce-Protocol": self.protocol,
            "Content-Type": "application/json",
        }
        assert self._client is not None  # workers only run between start() and close()
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            self._fail(node, "timeout", f"{url}: {type(exc).__name__}")
            return
        except httpx.ConnectError as exc:
            self._fail(node, "connect", f"{url}: {exc}")
            return
        except httpx.HTTPError as exc:
            self._fail(node, "error", f"{url}: {type(exc).__name__}: {exc}")
            return
        if 200 <= response.status_code < 300:
            self._count(SENT, node)
        else:
            self._fail(node, f"http_{response.status_code}", f"{url} answered it")

    # ---------------------------------------------------------------- accounting

    def _count(self, name: str, node: str, reason: str | None = None) -> None:
        labels = [
            ("deployment_name", self.deployment),
            ("predictor_name", self.predictor),
            ("node", node),
        ]
        if reason is not None:
            labels.append(("reason", reason))
        self.registry.inc(name, tuple(labels), help_text=_HELP[name])

    def _fail(self, node: str, reason: str, detail: str) -> None:
        """Count a failed send; warn at most once per node every 10 s so a dead sink
        under load cannot flood the logs."""
        self._count(FAILED, node, reason)
        now = time.monotonic()
        last = self._warned.get(node)
        if last is None or now - last >= _WARN_EVERY:
            self._warned[node] = now
            log.warning("payload logger: node %r: send failed (%s): %s", node, reason, detail)


_HELP = {
    DROPPED: "Payload log entries dropped before sending (queue full or shutdown)",
    FAILED: "Payload log entries the logger endpoint did not accept",
    SENT: "Payload log entries the logger endpoint accepted",
}


def _rfc3339(when: float) -> str:
    """``2024-05-01T12:00:00.123456Z``: CloudEvents' ``time`` format, in UTC."""
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")
