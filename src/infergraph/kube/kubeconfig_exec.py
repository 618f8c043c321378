"""Client-go credential (exec) plugins, run the way kubectl runs them.

Managed clusters (GKE's ``gke-gcloud-auth-plugin``, EKS's ``aws eks get-token``, AKS's
``kubelogin``) put no credential in the kubeconfig: they name a program that prints a
short-lived ``ExecCredential``. :class:`ExecPlugin` runs it when a credential is first needed
and again only once the one it printed has expired, so a long-running operator keeps working
while the tokens rotate underneath it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_EXTENSION = "client.authentication.k8s.io/exec"  # per-cluster plugin config
EXEC_TIMEOUT_S = 120.0  # a plugin may fetch a token over the network; never hang forever


class KubeconfigError(Exception):
    """The cluster or its credentials cannot be found or used; the message says which and why.

    It lives here, below :mod:`infergraph.kube.kubeconfig`, so that both modules raise one
    class without importing each other; import it from ``infergraph.kube.kubeconfig``.
    """


_EXEC_REPLACEMENTS = {
    "gcp": "gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)",
    "azure": "kubelogin (az aks install-cli, then kubelogin convert-kubeconfig)",
    "oidc": "kubelogin's oidc-login (kubectl krew install oidc-login)",
}


def auth_provider_error(where: str, provider: object) -> KubeconfigError:
    """``auth-provider`` blocks are not run: each has an exec plugin that replaced it."""
    name = str(provider.get("name") if isinstance(provider, dict) else provider)
    plugin = _EXEC_REPLACEMENTS.get(name, "the provider's client-go credential plugin")
    return KubeconfigError(
        f"{where} uses auth-provider {name!r}; auth-provider plugins are not supported "
        f"(kubectl removed gcp and azure in 1.26): use the exec credential plugin {plugin}"
    )


def prepare(config: object, base: Path, where: str) -> dict[str, Any]:
    """A copy of the exec block whose relative command path starts from the kubeconfig's dir.

    As in client-go, a bare name (``aws``) is looked up on PATH; only ``./bin/x`` is resolved.
    """
    if not isinstance(config, dict):
        raise KubeconfigError(f"{where}: exec is not a mapping")
    prepared = dict(config)
    command = str(prepared.get("command") or "")
    if os.sep in command and not os.path.isabs(command):
        prepared["command"] = str(base / command)
    return prepared


def cluster_info(
    config: dict[str, Any] | None, cluster: dict[str, Any], tls: dict[str, Any]
) -> dict[str, Any] | None:
    """``spec.cluster`` of KUBERNETES_EXEC_INFO, sent only when ``provideClusterInfo`` is set."""
    if not config or not config.get("provideClusterInfo"):
        return None
    info: dict[str, Any] = {"server": tls["server"]}
    if tls["tls_server_name"]:
        info["tls-server-name"] = tls["tls_server_name"]
    if tls["insecure"]:
        info["insecure-skip-tls-verify"] = True
    if tls["ca_data"]:
        info["certificate-authority-data"] = base64.b64encode(tls["ca_data"]).decode("ascii")
    for extension in cluster.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXEC_EXTENSION:
            info["config"] = extension.get("extension")
    return info


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin printed: a bearer token, or a client certificate and key (PEM)."""

    token: str | None = None
    client_certificate_data: bytes | None = None
    client_key_data: bytes | None = None
    expires: datetime | None = None  # None: valid until the server answers 401

    def expired(self) -> bool:
        """True once ``expirationTimestamp`` has passed (client-go's rule, no early refresh)."""
        return self.expires is not None and datetime.now(UTC) >= self.expires


