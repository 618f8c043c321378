"""What protects one serving process: the TLS of its REST and gRPC ports, with the task
that loads new certificate files into them, and what it logs of that and of its bearer
tokens at start-up (``docs/security.md``).

The metrics port is left plain: Prometheus scrapes pods over plain HTTP unless told
otherwise, and the metrics say nothing a request could not.
"""

from __future__ import annotations

import logging
from typing import Any

from infergraph.transport.grpc.tls import add_tls_port
from infergraph.wire.tls import REST_ALPN, ReloadingContext, TlsFiles, watch
from infergraph.wire.tokens import BearerTokens

__all__ = ["ServerTls", "log_security"]

log = logging.getLogger(__name__)


class ServerTls:
    """TLS by ``files`` on a process's REST and gRPC ports, reloaded when they change."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.rest = ReloadingContext.for_server(files, REST_ALPN)
        self.watched = [self.rest]

    def add_grpc_port(self, server: Any, address: str) -> int:
        """Bind the gRPC port with TLS; the port bound, 0 if it cannot be."""
        bound, context = add_tls_port(server, address, self.files)
        if context is not None:  # infergraph's own server: watched here (grpcio watches its own)
            self.watched.append(context)
        return bound

    async def watch(self) -> None:
        """Load new files into the contexts when they change, until cancelled."""
        await watch(self.watched)


def log_security(tls: ServerTls | None, auth: BearerTokens | None) -> None:
    """Say at start-up what protects the REST and gRPC ports, when anything does."""
    if tls is not None:
        mtls = "; clients must present a certificate" if tls.files.ca_file else ""
        log.info("TLS on the REST and gRPC ports: certificate %s%s", tls.files.cert_file, mtls)
    if auth is not None:
        log.info("bearer token required (tokens in %s); probes and metrics stay open", auth.path)
