"""``seldon_core.flask_utils``: only the exception model code raises.

Seldon's module also parses Flask requests; infergraph has no Flask, so the request
helpers are not provided. ``SeldonMicroserviceException`` is infergraph's
:class:`~infergraph.errors.MicroserviceError` itself, so raising it from model code
sets the HTTP status and the ``status.reason`` of the error body exactly as in Seldon.
"""

from __future__ import annotations

from infergraph.errors import MicroserviceError

__all__ = ["SeldonMicroserviceException"]

SeldonMicroserviceException = MicroserviceError
