"""Model storage: turn a model URI into a local folder, downloading a remote model once.

Seldon's operator downloads ``modelUri`` in an init container and hands the server a local
path. infergraph does the same on Kubernetes (``infergraph fetch-model URI DIR`` is that
init container's command), and on a laptop the server resolves the URI itself, so one
manifest runs unchanged in both places.

- Local paths and ``file://`` URIs are used in place: nothing is copied.
- ``s3://``, ``gs://`` and ``http(s)://`` are downloaded into a cache folder named after a
  hash of the URI. The download goes to a temporary folder that is renamed into place only
  when complete, so a crash never leaves a half model to be reused, and processes that
  fetch the same URI at once do not corrupt each other (the first rename wins).
- Every download records where it came from in ``.infergraph-source``. The servers read it
  to decide whether a pickle may be trusted: a model fetched into ``/mnt/models`` by an init
  container is still a remote model.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from infergraph.errors import LoadError
from infergraph.servers.fetch import (
    REMOTE_SCHEMES,
    fetch_local,
    fetch_remote,
    local_path,
    redact,
    scheme_of,
)

__all__ = ["SOURCE_FILE", "default_cache_dir", "download", "is_remote", "origin", "resolve"]

SOURCE_FILE = ".infergraph-source"
"""Written into every downloaded model folder: the URI it came from."""


def default_cache_dir() -> Path:
    """``~/.cache/infergraph/models``: where remote models go when no cache is configured."""
    return Path.home() / ".cache" / "infergraph" / "models"


def is_remote(uri: str) -> bool:
    """Whether ``uri`` is fetched over the network (and so not trusted like a local file)."""
    return scheme_of(uri) in REMOTE_SCHEMES


def origin(model_path: Path) -> str | None:
    """The remote URI a downloaded model folder came from; None for a model put there by hand."""
    folder = model_path if model_path.is_dir() else model_path.parent
    try:
        text = (folder / SOURCE_FILE).read_text().strip()
    except OSError:
        return None
    return text or None


def _check_scheme(uri: str) -> None:
    if not uri:
        raise LoadError("the model URI is empty; set modelUri (or the parameter model_uri)")
    scheme = scheme_of(uri)
    if scheme == "pvc":
        raise LoadError(
            f"model URI {redact(uri)}: pvc:// names a Kubernetes PersistentVolumeClaim, which "
            "the operator mounts into the pod; it cannot be fetched from here. Outside "
            "Kubernetes, give the path of the model folder instead"
        )
    if scheme not in ("", "file", *REMOTE_SCHEMES):
        raise LoadError(
            f"model URI {redact(uri)}: unsupported scheme {scheme}://; infergraph fetches "
            "s3://, gs://, http(s)://, file:// and plain paths (for other rclone remotes, "
            "download the model first and give its path)"
        )


def download(uri: str, dest_dir: str | Path, *, s3_endpoint_url: str = "") -> Path:
    """Fetch the model at ``uri`` into ``dest_dir`` (created if needed) and return it.

    This is the init container's job: even a local source is copied, and a remote one
    leaves ``.infergraph-source`` behind so the server knows where the files came from.
    """
    _check_scheme(uri)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if is_remote(uri):
        fetch_remote(uri, dest, s3_endpoint_url=s3_endpoint_url)
        (dest / SOURCE_FILE).write_text(redact(uri) + "\n")
    else:
        fetch_local(uri, dest)
    return dest


def resolve(uri: str, cache_dir: str | Path | None = None, *, s3_endpoint_url: str = "") -> Path:
    """The local path of the model at ``uri``: the path itself for a local model, else the
    cache folder it was (or is now) downloaded to."""
    _check_scheme(uri)
    if not is_remote(uri):
        path = local_path(uri)
        if not path.exists():
            raise LoadError(f"model URI {uri}: no file or folder at {path}")
        return path
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    final = root / _cache_name(uri, s3_endpoint_url)
    if (final / SOURCE_FILE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=root))
    try:
        download(uri, partial, s3_endpoint_url=s3_endpoint_url)
        _publish(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def _cache_name(uri: str, s3_endpoint_url: str) -> str:
    """A folder name per URI (and S3 endpoint: the same key elsewhere is another model),
    readable enough to find by eye."""
    key = hashlib.sha256(f"{s3_endpoint_url}|{uri}".encode()).hexdigest()[:20]
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", uri.rstrip("/").rsplit("/", 1)[-1])[:40]
    return f"{key}-{tail}" if tail.strip("._") else key


def _publish(partial: Path, final: Path) -> None:
    """Rename the finished download into place; another process may have been first."""
    try:
        os.rename(partial, final)
    except OSError as exc:
        if (final / SOURCE_FILE).is_file():
            return  # a concurrent download of the same URI finished first: use it
        raise LoadError(
            f"cannot store the downloaded model in {final}: {exc}; that folder is not a "
            "complete download, delete it and start again"
        ) from exc
