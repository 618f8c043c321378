"""TLS from PEM files: the contexts of servers and clients, and their reload when the files
change.

A server's context offers one ALPN protocol (``h2`` on a gRPC port, ``http/1.1`` on a REST
port), TLS 1.2 at least, and with a CA file asks every client for a certificate that CA
signed (mutual TLS). A client's verifies the server against the CA file, else the system's
CAs, and may present a certificate of its own.

Certificates are rotated by replacing the files (cert-manager renewing a Kubernetes Secret
mounted as a volume does so). :class:`ReloadingContext` looks at the files' modification
times and loads them again into the *same* :class:`ssl.SSLContext`, so every later handshake
presents the new certificate while connections already open keep theirs; a new file that
does not load (half written, a key that does not match) is logged and the old one kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "GRPC_ALPN",
    "REST_ALPN",
    "ReloadingContext",
    "TlsFiles",
    "client_context",
    "server_context",
    "watch",
]

log = logging.getLogger(__name__)

GRPC_ALPN = "h2"
REST_ALPN = "http/1.1"
RELOAD_INTERVAL_S = 2.0
"""How often a serving process looks at its certificate files."""
LAZY_CHECK_S = 1.0
"""A client looks at its files at most this often, when it opens a connection."""


@dataclass(frozen=True)
class TlsFiles:
    """Where a process's TLS material lies: PEM files, each None when not given."""

    cert_file: str | None = None
    """The certificate chain presented to the peer (the server's, or a client's for mTLS)."""
    key_file: str | None = None
    """The private key of ``cert_file`` (unencrypted PEM)."""
    ca_file: str | None = None
    """A server: the CA a client's certificate must chain to (clients must present one:
    mTLS). A client: the CA the server's certificate must chain to (else the system's)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str, on: bool = False) -> TlsFiles | None:
        """``<prefix>CERT_FILE``, ``<prefix>KEY_FILE`` and ``<prefix>CA_FILE``; None when none
        is set, unless ``on`` (a client that verifies against the system's CAs)."""
        files = cls(
            env.get(prefix + "CERT_FILE") or None,
            env.get(prefix + "KEY_FILE") or None,
            env.get(prefix + "CA_FILE") or None,
        )
        return files if files != cls() or on else None

    def check(self, what: str, *, server: bool) -> None:
        """ValueError naming the problem: a server without a certificate, a certificate
        without its key (or the reverse), a file that cannot be read or does not load."""
        if server and not self.cert_file:
            raise ValueError(f"{what}: TLS needs a certificate file (and its key file)")
        if bool(self.cert_file) != bool(self.key_file):
            given, missing = ("certificate", "key") if self.cert_file else ("key", "certificate")
            raise ValueError(f"{what}: a TLS {given} file was given without its {missing} file")
        for name in (self.cert_file, self.key_file, self.ca_file):
            if name is not None:
                try:
                    with open(name, "rb"):
                        pass
                except OSError as exc:
                    raise ValueError(f"{what}: cannot read {name}: {exc.strerror}") from None
        try:
            _load(self, _scratch(server))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ValueError(f"{what}: {_why(self, exc)}") from None


def _scratch(server: bool) -> ssl.SSLContext:
    """A context to try files on before loading them into one in use."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)


def _no_password() -> str:
    raise ValueError("the key file is encrypted: give an unencrypted PEM key")


def _why(files: TlsFiles, exc: BaseException) -> str:
    names = ", ".join(n for n in (files.cert_file, files.key_file, files.ca_file) if n)
    reason = getattr(exc, "reason", None) or str(exc)
    return f"the TLS files ({names}) do not load: {reason}"


def _load(files: TlsFiles, context: ssl.SSLContext) -> None:
    """Load the files into ``context`` (again, on a reload)."""
    if files.cert_file:
        context.load_cert_chain(files.cert_file, files.key_file, password=_no_password)
    if files.ca_file:
        context.load_verify_locations(cafile=files.ca_file)


def server_context(files: TlsFiles, alpn: str) -> ssl.SSLContext:
    """A server's context offering ``alpn``; with a CA file, client certificates required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([alpn])
    _load(files, context)
    if files.ca_file:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(files: TlsFiles | None, alpn: str | None = None) -> ssl.SSLContext:
    """A client's context: the server verified against the CA file (else the system's CAs)
    and its name checked; the client's certificate presented when there is one."""
    files = files or TlsFiles()
    context = ssl.create_default_context(cafile=files.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        context.set_alpn_protocols([alpn])
    if files.cert_file:
        context.load_cert_chain(files.cert_file, files.key_file, password=_no_password)
    return context


Stamp = tuple[int, int, int] | None


def _stamp(name: str | None) -> Stamp:
    if name is None:
        return None
    try:
        info = os.stat(name)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class ReloadingContext:
    """One :class:`ssl.SSLContext` whose files are loaded again into it when they change.

    A server calls :meth:`reload_if_changed` every few seconds (:func:`watch`); a client
    calls :meth:`fresh` as it opens a connection, which looks at the files at most once a
    second. Only new handshakes see a new certificate. A CA file that changes adds its CAs
    to those already trusted (OpenSSL keeps the ones it loaded until the process restarts).
    """

    def __init__(
        self,
        files: TlsFiles,
        context: ssl.SSLContext,
        *,
        server: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.context = context
        self.server = server
        self.clock = clock
        self.reloads = 0
        """How often new files were loaded (tests, logs)."""
        self._stamps = self._now()
        self._checked = clock()

    @classmethod
    def for_server(cls, files: TlsFiles, alpn: str) -> ReloadingContext:
        return cls(files, server_context(files, alpn), server=True)

    @classmethod
    def for_client(cls, files: TlsFiles | None, alpn: str | None = None) -> ReloadingContext:
        return cls(files or TlsFiles(), client_context(files, alpn), server=False)

    def _names(self) -> tuple[str | None, ...]:
        return (self.files.cert_file, self.files.key_file, self.files.ca_file)

    def _now(self) -> tuple[Stamp, ...]:
        return tuple(_stamp(name) for name in self._names())

    def reload_if_changed(self) -> bool:
        """Load the files again if any changed since they were last loaded; True if new
        ones were loaded. Files that do not load are logged and the context left as it was."""
        self._checked = self.clock()
        stamps = self._now()
        if stamps == self._stamps:
            return False
        if any(s is None for s, n in zip(stamps, self._names(), strict=True) if n is not None):
            return False  # a file being replaced (gone for a moment): looked at again later
        try:
            _load(self.files, _scratch(self.server))  # first where a failure changes nothing
            _load(self.files, self.context)
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.error("TLS: keeping the certificate in use: %s", _why(self.files, exc))
            self._stamps = stamps  # said once; a later change is tried again
            return False
        self._stamps = stamps
        self.reloads += 1
        log.info("TLS: loaded new files: %s", ", ".join(n for n in self._names() if n))
        return True

    def fresh(self) -> ssl.SSLContext:
        """The context, its files looked at first if a second has passed since last time."""
        if self.clock() - self._checked >= LAZY_CHECK_S:
            self.reload_if_changed()
        return self.context


async def watch(contexts: Iterable[ReloadingContext], interval: float = RELOAD_INTERVAL_S) -> None:
    """Reload each context's files when they change, every ``interval`` seconds, until
    cancelled."""
    contexts = list(contexts)
    while True:
        await asyncio.sleep(interval)
        for context in contexts:
            context.reload_if_changed()
