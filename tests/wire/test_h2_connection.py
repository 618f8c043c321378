"""The HTTP/2 state machine both infergraph ends share, against the ``h2`` library as an
independent peer, frame by frame and with no sockets: each step hands one side's bytes to
the other, and after each the two agree on what RFC 9113 says they must (each direction's
window, the settings each advertised, which streams are open), and each side saw the
events the other's frames mean. Run as a client against h2's server and as a server
against h2's client."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from infergraph.wire import http2
from infergraph.wire.limits import Http2Limits

KiB = 1024


class Ours(http2.H2Connection):
    """The state machine with its bytes out collected and its events recorded."""

    def __init__(self, client: bool, limits: Http2Limits | None = None) -> None:
        limits = limits or Http2Limits()
        self._start(client=client, limits=limits, max_streams=None if client else 100)
        self.out = bytearray()
        self.events: list[tuple[Any, ...]] = []

    def _reading(self) -> bool:
        return True

    def _write(self, data: bytes) -> None:
        self.out += data

    def _write_parts(self, parts: list[bytes | memoryview]) -> None:
        for part in parts:
            self.out += part

    def take(self) -> bytes:
        out, self.out = bytes(self.out), bytearray()
        return out

    def _on_stream_open(self, stream: http2.H2Stream, headers: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("open", stream.id, dict(headers), stream.received))

    def _on_stream_headers(
        self, stream: http2.H2Stream, headers: list[tuple[bytes, bytes]], end: bool
    ) -> None:
        self.events.append(("headers", stream.id, dict(headers), end))

    def _on_stream_data(
        self, stream: http2.H2Stream, payload: bytes | memoryview, size: int, end: bool
    ) -> None:
        self.events.append(("data", stream.id, bytes(payload), end))
        self.consumed(stream, size)

    def _on_stream_reset(self, stream: http2.H2Stream, code: int, remote: bool) -> None:
        self.events.append(("reset", stream.id, code, remote))

    def _on_stream_closed(self, stream: http2.H2Stream) -> None:
        self.events.append(("closed", stream.id))

    def _on_stream_drained(self, stream: http2.H2Stream) -> None:
        self.events.append(("drained", stream.id))

    def _on_peer_goaway(self, last_stream: int, code: int) -> None:
        self.events.append(("goaway", last_stream, code))

    def pop_events(self) -> list[tuple[Any, ...]]:
        events, self.events = self.events, []
        return events

    def data(self, stream_id: int) -> bytes:
        return b"".join(e[2] for e in self.events if e[0] == "data" and e[1] == stream_id)


def h2_peer(client_side: bool) -> h2.connection.H2Connection:
    config = h2.config.H2Configuration(client_side=client_side, header_encoding=None)
    peer = h2.connection.H2Connection(config=config)
    peer.initiate_connection()
    return peer


class Pair:
    """Ours and h2's, joined by :meth:`exchange`."""

    def __init__(self, ours_is_client: bool, limits: Http2Limits | None = None) -> None:
        self.ours = Ours(ours_is_client, limits)
        self.peer = h2_peer(not ours_is_client)
        self.peer_events: list[Any] = []
        self.ours.initiate({})
        self.exchange()

    def exchange(self) -> None:
        """Carry bytes both ways until neither side has any to send."""
        for _ in range(100):
            to_peer, to_ours = self.ours.take(), self.peer.data_to_send()
            if not to_peer and not to_ours:
                return
            if to_peer:
                self.peer_events += self.peer.receive_data(to_peer)
            if to_ours:
                self.ours.read(to_ours)
        raise AssertionError("the two sides kept talking")

    def peer_saw(self, kind: type) -> list[Any]:
        return [e for e in self.peer_events if isinstance(e, kind)]

    def assert_windows_agree(self, stream_id: int | None = None) -> None:
        """What each side may send is what the other may receive (RFC 9113 §6.9)."""
        ours, peer = self.ours, self.peer
        assert ours.send_window == peer.inbound_flow_control_window
        assert ours.connection_window - ours.unacked == peer.outbound_flow_control_window
        stream = ours.streams.get(stream_id) if stream_id else None
        if stream is not None:
            peer_stream = peer.streams[stream_id]
            assert stream.send_window == peer_stream.inbound_flow_control_window
            if not stream.received:
                assert stream.recv_window == peer_stream.outbound_flow_control_window


REQUEST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/x.Y/Z")]
REQUEST += [(b":authority", b"test"), (b"content-type", b"application/grpc")]
ANSWER = [(b":status", b"200"), (b"content-type", b"application/grpc")]


