"""Copy what a model URI names into a local folder, one backend per scheme.

The backends are kept apart from the cache (``storage.py``) so that each can be read on its
own: object stores go through fsspec (``s3fs``, ``gcsfs``: optional extras, imported only
when such a URI is met), plain web addresses through httpx, which infergraph already
depends on, so ``https://`` needs no extra. A single archive (``.tar.gz``, ``.tgz``,
``.tar``, ``.zip``) is unpacked where it lands, as KFServing's storage initializer did.
"""

from __future__ import annotations

import importlib
import posixpath
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from infergraph.errors import LoadError

__all__ = [
    "REMOTE_SCHEMES",
    "fetch_local",
    "fetch_remote",
    "local_path",
    "redact",
    "scheme_of",
]

REMOTE_SCHEMES = ("s3", "gs", "gcs", "http", "https")
_BACKENDS = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}
_ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20


def scheme_of(uri: str) -> str:
    """The URI's scheme in lower case; "" for a plain path (a Windows drive is not one)."""
    scheme = urlsplit(uri).scheme.lower()
    return "" if len(scheme) == 1 else scheme


def redact(uri: str) -> str:
    """``uri`` fit for messages and files: no password and no query string (a presigned
    URL's signature lives there)."""
    parts = urlsplit(uri)
    if not parts.scheme or len(parts.scheme) == 1:
        return uri
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def local_path(uri: str) -> Path:
    """The filesystem path of a plain path or a ``file://`` URI."""
    if scheme_of(uri) == "file":
        parts = urlsplit(uri)
        return Path(unquote(parts.netloc + parts.path)).expanduser()
    return Path(uri).expanduser()


def fetch_local(uri: str, dest: Path) -> None:
    """Copy a local file or folder into ``dest`` (what an init container does with a path)."""
    source = local_path(uri)
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    elif source.is_file():
        shutil.copy2(source, dest / source.name)
        _unpack(dest / source.name)
    else:
        raise LoadError(f"model URI {uri}: no file or folder at {source}")


def fetch_remote(uri: str, dest: Path, *, s3_endpoint_url: str = "") -> None:
    """Download ``uri`` into the existing folder ``dest``: a folder recursively, a file as
    ``dest/<its name>`` (unpacked if it is an archive)."""
    scheme = scheme_of(uri)
    try:
        if scheme in ("http", "https"):
            _fetch_http(uri, dest)
        else:
            fs = _filesystem(scheme, s3_endpoint_url)
            _fetch_fs(fs, uri, dest)
    except LoadError:
        raise
    except Exception as exc:  # a backend's own error: credentials, network, permissions
        hint = "" if isinstance(exc, FileNotFoundError) else _credentials_hint(scheme)
        raise LoadError(
            f"cannot download model {redact(uri)}: {type(exc).__name__}: {exc}{hint}"
        ) from exc


def _filesystem(scheme: str, s3_endpoint_url: str) -> Any:
    package, extra = _BACKENDS[scheme]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise LoadError(
            f"{scheme}:// model URIs need the Python package {package}, which is not "
            f"installed ({exc}): run pip install 'infergraph[{extra}]'"
        ) from exc
    if scheme == "s3":
        client = {"endpoint_url": s3_endpoint_url} if s3_endpoint_url else {}
        # a fresh instance: fsspec would otherwise hand back one made with older settings
        return module.S3FileSystem(client_kwargs=client, skip_instance_cache=True)
    return module.GCSFileSystem(skip_instance_cache=True)


def _fetch_fs(fs: Any, uri: str, dest: Path) -> None:
    parts = urlsplit(uri)
    path = (parts.netloc + parts.path).rstrip("/")
    if fs.isfile(path):
        target = dest / posixpath.basename(path)
        fs.get_file(path, str(target))
        _unpack(target)
        return
    files = [f for f in fs.find(path) if f.rstrip("/") != path]
    if not files:
        raise LoadError(
            f"model URI {redact(uri)}: no object and no folder of that name; check the bucket "
            "and the path"
        )
    for name in files:
        relative = posixpath.relpath(name, path)
        target = _inside(dest, relative, uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(name, str(target))


def _fetch_http(uri: str, dest: Path) -> None:
    name = posixpath.basename(unquote(urlsplit(uri).path))
    if not name:
        raise LoadError(
            f"model URI {redact(uri)}: an http(s) URI must name one file (a model file or "
            "an archive such as model.tar.gz), not a folder"
        )
    target = _inside(dest, name, uri)
    timeout = httpx.Timeout(30.0, read=300.0)
    with (
        httpx.Client(follow_redirects=True, timeout=timeout) as client,
        client.stream("GET", uri) as response,
    ):
        if response.status_code != 200:
            raise LoadError(
                f"cannot download model {redact(uri)}: the server answered HTTP "
                f"{response.status_code} {response.reason_phrase}"
            )
        with target.open("wb") as out:
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
    _unpack(target)


def _inside(dest: Path, relative: str, uri: str) -> Path:
    """``dest/relative``, refusing names that would escape ``dest`` (``../``)."""
    target = (dest / relative).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise LoadError(
            f"model URI {redact(uri)}: refusing the file name {relative!r}, which points "
            "outside the model folder"
        )
    return target


def _unpack(path: Path) -> None:
    """Unpack an archive in place and remove it; leave any other file alone."""
    name = path.name.lower()
    if not name.endswith(_ARCHIVES):
        return
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(path.parent)  # zipfile drops ".." and absolute names
        else:
            with tarfile.open(path) as archive:
                archive.extractall(path.parent, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise LoadError(f"cannot unpack the model archive {path.name}: {exc}") from exc
    path.unlink()


def _credentials_hint(scheme: str) -> str:
    if scheme == "s3":
        return (
            "; credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or ~/.aws), a "
            "non-AWS endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL"
        )
    if scheme in ("gs", "gcs"):
        return "; credentials come from GOOGLE_APPLICATION_CREDENTIALS or gcloud's login"
    return ""
