"""What a peer may ask of an HTTP/2 connection without asking for work of its streams.

Each frame that costs us work but carries no request (a PING or SETTINGS we answer, a
WINDOW_UPDATE, PRIORITY or RST_STREAM we read, an empty DATA frame) spends one of
``max_control_frames``; a useful frame (a stream opened, a streaming request's message, a
DATA frame we send, which the peer's WINDOW_UPDATEs and PINGs follow) fills the budget
again. A connection past it is a flood and ends with GOAWAY ENHANCE_YOUR_CALM, as
nghttp2's and Envoy's do. Resets have a budget of their own (``max_resets``), filled by a
call we complete: opening streams to reset them at once (rapid reset, CVE-2023-44487) is
work for us that each opened stream would otherwise pay for.
"""

from __future__ import annotations

from infergraph.wire.http2 import frames as http2
from infergraph.wire.limits import Http2Limits

__all__ = ["FloodGuard"]


class FloodGuard:
    """The two budgets of a connection. Filling one is an assignment of its maximum (the
    connection does it inline where a call opens or completes: that is the hot path)."""

    __slots__ = ("control_left", "max_control", "max_resets", "resets_left")

    def __init__(self, limits: Http2Limits) -> None:
        self.max_control = limits.max_control_frames
        self.max_resets = limits.max_resets
        self.control_left = self.max_control
        self.resets_left = self.max_resets

    def control(self) -> None:
        """A frame that asks work but no call; raises ProtocolError past the budget."""
        self.control_left -= 1
        if self.control_left < 0:
            raise http2.ProtocolError(
                f"more than {self.max_control} frames without a call or data",
                http2.ENHANCE_YOUR_CALM,
                "http2.max_control_frames",
            )

    def useful(self) -> None:
        self.control_left = self.max_control

    def reset(self) -> None:
        """The peer reset a call of ours; raises ProtocolError past the budget."""
        self.resets_left -= 1
        if self.resets_left < 0:
            raise http2.ProtocolError(
                f"more than {self.max_resets} calls reset before one completed",
                http2.ENHANCE_YOUR_CALM,
                "http2.max_resets",
            )