def test_the_handshake_agrees_on_each_side_s_settings() -> None:
    for ours_is_client in (True, False):
        pair = Pair(ours_is_client)
        ours, peer = pair.ours, pair.peer
        assert pair.peer_saw(h2.events.RemoteSettingsChanged)
        assert pair.peer_saw(h2.events.SettingsAcknowledged)  # ours acknowledged h2's
        remote = peer.remote_settings
        assert remote.initial_window_size == ours.stream_window
        assert remote.max_frame_size == ours.frame_limit
        assert remote.max_header_list_size == ours.header_limit
        assert remote.enable_push == 0
        if not ours_is_client:
            assert remote.max_concurrent_streams == 100
        assert ours.peer_initial_window == peer.local_settings.initial_window_size
        assert ours.peer_frame_size == peer.local_settings.max_frame_size
        pair.assert_windows_agree()


def test_a_call_from_ours_to_h2_s_server() -> None:
    pair = Pair(ours_is_client=True)
    ours, peer = pair.ours, pair.peer
    stream = http2.H2Stream(ours.take_stream_id(), ours.peer_initial_window, ours.stream_window)
    ours.open_stream(stream)
    ours.send(stream, http2.encode_headers(REQUEST), (b"\x00\x00\x00\x00\x02", b"hi"), end=True)
    pair.exchange()
    received = pair.peer_saw(h2.events.RequestReceived)
    assert [dict(e.headers)[b":path"] for e in received] == [b"/x.Y/Z"]
    assert b"".join(e.data for e in pair.peer_saw(h2.events.DataReceived)) == b"\0\0\0\0\x02hi"
    assert pair.peer_saw(h2.events.StreamEnded)
    assert stream.closed and not stream.received
    pair.assert_windows_agree(1)

    peer.send_headers(1, ANSWER)
    peer.send_data(1, b"\x00\x00\x00\x00\x02ok")
    peer.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    pair.exchange()
    assert ours.pop_events() == [
        ("headers", 1, dict(ANSWER), False),
        ("data", 1, b"\0\0\0\0\x02ok", False),
        ("headers", 1, {b"grpc-status": b"0"}, True),
        ("closed", 1),
    ]
    assert not ours.streams


def test_a_call_from_h2_s_client_to_ours() -> None:
    pair = Pair(ours_is_client=False)
    ours, peer = pair.ours, pair.peer
    peer.send_headers(1, REQUEST)
    peer.send_data(1, b"\x00\x00\x00\x00\x02hi", end_stream=True)
    pair.exchange()
    assert ours.pop_events() == [
        ("open", 1, dict(REQUEST), False),
        ("data", 1, b"\0\0\0\0\x02hi", True),
    ]
    stream = ours.streams[1]
    ours.send(
        stream, http2.encode_headers(ANSWER), (b"\0\0\0\0\x02ok",), b"\x40\x0bgrpc-status\x010"
    )
    pair.exchange()
    assert pair.peer_saw(h2.events.ResponseReceived)
    assert b"".join(e.data for e in pair.peer_saw(h2.events.DataReceived)) == b"\0\0\0\0\x02ok"
    (trailers,) = pair.peer_saw(h2.events.TrailersReceived)
    assert dict(trailers.headers) == {b"grpc-status": b"0"}
    assert pair.peer_saw(h2.events.StreamEnded)
    assert ours.pop_events() == [("closed", 1)]


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["client", "server"])
def test_a_long_body_waits_for_the_peer_s_window_and_arrives_whole(ours_is_client: bool) -> None:
    """h2's windows are RFC 9113's defaults (64 KiB less one) and its frames 16 KiB: our
    send queue cuts frames to the peer's size, stops at its window, and goes on as h2 gives
    the window back, the bytes intact and in order; the trailers come last."""
    pair = Pair(ours_is_client)
    ours, peer = pair.ours, pair.peer
    body = bytes(range(256)) * (1000 * KiB // 256)
    if ours_is_client:
        stream = http2.H2Stream(ours.take_stream_id(), ours.peer_initial_window, ours.stream_window)
        ours.open_stream(stream)
        ours.send(
            stream, http2.encode_headers(REQUEST), (body[:10], memoryview(body)[10:]), end=True
        )
    else:
        peer.send_headers(1, REQUEST, end_stream=True)
        pair.exchange()
        stream = ours.streams[1]
        ours.send(
            stream,
            http2.encode_headers(ANSWER),
            (body,),
            http2.encode_headers([(b"grpc-status", b"0")]),
        )
    got = bytearray()
    rounds = 0
    while True:
        to_peer = ours.take()
        events = peer.receive_data(to_peer)
        pair.peer_events += events
        sizes = [len(e.data) for e in events if isinstance(e, h2.events.DataReceived)]
        assert all(size <= peer.local_settings.max_frame_size for size in sizes)
        pair.assert_windows_agree(1)  # nothing in flight either way
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                got += event.data
                peer.acknowledge_received_data(event.flow_controlled_length, 1)
        assert ours.held == len(body) - len(got)
        if not sizes:
            break
        ours.read(peer.data_to_send())  # the WINDOW_UPDATEs: the queue goes on
        rounds += 1
    assert bytes(got) == body
    assert rounds > len(body) // 65_535  # it waited on the window, more than once
    assert pair.peer_saw(h2.events.StreamEnded)
    assert not ours.waiting and ours.held == 0
    if not ours_is_client:
        assert pair.peer_saw(h2.events.TrailersReceived)
        assert ours.events[-1] == ("closed", 1)  # both sides ended: it left the table


def test_a_settings_change_of_the_initial_window_moves_open_streams_windows() -> None:
    pair = Pair(ours_is_client=True)
    ours, peer = pair.ours, pair.peer
    stream = http2.H2Stream(ours.take_stream_id(), ours.peer_initial_window, ours.stream_window)
    ours.open_stream(stream)
    ours.send(stream, http2.encode_headers(REQUEST), (bytes(100 * KiB),), end=True)
    pair.exchange()
    assert stream.queue  # waiting on the window
    peer.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 200 * KiB})
    pair.exchange()  # the stream's window grew by the difference: the rest went
    pair.assert_windows_agree(1)
    assert not stream.queue or ours.send_window == 0  # what is left waits on the connection
    peer.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1})
    pair.exchange()
    pair.assert_windows_agree(1)


