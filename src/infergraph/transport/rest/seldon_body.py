"""Read a Seldon REST request body the way the Python wrapper does.

Multipart form data (``binData`` and ``strData`` as files), then a ``json`` form
field or query parameter, then the JSON body.
"""

from __future__ import annotations

import base64
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from infergraph.errors import BadRequest
from infergraph.protocol.seldon_json import loads

__all__ = ["parse_seldon_body"]


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadRequest("multipart/form-data body could not be parsed: check the boundary")
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_filename() is not None:
            if name == "binData":
                out[name] = base64.b64encode(payload).decode()
            else:
                out[name] = payload.decode("utf-8", errors="replace")
        elif name == "strData":
            out[name] = payload.decode("utf-8", errors="replace")
        else:
            out[name] = loads(payload) if payload else None
    return out


def parse_seldon_body(content_type: str, query: bytes, body: bytes) -> Any:
    """Return the decoded JSON value of a request, or raise BadRequest."""
    if content_type.startswith("multipart/form-data"):
        form = _multipart(content_type, body)
        if "json" in form:
            return form["json"] if not isinstance(form["json"], str) else loads(form["json"])
        return form
    if content_type.startswith("application/x-www-form-urlencoded") and body:
        form = parse_qs(body.decode("utf-8", errors="replace"))
        if "json" in form:
            return loads(form["json"][0])
    if query:
        params = parse_qs(query.decode("utf-8", errors="replace"))
        if "json" in params:
            return loads(params["json"][0])
    if not body.strip():
        raise BadRequest("Can't find JSON in data: the request body is empty")
    return loads(body)