class ExecPlugin:
    """One ``users[].user.exec`` block; :meth:`credential` runs it when needed, thread-safely.

    ``cluster`` is the ``spec.cluster`` object sent when the block sets ``provideClusterInfo``.
    """

    def __init__(self, config: dict[str, Any], user: str, cluster: dict[str, Any] | None = None):
        self.config, self.user, self.cluster = config, user, cluster
        self._lock = threading.Lock()
        self._cached: ExecCredential | None = None

    def credential(self) -> ExecCredential:
        """The cached credential, or a fresh one when there is none or it has expired."""
        with self._lock:
            if self._cached is None or self._cached.expired():
                self._cached = self._run()
            return self._cached

    def forget(self) -> None:
        """Drop the cached credential (the server rejected it), so the next use reruns."""
        with self._lock:
            self._cached = None

    def _run(self) -> ExecCredential:
        api_version = self._api_version()
        command = self.config.get("command")
        if not command:
            raise self._error("has no command")
        if self.config.get("interactiveMode") == "Always":
            raise self._error(
                "needs interactiveMode Always, but infergraph runs it without a terminal"
            )
        argv = [str(command), *(str(arg) for arg in self.config.get("args") or [])]
        try:
            done = subprocess.run(
                argv,
                env=self._environment(api_version),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            raise self._error(f"runs {command!r}, which is not installed", hint=True) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise self._error(f"{command!r} could not run: {exc}", hint=True) from None
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace").strip() or "(no stderr)"
            message = f"{command!r} exited with status {done.returncode}: {stderr}"
            raise self._error(message, hint=True)
        return self._parse(done.stdout, api_version)

    def _api_version(self) -> str:
        api_version = str(self.config.get("apiVersion") or "")
        if api_version not in API_VERSIONS:
            raise self._error(
                f"has apiVersion {api_version!r}; supported: {', '.join(API_VERSIONS)}"
            )
        return api_version

    def _environment(self, api_version: str) -> dict[str, str]:
        """os.environ plus the block's ``env`` list plus ``KUBERNETES_EXEC_INFO`` (client-go's)."""
        env = dict(os.environ)
        for item in self.config.get("env") or []:
            if not isinstance(item, dict) or "name" not in item:
                raise self._error(f"has an env entry without a name: {item!r}")
            env[str(item["name"])] = str(item.get("value", ""))
        spec: dict[str, Any] = {"interactive": False}
        if self.cluster is not None:
            spec["cluster"] = self.cluster
        info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}
        env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
        return env

    def _parse(self, stdout: bytes, api_version: str) -> ExecCredential:
        try:
            document = json.loads(stdout)
        except ValueError:
            raise self._error(f"printed no ExecCredential JSON: {stdout[:200]!r}") from None
        if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
            raise self._error(f"printed something other than an ExecCredential: {stdout[:200]!r}")
        if document.get("apiVersion") != api_version:
            got = document.get("apiVersion")
            raise self._error(
                f"printed apiVersion {got!r}, but the kubeconfig asks {api_version!r}"
            )
        status = document.get("status")
        if not isinstance(status, dict):
            raise self._error("printed an ExecCredential without a status")
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if not status.get("token") and not (cert and key):
            raise self._error(
                "printed neither status.token nor status.clientCertificateData and clientKeyData"
            )
        return ExecCredential(
            token=status.get("token") or None,
            client_certificate_data=cert.encode() if cert else None,
            client_key_data=key.encode() if key else None,
            expires=self._expiry(status.get("expirationTimestamp")),
        )

    def _expiry(self, stamp: object) -> datetime | None:
        if not stamp:
            return None
        try:
            expires = datetime.fromisoformat(str(stamp))
        except ValueError:
            raise self._error(f"printed expirationTimestamp {stamp!r}, not RFC 3339") from None
        return expires if expires.tzinfo else expires.replace(tzinfo=UTC)

    def _error(self, what: str, *, hint: bool = False) -> KubeconfigError:
        message = f"user {self.user!r}: exec credential plugin {what}"
        install_hint = self.config.get("installHint")
        if hint and install_hint:
            message += f"\n\n{str(install_hint).strip()}"
        return KubeconfigError(message)
