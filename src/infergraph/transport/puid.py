"""The puid a request brings in its body, checked before it becomes a header.

A graph sends the puid back, and on to every node, as the ``Seldon-Puid`` header (gRPC:
metadata). One taken from the body (``meta.puid``, a V2 request's ``id``) is the client's
text: a line break in it would forge headers of its own into the answer or a node's
request, and anything but printable ASCII cannot be a gRPC metadata value at all.
"""

from __future__ import annotations

import re

from infergraph.errors import BadRequest

__all__ = ["checked_puid"]

_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


def checked_puid(hint: str) -> str:
    """``hint``, if it can travel as a header; else a 400 saying so."""
    if not _HEADER_SAFE.fullmatch(hint):
        raise BadRequest(
            f"the request's puid {hint[:60]!r} (meta.puid, or a V2 request's id) cannot be "
            "a Seldon-Puid header: use printable ASCII"
        )
    return hint
