"""infergraph: serve machine-learning models as inference graphs.

The public API is the names below, plus ``infergraph.sdk``, ``infergraph.errors``
and ``infergraph.testing``.
"""

from infergraph._version import __version__
from infergraph.app import component_app
from infergraph.errors import InferGraphError
from infergraph.sdk import SeldonResponse
from infergraph.settings import ComponentSettings

__all__ = [
    "ComponentSettings",
    "InferGraphError",
    "SeldonResponse",
    "__version__",
    "component_app",
]
