"""TLS on a gRPC port: an :class:`ssl.SSLContext` for infergraph's own server, grpcio's
server credentials for its two (``--grpc-server threads`` or ``asyncio``).

Both reload the certificate when its files change. grpcio asks for its certificate
configuration before each handshake (``dynamic_ssl_server_credentials``); it is read
again when the files' modification times changed, at most once a second, and only once
it loads (a bad new file is logged and the old certificate kept).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc

from infergraph.wire.grpc.server import NativeGrpcServer
from infergraph.wire.tls import GRPC_ALPN, LAZY_CHECK_S, ReloadingContext, TlsFiles

__all__ = ["add_tls_port", "grpcio_credentials"]


def _read(name: str | None) -> bytes | None:
    if name is None:
        return None
    with open(name, "rb") as fh:
        return fh.read()


class _Certificates:
    """grpcio's certificate fetcher: a new configuration when the files changed, else None."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.checker = ReloadingContext.for_server(files, GRPC_ALPN)  # loads, or raises
        self.lock = threading.Lock()
        self.checked = time.monotonic()
        self.initial = self.configuration()

    def configuration(self) -> Any:
        key, cert = _read(self.files.key_file), _read(self.files.cert_file)
        assert key is not None and cert is not None
        return grpc.ssl_server_certificate_configuration(
            [(key, cert)], root_certificates=_read(self.files.ca_file)
        )

    def __call__(self) -> Any:  # in one of grpcio's threads, before each handshake
        with self.lock:
            now = time.monotonic()
            if now - self.checked < LAZY_CHECK_S:
                return None
            self.checked = now
            if not self.checker.reload_if_changed():  # a bad new file: logged there
                return None
            try:
                return self.configuration()
            except OSError:
                return None


def grpcio_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """grpcio's server credentials for ``files``, reloaded when they change; with a CA file,
    clients must present a certificate it signed."""
    certificates = _Certificates(files)
    return grpc.dynamic_ssl_server_credentials(
        certificates.initial, certificates, require_client_authentication=bool(files.ca_file)
    )


def add_tls_port(server: Any, address: str, files: TlsFiles) -> tuple[int, ReloadingContext | None]:
    """Bind ``address`` with TLS on any of the three servers: the port bound (0 if it cannot
    be), and the context to watch for new files (None where grpcio watches them itself)."""
    if isinstance(server, NativeGrpcServer):
        context = ReloadingContext.for_server(files, GRPC_ALPN)
        return server.add_secure_port(address, context.context), context
    try:
        bound = int(server.add_secure_port(address, grpcio_credentials(files)))
    except RuntimeError:  # grpc.aio raises where grpc returned 0
        bound = 0
    return bound, None
