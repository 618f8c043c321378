"""Seldon Core's ``seldon_core`` package, for model code, where seldon-core is not installed.

seldon-core pins protobuf, numpy and Flask to versions a current stack cannot install
beside it, yet Seldon model classes import it for a base class, an exception, protobuf
messages and a few helpers. This package provides those names, each one infergraph's
own equivalent, and ``infergraph.components.seldon_alias`` makes ``import seldon_core``
(and ``seldon_core.<module>``) resolve here when, and only when, the real package
cannot be found. A real seldon-core on the path is always used instead.

Modules: ``user_model``, ``flask_utils``, ``metrics``, ``storage``, ``utils``,
``proto`` (``prediction_pb2``, ``prediction_pb2_grpc``) and ``version``.
"""

from __future__ import annotations

from infergraph.compat.seldon_core.storage import Storage
from infergraph.compat.seldon_core.version import __version__

__all__ = ["Storage", "__version__"]
