"""What a server may send the orchestrator's gRPC client, checked against the bounds RFC 9113
sets on windows, settings and streams, and against the header limit the client advertises.

A node that breaks them (a bug, a proxy gone wrong, a peer that is not what the address
said) must not leave the client with a window it can never send in (a SETTINGS_MAX_FRAME_SIZE
of 0 would stall every call until its deadline), nor make it buffer more than it granted.
The shared frame reader (:class:`~infergraph.wire.http2.FrameReader`) already refuses a
frame larger than the SETTINGS_MAX_FRAME_SIZE we advertise (FRAME_SIZE_ERROR) and a header
block split over CONTINUATION frames past our limit; the rest is checked here.

Each check raises :class:`~infergraph.wire.http2.ProtocolError` with the code of the
connection error RFC 9113 names. The connection then sends GOAWAY with it, closes, and fails
its calls in flight with UNAVAILABLE, naming the server and what it broke: the node failed,
the graph's caller did nothing wrong. A stream-level breach (a WINDOW_UPDATE of 0 on a
stream) is treated as a connection error too, as RFC 9113 §5.4.1 allows: a peer that gets
flow control wrong once cannot be trusted with the other streams.
"""

from __future__ import annotations

from infergraph.wire import http2
from infergraph.wire.trips import trip

__all__ = [
    "HEADER_LIMIT",
    "check_header_block",
    "check_received",
    "check_settings",
    "check_stream",
    "counted",
    "grown",
    "shifted",
]

HEADER_LIMIT = "http2.max_header_list_size"
"""The trip a header block over the client's advertised limit counts."""

SMALLEST_FRAME_LIMIT = 16_384
LARGEST_FRAME_LIMIT = 2**24 - 1
"""The range RFC 9113 §6.5.2 allows SETTINGS_MAX_FRAME_SIZE."""


def check_settings(values: dict[int, int]) -> dict[int, int]:
    """A server's SETTINGS, once each value is one RFC 9113 §6.5.2 allows."""
    for key, value in values.items():
        if key == http2.INITIAL_WINDOW_SIZE and value > http2.MAX_WINDOW:
            raise http2.ProtocolError(
                f"SETTINGS_INITIAL_WINDOW_SIZE of {value} is over 2^31-1", http2.FLOW_CONTROL_ERROR
            )
        if key == http2.MAX_FRAME_SIZE and not SMALLEST_FRAME_LIMIT <= value <= LARGEST_FRAME_LIMIT:
            raise http2.ProtocolError(
                f"SETTINGS_MAX_FRAME_SIZE of {value} is outside 16384 to 2^24-1"
            )
        if key == http2.ENABLE_PUSH and value != 0:
            raise http2.ProtocolError(f"a server sent SETTINGS_ENABLE_PUSH of {value}")
    return values


def grown(window: int, increment: int, stream_id: int) -> int:
    """A send window once a WINDOW_UPDATE gave ``increment`` more."""
    if increment == 0:
        raise http2.ProtocolError(f"WINDOW_UPDATE of 0 on stream {stream_id}")
    return shifted(window, increment, stream_id)


def shifted(window: int, change: int, stream_id: int) -> int:
    """A send window moved by ``change`` (a WINDOW_UPDATE's increment, or the change of
    SETTINGS_INITIAL_WINDOW_SIZE, which may be negative): never past 2^31-1 (§6.9.2)."""
    window += change
    if window > http2.MAX_WINDOW:
        raise http2.ProtocolError(
            f"the send window of stream {stream_id} grew to {window}, over 2^31-1",
            http2.FLOW_CONTROL_ERROR,
        )
    return window


def check_received(held: int, size: int, granted: int, where: str) -> None:
    """DATA of ``size`` bytes (padding included) arrives while ``held`` bytes of ``granted``
    are not yet given back: a server may not send past the window we granted it."""
    if held + size > granted:
        raise http2.ProtocolError(
            f"DATA of {size} bytes {where} overruns the window granted ({granted - held} "
            f"of {granted} bytes left)",
            http2.FLOW_CONTROL_ERROR,
        )


def check_stream(stream_id: int, next_id: int, frame: str) -> None:
    """A ``frame`` (DATA, HEADERS) is on a stream the client opened: with push off a server
    opens none (even ids), and one the client has not opened yet is idle (RFC 9113 §5.1)."""
    if not stream_id & 1 or stream_id >= next_id:
        raise http2.ProtocolError(f"{frame} on stream {stream_id}, which the client never opened")


def check_header_block(block: bytes, limit: int) -> None:
    """A header block no larger, still compressed, than the SETTINGS_MAX_HEADER_LIST_SIZE we
    advertised (its decoded size is bounded as it is decoded)."""
    if len(block) > limit:
        raise http2.ProtocolError(
            f"header block of {len(block)} bytes (the limit is {limit}: "
            "INFERGRAPH_HTTP2_MAX_HEADER_LIST_SIZE)",
            http2.ENHANCE_YOUR_CALM,
        )


def counted(error: http2.ProtocolError) -> http2.ProtocolError:
    """``error``, once counted as a trip of the limit it names (the frame reader's), or of
    the header limit for the refusals that name none with ENHANCE_YOUR_CALM (the decoder's
    and :func:`check_header_block`'s)."""
    if error.limit:
        trip(error.limit)
    elif error.code == http2.ENHANCE_YOUR_CALM:
        trip(HEADER_LIMIT)
    return error
