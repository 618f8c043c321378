"""Compressed request bodies: ``Content-Encoding: gzip`` or ``deflate``, inflated under the
same size limit as any body (so a small compressed body cannot expand without bound)."""

from __future__ import annotations

import zlib

from infergraph.errors import BadRequest, PayloadTooLarge

__all__ = ["decode_content"]

# zlib's wbits: gzip framing, and zlib framing for "deflate" (raw deflate is tried after)
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _inflate(body: bytes, wbits: int, limit: int, encoding: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise PayloadTooLarge(
            f"The {encoding}-compressed request body inflates past the limit of {limit} bytes "
            "(set --max-message-size or INFERGRAPH_MAX_MESSAGE_SIZE)"
        )
    if not inflater.eof:
        raise zlib.error("the compressed data is truncated")
    return out


def decode_content(encoding: str | None, body: bytes, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone (``identity`` or none: as it is)."""
    if encoding is None:
        return body
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return body
    wbits = _WBITS.get(name)
    if wbits is None:
        raise BadRequest(
            f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or identity",
            status_code=415,
        )
    try:
        return _inflate(body, wbits, limit, name)
    except zlib.error as exc:
        if name == "deflate":  # some clients send raw deflate without the zlib header
            try:
                return _inflate(body, -zlib.MAX_WBITS, limit, name)
            except zlib.error:
                pass
        raise BadRequest(f"The request body is not valid {name} data: {exc}") from None
