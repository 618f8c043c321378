"""``seldon_core.storage``: ``Storage.download``, which model code calls in ``load()``.

Seldon's own version only handles local paths now (remote URIs are left to its init
container). infergraph's model storage (:mod:`infergraph.servers.storage`, the code
behind ``infergraph fetch-model``) also fetches ``s3://``, ``gs://`` and ``http(s)://``,
so a model that downloads its own weights works on a laptop as it does in a pod.
"""

from __future__ import annotations

import tempfile

from infergraph.servers import storage
from infergraph.settings import ComponentSettings

__all__ = ["Storage"]


class Storage:
    """Seldon's entry point for model files: one static method."""

    @staticmethod
    def download(uri: str, out_dir: str | None = None) -> str:
        """The local path of the model at ``uri``.

        Without ``out_dir`` a local path (or ``file://`` URI) is returned as it is, and a
        remote one is downloaded into a new temporary folder. With ``out_dir`` the model
        is put there (local files are copied, where Seldon links them) and ``out_dir`` is
        returned. A missing or unreachable model raises :class:`~infergraph.errors.LoadError`.
        """
        if out_dir is None:
            if not storage.is_remote(uri):
                return str(storage.resolve(uri))
            out_dir = tempfile.mkdtemp(prefix="infergraph-model-")
        # read when called, not at import: the S3 endpoint is configured like fetch-model's
        endpoint = ComponentSettings.from_env(annotations={}).s3_endpoint_url
        return str(storage.download(uri, out_dir, s3_endpoint_url=endpoint))
