"""Find the Kubernetes API server and its credentials the way kubectl does, with httpx only.

``infergraph describe`` / ``logs`` and the operator must reach the same cluster ``kubectl``
would, without a Kubernetes client library: :func:`load` follows client-go's order (an
explicit file, else ``$KUBECONFIG`` merged, else ``~/.kube/config``, else the pod's service
account) and :func:`client` / :func:`async_client` turn the :class:`Connection` into httpx
clients whose credentials are looked up per request, so rotating tokens keep working.

Not supported: ``proxy-url`` (httpx honours ``HTTPS_PROXY`` / ``NO_PROXY`` like kubectl) and
the removed ``auth-provider`` plugins (an error points to their exec replacements).
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from infergraph.kube import kubeconfig_exec
from infergraph.kube.kubeconfig_exec import ExecPlugin, KubeconfigError

__all__ = ["SERVICE_ACCOUNT_DIR", "Connection", "KubeconfigError", "async_client", "client", "load"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_FILE_TTL_S = 60.0  # client-go's period for re-reading a token file


class _AuthState:
    """The mutable part of a frozen :class:`Connection`: the cached token file and plugin."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.file_token: str | None = None
        self.read_at = float("-inf")
        self.plugin: ExecPlugin | None = None


@dataclass(frozen=True)
class Connection:
    """Where the API server is and how to authenticate; secrets stay in memory only."""

    server: str
    namespace: str = "default"
    context: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = field(default=None, repr=False)  # secrets stay out of logs
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec_config: dict[str, Any] | None = None
    tls_server_name: str | None = None  # the name to verify the server certificate against
    user: str | None = None  # the kubeconfig user's name, for error messages
    exec_cluster: dict[str, Any] | None = None  # spec.cluster for provideClusterInfo plugins
    _state: _AuthState = field(default_factory=_AuthState, init=False, repr=False, compare=False)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """For httpx's ``verify=``: the cluster's CA (only it, like kubectl) and client cert.

        A client certificate from an exec plugin is fetched here, so a rotated one needs a new
        client; tokens are fetched per request by :meth:`auth_headers`.
        """
        cert, key = self.client_cert_data, self.client_key_data
        if cert is None and self.exec_config is not None:
            credential = self._plugin().credential()
            cert, key = credential.client_certificate_data, credential.client_key_data
        if self.ca_data is None and cert is None:
            return not self.insecure
        try:
            context = self._trust()
            if cert is not None and key is not None:
                _load_cert_chain(context, cert, key)
        except ssl.SSLError as exc:
            raise KubeconfigError(
                f"{self._where()}: cannot load its TLS certificates: {exc}"
            ) from None
        return context

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header for the next request, in client-go's precedence."""
        if self.token_file or self.token:
            return {"Authorization": f"Bearer {self._static_token()}"}
        if self.username is not None or self.password is not None:
            pair = f"{self.username or ''}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        if self.exec_config is not None:
            token = self._plugin().credential().token
            return {"Authorization": f"Bearer {token}"} if token else {}
        return {}

    def _trust(self) -> ssl.SSLContext:
        if self.insecure:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.ca_data is None:
            return httpx.create_ssl_context()  # the roots httpx trusts by default
        return ssl.create_default_context(cadata=self.ca_data.decode("ascii", errors="replace"))

    def _static_token(self) -> str:
        """The token file's contents, re-read at most every 60 s; else the inline token."""
        if not self.token_file:
            return self.token or ""
        state = self._state
        with state.lock:
            now = time.monotonic()
            if state.file_token is None or now - state.read_at >= TOKEN_FILE_TTL_S:
                try:
                    state.file_token = Path(self.token_file).read_text().strip()
                    state.read_at = now
                except OSError as exc:
                    if state.file_token is None and not self.token:
                        message = f"cannot read the token file {self.token_file}: {exc.strerror}"
                        raise KubeconfigError(f"{self._where()}: {message}") from None
            return state.file_token or self.token or ""

    def _plugin(self) -> ExecPlugin:
        with self._state.lock:
            if self._state.plugin is None:
                assert self.exec_config is not None
                user = self.user or str(self.context)
                self._state.plugin = ExecPlugin(self.exec_config, user, self.exec_cluster)
            return self._state.plugin

    def _forget_credentials(self) -> bool:
        """After a 401: drop cached credentials; True when a retry could send different ones."""
        if self.token_file:
            with self._state.lock:
                self._state.read_at = float("-inf")
            return True
        if self.exec_config is not None and not self.token and self.username is None:
            self._plugin().forget()
            return True
        return False

    def _where(self) -> str:
        return f"context {self.context!r}" if self.context else "the in-cluster config"