def test_padded_data_counts_in_the_window_and_is_given_back() -> None:
    pair = Pair(ours_is_client=True)
    ours, peer = pair.ours, pair.peer
    stream = http2.H2Stream(ours.take_stream_id(), ours.peer_initial_window, ours.stream_window)
    ours.open_stream(stream)
    ours.send(stream, http2.encode_headers(REQUEST), (b"x",), end=True)
    pair.exchange()
    peer.send_headers(1, ANSWER)
    for _ in range(10):
        peer.send_data(1, bytes(100 * KiB), pad_length=255)
        pair.exchange()
        pair.assert_windows_agree(1)
    assert len(ours.data(1)) == 1000 * KiB  # the padding is not data


def test_long_trailers_go_in_continuation_frames_h2_puts_together() -> None:
    pair = Pair(ours_is_client=False)
    ours, peer = pair.ours, pair.peer
    peer.send_headers(1, REQUEST, end_stream=True)
    pair.exchange()
    value = b"v" * (40 * KiB)  # over h2's 16 KiB frames
    block = http2.encode_headers([(b"grpc-status", b"13"), (b"grpc-message", value)])
    ours.send(ours.streams[1], http2.encode_headers(ANSWER), trailers=block)
    pair.exchange()
    (trailers,) = pair.peer_saw(h2.events.TrailersReceived)
    assert dict(trailers.headers)[b"grpc-message"] == value


def test_resets_pings_and_goaway_from_h2() -> None:
    pair = Pair(ours_is_client=False)
    ours, peer = pair.ours, pair.peer
    peer.send_headers(1, REQUEST)
    peer.send_headers(3, REQUEST)
    pair.exchange()
    peer.reset_stream(1, error_code=8)
    peer.ping(b"12345678")
    pair.exchange()
    events = ours.pop_events()
    assert events[-2:] == [("reset", 1, 8, True), ("closed", 1)]
    (ack,) = pair.peer_saw(h2.events.PingAckReceived)
    assert ack.ping_data == b"12345678"
    assert list(ours.streams) == [3]
    peer.close_connection(error_code=0, last_stream_id=0)
    pair.exchange()
    assert ours.pop_events() == [("goaway", 0, 0)]


def test_a_whole_answer_before_the_whole_request_resets_the_request_with_no_error() -> None:
    """RFC 9113 §8.1: a server that answered in full may stop the client's sending."""
    pair = Pair(ours_is_client=False)
    ours, peer = pair.ours, pair.peer
    peer.send_headers(1, REQUEST)
    peer.send_data(1, b"part of it")
    pair.exchange()
    ours.send(ours.streams[1], http2.encode_headers([(b":status", b"415")]), end=True)
    pair.exchange()
    assert pair.peer_saw(h2.events.StreamEnded)
    (reset,) = pair.peer_saw(h2.events.StreamReset)
    assert reset.error_code == 0
    assert not ours.streams


def test_ours_as_client_keeps_to_h2_s_stream_limit() -> None:
    pair = Pair(ours_is_client=True)
    pair.peer.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 3})
    pair.exchange()
    assert pair.ours.peer_max_streams == 3


def test_a_stream_window_abuse_resets_the_stream_on_a_server_and_ends_a_client() -> None:
    """h2 will not send a bad WINDOW_UPDATE, so the frame is written by hand; h2 then reads
    what ours answers."""
    pair = Pair(ours_is_client=False)
    ours = pair.ours
    pair.peer.send_headers(1, REQUEST)
    pair.exchange()
    ours.read(http2.window_update(1, 0))
    pair.exchange()
    (reset,) = pair.peer_saw(h2.events.StreamReset)
    assert reset.error_code == http2.PROTOCOL_ERROR
    client = Pair(ours_is_client=True).ours
    stream = http2.H2Stream(client.take_stream_id(), client.peer_initial_window, 65_535)
    client.open_stream(stream)
    with pytest.raises(http2.ProtocolError, match="WINDOW_UPDATE of 0 on stream 1"):
        client.read(http2.window_update(1, 0))
