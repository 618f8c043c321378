"""The limits that bound what a peer can make a server hold or spend, with their defaults.

Each limit has a default here, an ``INFERGRAPH_*`` environment variable read by
:meth:`WireLimits.from_env` (through :mod:`infergraph.settings`, the only reader of the
environment), and counts in :mod:`infergraph.wire.trips` when it trips. The table in
``docs/limits.md`` lists them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Http1Limits", "Http2Limits", "WireLimits"]


def _number(env: Mapping[str, str], name: str, default: Any) -> Any:
    """``env[name]`` as the type of ``default``; a bad value is a ValueError naming it."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {kind.__name__}, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {raw!r}")
    return value


def _from_env(cls: Any, prefix: str, env: Mapping[str, str]) -> Any:
    """An instance of the dataclass ``cls`` with each field overridden by ``prefix + FIELD``."""
    values = {
        f.name: _number(env, prefix + f.name.upper(), f.default) for f in dataclasses.fields(cls)
    }
    return cls(**values)


@dataclass(frozen=True)
class Http1Limits:
    """HTTP/1.1 server limits (env ``INFERGRAPH_HTTP1_<FIELD>``, e.g.
    ``INFERGRAPH_HTTP1_MAX_HEADER_SIZE``)."""

    max_url_size: int = 8 * 1024
    """Longest request target, in bytes (414 past it)."""
    max_header_size: int = 64 * 1024
    """Most header bytes in one request, names and values together (431 past it)."""
    max_headers: int = 100
    """Most header fields in one request (431 past it)."""
    header_timeout: float = 30.0
    """Seconds a request's line and headers may take to arrive once its first byte has
    (slowloris); the connection is closed past it, with a 408. 0: no limit."""
    body_timeout: float = 30.0
    """Seconds a request body may go without a byte arriving; closed with a 408 past it.
    0: no limit."""
    keepalive_timeout: float = 75.0
    """Seconds an idle keep-alive connection stays open. 0: no limit."""
    max_connections: int = 10_000
    """Most open connections to one server; past it a new one is answered 503 and closed.
    0: no limit."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Http1Limits:
        return _from_env(cls, "INFERGRAPH_HTTP1_", env)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Http2Limits:
    """HTTP/2 limits, server and client (env ``INFERGRAPH_HTTP2_<FIELD>``)."""

    max_concurrent_streams: int = 1000
    """Streams a peer may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)."""
    max_header_list_size: int = 64 * 1024
    """Largest header block, decoded (SETTINGS_MAX_HEADER_LIST_SIZE), and as received: its
    HEADERS and CONTINUATION frames together; GOAWAY ENHANCE_YOUR_CALM past it."""
    max_continuations: int = 64
    """Most CONTINUATION frames one header block may take (a flood of empty ones costs
    work but no bytes); GOAWAY ENHANCE_YOUR_CALM past it."""
    max_control_frames: int = 10_000
    """Most frames a peer may send that ask work but carry no request (SETTINGS, PING,
    WINDOW_UPDATE, PRIORITY, RST_STREAM, empty DATA, refused HEADERS, unknown types)
    between two useful ones: a stream opened, a streaming request's message, a DATA frame
    we send. GOAWAY ENHANCE_YOUR_CALM past it (a PING or SETTINGS flood)."""
    max_resets: int = 1000
    """Most calls a peer may reset (RST_STREAM) before one of its calls completes: rapid
    reset (CVE-2023-44487). GOAWAY ENHANCE_YOUR_CALM past it."""
    max_pending_send: int = 64 * 1024 * 1024
    """Most answer bytes a connection holds for a peer that does not read them or does not
    open its flow-control window; past it a new answer fails with RESOURCE_EXHAUSTED (one
    answer alone is always taken, whatever its size). Room for a reading client's
    concurrent large answers: they wait on its window too."""
    max_connections: int = 10_000
    """Most open connections to one gRPC server; past it a new one gets GOAWAY
    ENHANCE_YOUR_CALM and is closed. 0: no limit."""
    idle_timeout: float = 300.0
    """Seconds a connection with no call in flight and none opened stays open; then GOAWAY
    NO_ERROR and close (clients open a new one for their next call). 0: no limit."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Http2Limits:
        return _from_env(cls, "INFERGRAPH_HTTP2_", env)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class WireLimits:
    """Every wire limit of a server process."""

    http1: Http1Limits = field(default_factory=Http1Limits)
    http2: Http2Limits = field(default_factory=Http2Limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WireLimits:
        return cls(http1=Http1Limits.from_env(env), http2=Http2Limits.from_env(env))