def _load_cert_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """``load_cert_chain`` reads only files: write them to a private temp dir, load, delete."""
    with tempfile.TemporaryDirectory(prefix="infergraph-kube-") as tmp:
        paths = os.path.join(tmp, "client.crt"), os.path.join(tmp, "client.key")
        for path, data in zip(paths, (cert, key), strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        context.load_cert_chain(*paths)


def load(
    kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None
) -> Connection:
    """The connection kubectl would use; ``in_cluster`` True forces, False forbids, the pod's."""
    if in_cluster:
        if kubeconfig or context:
            raise KubeconfigError(
                "a kubeconfig or context cannot be combined with in-cluster config"
            )
        return _in_cluster()
    paths, described = _find(kubeconfig)
    merged = _merge(paths)
    if merged.empty() and context is None and in_cluster is None and _in_cluster_possible():
        return _in_cluster()  # client-go's fallback for an empty or missing kubeconfig
    if not paths:
        inside = " and not running inside a cluster" if in_cluster is None else ""
        raise KubeconfigError(
            f"no Kubernetes cluster configured: {described} "
            f"(set KUBECONFIG or pass --kubeconfig){inside}"
        )
    return _connection(merged, context)


def _find(explicit: str | None) -> tuple[list[Path], str]:
    """The kubeconfig files in kubectl's order, and how to say that none exists."""
    if explicit:
        if not Path(explicit).is_file():
            raise KubeconfigError(f"kubeconfig {explicit} does not exist")
        return [Path(explicit)], explicit
    listed = os.environ.get("KUBECONFIG", "")
    names = list(dict.fromkeys(name for name in listed.split(os.pathsep) if name))
    if names:  # like client-go, files in the list that do not exist are skipped
        found = [Path(name) for name in names if Path(name).is_file()]
        return found, f"none of the KUBECONFIG files exist ({listed})"
    default = Path.home() / ".kube" / "config"
    return ([default] if default.is_file() else []), f"no kubeconfig at {default}"


@dataclass(frozen=True)
class _Entry:
    """One named cluster, user or context, with its file (relative paths start from there)."""

    kind: str
    name: str
    body: dict[str, Any]
    path: Path

    def where(self) -> str:
        return f"{self.kind} {self.name!r} in {self.path}"

    def resolve(self, ref: object) -> Path:
        return self.path.parent / str(ref)  # an absolute ref stays as it is

    def data(self, key: str) -> bytes | None:
        """``KEY-data`` (base64) or else the file ``KEY`` names; the data wins, as in client-go."""
        inline = self.body.get(f"{key}-data")
        if inline:
            try:
                return base64.b64decode("".join(str(inline).split()), validate=True)
            except ValueError:
                raise KubeconfigError(f"{self.where()}: {key}-data is not valid base64") from None
        if not self.body.get(key):
            return None
        path = self.resolve(self.body[key])
        try:
            return path.read_bytes()
        except OSError as exc:
            raise KubeconfigError(
                f"{self.where()}: cannot read {key} {path}: {exc.strerror}"
            ) from None


@dataclass
class _Merged:
    """Several kubeconfig files as one: the first file to name an entry or a key wins."""

    files: list[Path]
    entries: dict[str, dict[str, _Entry]] = field(
        default_factory=lambda: {"cluster": {}, "user": {}, "context": {}}
    )
    current_context: str | None = None

    def empty(self) -> bool:
        return not self.entries["context"] and not self.current_context

    def lookup(self, kind: str, name: object, named_by: str = "") -> _Entry:
        entry = self.entries[kind].get(str(name)) if name else None
        if entry is not None:
            return entry
        if not name:
            raise KubeconfigError(f"{named_by} names no {kind}")
        available = ", ".join(sorted(self.entries[kind])) or "none"
        files = ", ".join(map(str, self.files))
        what = f"{named_by} names {kind} {name!r}, which" if named_by else f"{kind} {name!r}"
        raise KubeconfigError(f"{what} is not in {files} (available {kind}s: {available})")


def _merge(paths: list[Path]) -> _Merged:
    merged = _Merged(paths)
    for path in paths:
        document = _read(path)
        merged.current_context = merged.current_context or document.get("current-context") or None
        for kind, table in merged.entries.items():
            for entry in _entries(document, kind, path):
                table.setdefault(entry.name, entry)
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a YAML mapping")
    return document


def _entries(document: dict[str, Any], kind: str, path: Path) -> list[_Entry]:
    items = document.get(f"{kind}s") or []
    if not isinstance(items, list):
        raise KubeconfigError(f"kubeconfig {path}: {kind}s is not a list")
    entries = []
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            raise KubeconfigError(f"kubeconfig {path}: an entry of {kind}s has no name")
        body = item.get(kind) or {}
        if not isinstance(body, dict):
            raise KubeconfigError(f"kubeconfig {path}: {kind} {item['name']!r} is not a mapping")
        entries.append(_Entry(kind, str(item["name"]), body, path))
    return entries


def _connection(merged: _Merged, context: str | None) -> Connection:
    name = context or merged.current_context
    if not name:
        contexts = ", ".join(sorted(merged.entries["context"])) or "none"
        files = ", ".join(map(str, merged.files))
        raise KubeconfigError(
            f"no current-context in {files}; pass --context (available: {contexts})"
        )
    ctx = merged.lookup("context", name)
    cluster = merged.lookup("cluster", ctx.body.get("cluster"), ctx.where())
    user = merged.lookup("user", ctx.body["user"], ctx.where()) if ctx.body.get("user") else None
    tls = _cluster_fields(cluster)
    return Connection(
        namespace=str(ctx.body.get("namespace") or "default"),
        context=name,
        user=user.name if user else None,
        **tls,
        **(_user_fields(user, cluster, tls) if user else {}),
    )


def _cluster_fields(entry: _Entry) -> dict[str, Any]:
    server = str(entry.body.get("server") or "").rstrip("/")
    if not server:
        raise KubeconfigError(f"{entry.where()} has no server")
    ca = entry.data("certificate-authority")
    insecure = bool(entry.body.get("insecure-skip-tls-verify"))
    if insecure and ca:
        raise KubeconfigError(
            f"{entry.where()} sets both insecure-skip-tls-verify and a certificate-authority "
            "(kubectl refuses this too)"
        )
    return {
        "server": server if "://" in server else f"https://{server}",
        "ca_data": ca,
        "insecure": insecure,
        "tls_server_name": entry.body.get("tls-server-name") or None,
    }


def _user_fields(entry: _Entry, cluster: _Entry, tls: dict[str, Any]) -> dict[str, Any]:
    body = entry.body
    if body.get("auth-provider"):
        raise kubeconfig_exec.auth_provider_error(entry.where(), body["auth-provider"])
    if (body.get("token") or body.get("tokenFile")) and ("username" in body or "password" in body):
        raise KubeconfigError(f"{entry.where()} sets both a token and a username/password")
    cert, key = entry.data("client-certificate"), entry.data("client-key")
    if (cert is None) != (key is None):
        raise KubeconfigError(f"{entry.where()} needs both client-certificate and client-key")
    exec_config = (
        kubeconfig_exec.prepare(body["exec"], entry.path.parent, entry.where())
        if body.get("exec")
        else None
    )
    return {
        "token": _text(body.get("token")),
        "token_file": str(entry.resolve(body["tokenFile"])) if body.get("tokenFile") else None,
        "client_cert_data": cert,
        "client_key_data": key,
        "username": _text(body.get("username")),
        "password": _text(body.get("password")),
        "exec_config": exec_config,
        "exec_cluster": kubeconfig_exec.cluster_info(exec_config, cluster.body, tls),
    }


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _in_cluster_possible() -> bool:
    return bool(
        os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT")
    )


def _in_cluster() -> Connection:
    """The pod's service account; its token file is re-read because projected tokens rotate."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not (host and port):
        raise KubeconfigError(
            "not running inside a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
            "are not set"
        )
    account = Path(SERVICE_ACCOUNT_DIR)
    token = account / "token"
    if not token.is_file():
        raise KubeconfigError(
            f"in-cluster config: no service-account token at {token} "
            "(is automountServiceAccountToken false for this pod?)"
        )
    ca = account / "ca.crt"
    namespace = account / "namespace"
    ns = namespace.read_text().strip() if namespace.is_file() else ""
    return Connection(
        server=f"https://{f'[{host}]' if ':' in host else host}:{port}",
        namespace=ns or "default",
        ca_data=ca.read_bytes() if ca.is_file() else None,
        token_file=str(token),
    )


class _ConnectionAuth(httpx.Auth):
    """Adds :meth:`Connection.auth_headers` to every request and retries a 401 once afresh."""

    requires_request_body = True  # so the retry can resend it

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def _apply(self, request: httpx.Request, headers: dict[str, str]) -> None:
        request.headers.update(headers)
        if self.connection.tls_server_name:
            request.extensions["sni_hostname"] = self.connection.tls_server_name

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._apply(request, self.connection.auth_headers())
        response = yield request
        if response.status_code == 401 and self.connection._forget_credentials():
            self._apply(request, self.connection.auth_headers())
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # a token file read or a plugin run must not block the event loop
        self._apply(request, await asyncio.to_thread(self.connection.auth_headers))
        response = yield request
        if response.status_code == 401 and self.connection._forget_credentials():
            self._apply(request, await asyncio.to_thread(self.connection.auth_headers))
            yield request


def client(connection: Connection, *, timeout: float = 30.0) -> httpx.Client:
    """A sync httpx client for the API server (paths like ``/api/v1/namespaces``)."""
    return httpx.Client(
        base_url=connection.server,
        verify=connection.ssl_context(),
        auth=_ConnectionAuth(connection),
        timeout=timeout,
    )


def async_client(connection: Connection, *, timeout: float = 30.0) -> httpx.AsyncClient:
    """The async twin of :func:`client`, for the operator's watch loops."""
    return httpx.AsyncClient(
        base_url=connection.server,
        verify=connection.ssl_context(),
        auth=_ConnectionAuth(connection),
        timeout=timeout,
    )
