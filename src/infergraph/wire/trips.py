"""How often each wire limit has tripped in this process.

Plain counts, kept here so that code deep in a parser can count without knowing about
metrics; :mod:`infergraph.observability.metrics` exports them as the Prometheus counter
``infergraph_wire_limit_trips_total{limit="..."}``. The names are the
:class:`~infergraph.wire.limits.WireLimits` field that tripped (``http1.max_header_size``).
"""

from __future__ import annotations

__all__ = ["counts", "trip"]

_counts: dict[str, int] = {}


def trip(limit: str) -> None:
    """Count one refusal (a 4xx, a GOAWAY, a closed connection) because ``limit`` was hit."""
    _counts[limit] = _counts.get(limit, 0) + 1


def counts() -> dict[str, int]:
    """Each limit that has tripped, with how often."""
    return dict(_counts)
