"""What infergraph's HTTP/1.1 server answers when a client breaks a limit or the protocol.

The server (:mod:`infergraph.wire.http1.server`) refuses a request before the app sees
it when the request itself is the problem: a request target, header block or header count
over its :class:`~infergraph.wire.limits.Http1Limits` cap, a head or body that stops
arriving, one connection too many, bytes that are not HTTP. Each refusal is a complete
answer with ``connection: close`` and a one-line plain-text body that names what was wrong
and the setting that changes it, so that whoever reads it (a ``curl`` user, a client's log)
knows what to do; each one that a limit caused counts in :mod:`infergraph.wire.trips`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from http import HTTPStatus
from typing import Any

from infergraph.wire.limits import Http1Limits
from infergraph.wire.trips import trip

__all__ = [
    "BETWEEN",
    "BODY",
    "CONTINUE",
    "HEAD",
    "ConnectionGuard",
    "answer",
    "bad_target",
    "body_timed_out",
    "head_timed_out",
    "head_too_large",
    "malformed",
    "server_error",
    "too_many_connections",
    "too_many_headers",
    "trailers_too_large",
    "url_too_long",
]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_ENV = "INFERGRAPH_HTTP1_"


def answer(status: int, message: str) -> bytes:
    """A whole ``status`` answer that closes the connection, ``message`` its text body."""
    body = message.encode("utf-8", "replace") + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s"
        % (status, HTTPStatus(status).phrase.encode(), len(body), body)
    )


def _refused(field: str, status: int, message: str) -> bytes:
    trip("http1." + field)
    return answer(status, f"{message} ({_ENV}{field.upper()})")


def url_too_long(limits: Http1Limits) -> bytes:
    return _refused("max_url_size", 414, f"request target exceeds {limits.max_url_size} bytes")


def head_too_large(limits: Http1Limits) -> bytes:
    return _refused(
        "max_header_size", 431, f"request headers exceed {limits.max_header_size} bytes"
    )


def trailers_too_large(limits: Http1Limits) -> bytes:
    return _refused(
        "max_header_size",
        431,
        f"request trailers or chunk framing exceed {limits.max_header_size} bytes",
    )


def too_many_headers(limits: Http1Limits) -> bytes:
    return _refused("max_headers", 431, f"request has more than {limits.max_headers} header fields")


def head_timed_out(limits: Http1Limits) -> bytes:
    return _refused(
        "header_timeout",
        408,
        f"request line and headers did not arrive within {limits.header_timeout:g} s",
    )


def body_timed_out(limits: Http1Limits) -> bytes:
    return _refused(
        "body_timeout", 408, f"request body: no byte arrived for {limits.body_timeout:g} s"
    )


def too_many_connections(limits: Http1Limits) -> bytes:
    return _refused(
        "max_connections",
        503,
        f"server already has {limits.max_connections} open connections; retry later",
    )


def malformed(reason: str) -> bytes:
    """A 400 for bytes the parser refused (a bad request line, request smuggling's
    Content-Length with Transfer-Encoding or a second Content-Length)."""
    return answer(400, f"malformed HTTP/1.1 request: {reason}")


def bad_target(reason: str) -> bytes:
    return answer(400, f"invalid request target: {reason}")


def server_error() -> bytes:
    return answer(500, "the server failed to answer this request; see its log")


# Where a connection's parser is, as of the last byte fed: between requests, in a
# request's line and headers, or in its body.
BETWEEN, HEAD, BODY = 0, 1, 2

_LINGER, _LINGER_MAX = 2.0, 30.0
"""After its last answer a refused connection goes on reading (and dropping) what the
client still sends, until it has sent nothing for _LINGER seconds (or for _LINGER_MAX in
all): closing with unread bytes would reset the connection, and a client still sending a
refused body (as blocking clients do before they read) would see the reset, not the answer."""


class ConnectionGuard(asyncio.Protocol):
    """The part of a server connection that refuses and times out: what it owes (answers
    queued or being written) comes before a refusal, and one timer serves every timeout.
    The connection keeps ``phase``, ``head_since`` and ``body_at`` up to date as it parses
    and calls :meth:`_idle` when it has nothing in progress and nothing owed."""

    # slots: a connection's attributes are read several times per request
    __slots__ = (
        "body_at",
        "closing",
        "dropped",
        "head_since",
        "idle_since",
        "limits",
        "loop",
        "paused",
        "phase",
        "queue",
        "refusal",
        "stopped",
        "timer",
        "timer_at",
        "transport",
        "worker",
    )

    def __init__(self, limits: Http1Limits) -> None:
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()  # connections are made by the loop's server
        self.queue: deque[Any] = deque()  # requests read, not yet answered
        self.worker: asyncio.Task[None] | None = None  # answers them, in order
        self.closing = False
        self.phase = BETWEEN
        self.head_since = self.body_at = self.idle_since = 0.0
        self.stopped = False  # a refusal stopped the parser: what arrives now is dropped
        self.dropped = 0  # bytes, since
        self.refusal: bytes | None = None  # written once the requests before it are answered
        self.paused = False  # reading paused: the client is ahead of the answers
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    def _refuse(self, answer: bytes) -> None:
        """Stop reading and answer ``answer`` once the requests before it are answered."""
        self.stopped = True
        if self.refusal is not None or self.closing:
            return
        self.refusal = answer
        if self.worker is None or self.worker.done():
            self._linger(answer)
        # else _serve_queue writes it after the answers it owes

    def _linger(self, answer: bytes) -> None:
        """Write ``answer``, the last thing this connection says, and close it once the
        client has read it (its end closes) or has stopped sending (_LINGER)."""
        transport, loop = self.transport, self.loop
        self.closing = True
        if transport is None or transport.is_closing():
            return
        if answer:
            transport.write(answer)
        if self.timer is not None:
            self.timer.cancel()
        if transport.can_write_eof():
            transport.write_eof()
        if self.paused:
            transport.resume_reading()
        self.timer = loop.call_later(_LINGER, self._lingered, 0, loop.time() + _LINGER_MAX)

    def _lingered(self, dropped: int, until: float) -> None:
        transport, loop = self.transport, self.loop
        if transport is None or transport.is_closing():
            return
        if self.dropped != dropped and loop.time() < until:  # still sending
            self.timer = loop.call_later(_LINGER, self._lingered, self.dropped, until)
        else:
            transport.close()

    def _idle(self) -> None:
        """Nothing is owed or in progress: the keep-alive timeout runs from now."""
        self.idle_since = now = self.loop.time()
        if self.limits.keepalive_timeout:
            self._arm(now + self.limits.keepalive_timeout)

    def _arm(self, deadline: float) -> None:
        """Have _watch run by ``deadline``. One timer serves every timeout of a connection;
        a later deadline leaves it as it is (_watch re-arms it), so that a keep-alive
        connection re-arms it once per timeout, not once per request or chunk."""
        if self.timer is not None:
            if self.timer_at <= deadline:
                return
            self.timer.cancel()
        self.timer = self.loop.call_at(deadline, self._watch)
        self.timer_at = deadline

    def _watch(self) -> None:
        self.timer = None
        if self.closing or self.stopped:
            return
        limits, phase, now = self.limits, self.phase, self.loop.time()
        if self.paused:  # we stopped reading: the client is not the one late
            self.head_since = self.body_at = now
            if phase:
                self._arm(now + (limits.header_timeout or limits.body_timeout or 1.0))
            return
        if phase == HEAD and limits.header_timeout:
            deadline, refusal = self.head_since + limits.header_timeout, head_timed_out
        elif phase == BODY and limits.body_timeout:
            deadline, refusal = self.body_at + limits.body_timeout, body_timed_out
        elif phase or self.queue or (self.worker is not None and not self.worker.done()):
            return  # a request with no timeout, or answers owed: _idle arms it again
        elif limits.keepalive_timeout:
            deadline = self.idle_since + limits.keepalive_timeout
            if now >= deadline:
                trip("http1.keepalive_timeout")
                self.closing = True
                if self.transport is not None:
                    self.transport.close()
                return
            self._arm(deadline)
            return
        else:
            return
        if now >= deadline:
            self._refuse(refusal(limits))
        else:
            self._arm(deadline)
