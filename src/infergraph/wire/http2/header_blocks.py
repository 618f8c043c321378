"""HPACK (RFC 7541), both ways. Header blocks we send use no dynamic table and no Huffman
coding (``literal without indexing``, with the static table's index for a known name), so the
encoder keeps no state. Header blocks we receive are decoded by ``hpack`` (the python-hyper
decoder) behind a per-connection cache: a peer sends the same bytes for the same headers once
its dynamic table holds them, so a block that changed nothing in the table is decoded once
and then looked up. A block that did change the table empties the cache, since the same bytes
may then name other headers."""

from __future__ import annotations

import hpack

from infergraph.wire.http2.frames import COMPRESSION_ERROR, ENHANCE_YOUR_CALM, ProtocolError

__all__ = ["HeaderDecoder", "encode_headers"]

# names of the static table (RFC 7541 Appendix A) we send, by index
_STATIC_NAMES = {
    b":status": 8,
    b"content-type": 31,
    b"date": 33,
    b"user-agent": 58,
}
_STATUS = {200: b"\x88", 204: b"\x89", 206: b"\x8a", 304: b"\x8b", 400: b"\x8c", 404: b"\x8d"}


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK's prefixed integer (RFC 7541 §5.1) with ``first``'s high bits set."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0) + value


def encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A header block that leaves both dynamic tables alone: ``:status`` from the static
    table where it is there, everything else a literal without indexing."""
    out = []
    for name, value in headers:
        if name == b":status":
            code = int(value)
            if code in _STATUS:
                out.append(_STATUS[code])
                continue
        index = _STATIC_NAMES.get(name, 0)
        if index:
            out.append(_integer(index, 4, 0x00) + _string(value))
        else:
            out.append(b"\x00" + _string(name) + _string(value))
    return b"".join(out)


# ---------------------------------------------------------------- HPACK, the peer's side


class HeaderDecoder:
    """Decodes a connection's header blocks, each block's bytes at most once while the
    dynamic table stands still."""

    __slots__ = ("_cache", "_decoder", "max_list_size")

    CACHE_LIMIT = 256

    def __init__(self, max_list_size: int) -> None:
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = max_list_size
        self._cache: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self.max_list_size = max_list_size

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        before = self._table_state()
        try:
            headers = [(bytes(k), bytes(v)) for k, v in self._decoder.decode(block, raw=True)]
        except hpack.OversizedHeaderListError as exc:
            raise ProtocolError(
                f"header list too large: {exc}", ENHANCE_YOUR_CALM, "http2.max_header_list_size"
            ) from exc
        except hpack.HPACKError as exc:
            raise ProtocolError(f"bad header block: {exc}", COMPRESSION_ERROR) from exc
        after = self._table_state()
        if after[0] != before[0] or after[1] is not before[1] or after[2] != before[2]:
            self._cache.clear()  # the same bytes may now name other headers
        elif len(self._cache) < self.CACHE_LIMIT:
            self._cache[block] = headers
        return headers

    def _table_state(self) -> tuple[int, object, int]:
        """What a block can change of the dynamic table: its length, its newest entry and
        its size limit (a size update replayed from the cache would be lost). The entry is
        held, not its ``id()``: a block whose new entries evict as many old ones leaves the
        length as it was, and a freed entry's address is soon a new entry's."""
        table = self._decoder.header_table
        entries = table.dynamic_entries
        return len(entries), entries[0] if entries else None, table.maxsize
