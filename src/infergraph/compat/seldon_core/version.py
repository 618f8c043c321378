"""``seldon_core.version``: the Seldon Core release whose Python API this layer follows.

The ``+infergraph`` local part keeps the string a valid version that still tells a
reader (or a version check in user code) that this is not the real package.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "1.18.2+infergraph"
