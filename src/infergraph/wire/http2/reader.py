"""Reading a peer's HTTP/2 frames: what infergraph's gRPC server and client share. Pure: the
connection feeds bytes in and gets ``_on_*`` calls out."""

from __future__ import annotations

from infergraph.wire.http2.frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    ENHANCE_YOUR_CALM,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PREFACE,
    PRIORITY_FLAG,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    ProtocolError,
    frame,
    u32,
)

__all__ = ["VIEW_FROM", "FrameReader"]

VIEW_FROM = 4096
"""DATA payloads this large are handed on as views of the bytes received, not copies."""


class FrameReader:
    """Turns the bytes a connection receives into calls of its ``_on_*`` methods, one per
    frame: what our gRPC server and our gRPC client share of reading HTTP/2.

    A frame that arrives in pieces is kept until it is whole and joined once. HEADERS'
    padding and priority fields are stripped, and a header block split over CONTINUATION
    frames is put back together before ``_on_header_block`` sees it, its size kept as it
    grows and its frames counted (``header_limit``, ``continuation_limit``). PING is
    answered here; PRIORITY and unknown frame types are ignored, as RFC 9113 asks. Anything
    malformed raises :class:`ProtocolError`, whose ``code`` the connection's GOAWAY carries.
    """

    frame_limit = 1 << 20
    """The largest frame we accept (we advertise it as SETTINGS_MAX_FRAME_SIZE)."""
    header_limit = 64 << 10
    """The largest header block we accept (SETTINGS_MAX_HEADER_LIST_SIZE)."""
    continuation_limit = 64
    """The most CONTINUATION frames one header block may take."""

    def _start_reading(self, preface: bool) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._needed = 0
        self._awaiting_preface = preface
        self._continuation: tuple[int, int, list[bytes]] | None = None
        self._block_size = 0
        """Bytes of the header block in ``_continuation`` so far."""
        self._block_frames = 0
        """Its CONTINUATION frames so far."""

    # the connection's side
    def _reading(self) -> bool:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _on_data(self, stream_id: int, flags: int, payload: bytes | memoryview, size: int) -> None:
        """``payload`` without padding; ``size`` the frame's, which flow control counts."""
        raise NotImplementedError

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        raise NotImplementedError

    def _on_settings(self, flags: int, payload: bytes) -> None:
        raise NotImplementedError

    def _on_window_update(self, stream_id: int, increment: int) -> None:
        raise NotImplementedError

    def _on_reset(self, stream_id: int, code: int) -> None:
        raise NotImplementedError

    def _on_goaway(self, last_stream: int, code: int) -> None:
        raise NotImplementedError

    def _on_idle_frame(self) -> None:
        """A PING, PRIORITY or unknown frame came: work for us that asks no call (a server
        counts them against a flood budget)."""

    # reading
    def read(self, data: bytes) -> None:
        """Take the bytes the socket delivered; raises ProtocolError."""
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return
            buf = b"".join(self._pending)
            self._pending = []
        else:
            buf = data
        try:
            pos = self._frames(buf)
        except (ValueError, IndexError) as exc:  # a malformed frame not foreseen below
            raise ProtocolError(f"malformed frame: {exc}") from None
        if pos < len(buf):
            rest = buf[pos:]
            self._pending, self._pending_size = [rest], len(rest)
            if self._awaiting_preface:
                self._needed = len(PREFACE)
            elif len(rest) < 9:
                self._needed = 9
            else:
                self._needed = 9 + ((rest[0] << 16) | (rest[1] << 8) | rest[2])

    def _preface(self, buf: bytes) -> int:
        if len(buf) < len(PREFACE):
            if not PREFACE.startswith(buf):
                raise ProtocolError("not an HTTP/2 connection preface")
            return 0
        if not buf.startswith(PREFACE):
            raise ProtocolError(
                "not an HTTP/2 connection preface (this port speaks gRPC; "
                "is a REST client pointed at it?)"
            )
        self._awaiting_preface = False
        return len(PREFACE)

    def _frames(self, buf: bytes) -> int:
        pos = self._preface(buf) if self._awaiting_preface else 0
        end = len(buf)
        while end - pos >= 9 and not self._awaiting_preface and self._reading():
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if length > self.frame_limit:
                raise ProtocolError(f"frame of {length} bytes", FRAME_SIZE_ERROR)
            if end - pos - 9 < length:
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            stream_id = u32(buf, pos + 5) & 0x7FFFFFFF
            start, pos = pos + 9, pos + 9 + length
            if self._continuation is not None and kind != CONTINUATION:
                raise ProtocolError("expected CONTINUATION")
            if kind == DATA:  # a large one (a tensor's bytes) as a view, not a copy
                if not stream_id:
                    raise ProtocolError("DATA on stream 0")
                payload: bytes | memoryview = (
                    memoryview(buf)[start:pos] if length >= VIEW_FROM else buf[start:pos]
                )
                if flags & PADDED:
                    payload = _unpad(payload)
                self._on_data(stream_id, flags, payload, length)
            else:
                self._control(kind, flags, stream_id, buf[start:pos])
        return pos

    def _control(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if kind == HEADERS:
            self._headers(stream_id, flags, payload)
        elif kind == CONTINUATION:
            self._continue_headers(stream_id, flags, payload)
        elif kind == SETTINGS:
            if stream_id:
                raise ProtocolError("SETTINGS on a stream")
            self._on_settings(flags, payload)
        elif kind == WINDOW_UPDATE:
            if len(payload) != 4:
                raise ProtocolError("bad WINDOW_UPDATE", FRAME_SIZE_ERROR)
            self._on_window_update(stream_id, u32(payload) & 0x7FFFFFFF)
        elif kind == PING:
            if len(payload) != 8 or stream_id:
                raise ProtocolError("bad PING", FRAME_SIZE_ERROR)
            self._on_idle_frame()
            if not flags & ACK:
                self._write(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            if len(payload) != 4:
                raise ProtocolError("bad RST_STREAM", FRAME_SIZE_ERROR)
            self._on_reset(stream_id, u32(payload))
        elif kind == GOAWAY:
            if len(payload) < 8:
                raise ProtocolError("bad GOAWAY", FRAME_SIZE_ERROR)
            self._on_goaway(u32(payload) & 0x7FFFFFFF, u32(payload, 4))
        elif kind == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE: push is not enabled")
        else:  # PRIORITY, or a type we do not know
            self._on_idle_frame()

    def _headers(self, stream_id: int, flags: int, payload: bytes) -> None:
        if not stream_id:
            raise ProtocolError("HEADERS on stream 0")
        start, end = 0, len(payload)
        if flags & PADDED:
            if not payload:
                raise ProtocolError("bad padding")
            start, end = 1, end - payload[0]
        if flags & PRIORITY_FLAG:
            start += 5
        if start > end:
            raise ProtocolError("bad padding")
        fragment = payload[start:end]
        if len(fragment) > self.header_limit:
            raise _too_large(len(fragment), self.header_limit)
        if flags & END_HEADERS:
            self._on_header_block(stream_id, flags, fragment)
        else:
            self._continuation = (stream_id, flags, [fragment])
            self._block_size, self._block_frames = len(fragment), 0

    def _continue_headers(self, stream_id: int, flags: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise ProtocolError("unexpected CONTINUATION")
        _, first_flags, fragments = self._continuation
        self._block_frames += 1
        if self._block_frames > self.continuation_limit:
            raise ProtocolError(
                f"header block in more than {self.continuation_limit} CONTINUATION frames",
                ENHANCE_YOUR_CALM,
                "http2.max_continuations",
            )
        self._block_size += len(payload)
        if self._block_size > self.header_limit:
            raise _too_large(self._block_size, self.header_limit)
        fragments.append(payload)
        if flags & END_HEADERS:
            self._continuation = None
            self._on_header_block(stream_id, first_flags, b"".join(fragments))


def _too_large(size: int, limit: int) -> ProtocolError:
    return ProtocolError(
        f"header block of {size} bytes or more (the limit is {limit})",
        ENHANCE_YOUR_CALM,
        "http2.max_header_list_size",
    )


def _unpad(payload: bytes | memoryview) -> bytes | memoryview:
    if not payload or payload[0] >= len(payload):
        raise ProtocolError("bad padding")
    return payload[1 : len(payload) - payload[0]]
