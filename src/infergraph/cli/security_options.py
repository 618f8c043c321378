"""``--tls-cert-file``, ``--tls-key-file``, ``--tls-ca-file`` and ``--auth-token-file``: the
flags that protect a server (``docs/security.md``), and the check of their files.

Shared by ``microservice`` and ``serve``. A flag wins over its environment variable. The
files are read once here, before anything is served, so that a certificate without its
key, a file that cannot be read or a token file without a token stops the command with a
message naming the file, not a traceback in a worker.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from infergraph.wire.tls import TlsFiles
from infergraph.wire.tokens import BearerTokens

__all__ = ["add_auth_option", "add_tls_options", "check_files", "tls_from_args"]


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "TLS", "serve REST and gRPC in TLS (docs/security.md); the metrics port stays plain"
    )
    group.add_argument(
        "--tls-cert-file",
        default=None,
        metavar="PEM",
        help="the server's certificate chain (default $INFERGRAPH_TLS_CERT_FILE); reloaded "
        "when the file changes",
    )
    group.add_argument(
        "--tls-key-file",
        default=None,
        metavar="PEM",
        help="its private key, unencrypted (default $INFERGRAPH_TLS_KEY_FILE)",
    )
    group.add_argument(
        "--tls-ca-file",
        default=None,
        metavar="PEM",
        help="require client certificates signed by this CA: mutual TLS (default "
        "$INFERGRAPH_TLS_CA_FILE)",
    )


def add_auth_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auth-token-file",
        default=None,
        metavar="FILE",
        help="require 'Authorization: Bearer <token>' (gRPC: authorization metadata) on the "
        "APIs, the tokens one a line in FILE, read again when it changes; probes and "
        "metrics stay open (default $INFERGRAPH_AUTH_TOKEN_FILE)",
    )


def tls_from_args(args: argparse.Namespace, base: TlsFiles | None) -> TlsFiles | None:
    """The environment's TLS files (``base``) with the flags given over them."""
    flags: dict[str, Any] = {
        "cert_file": args.tls_cert_file,
        "key_file": args.tls_key_file,
        "ca_file": args.tls_ca_file,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    if not given:
        return base
    return dataclasses.replace(base or TlsFiles(), **given)


def check_files(
    tls: TlsFiles | None,
    token_files: dict[str, str],
    node_tls: TlsFiles | None = None,
) -> None:
    """ValueError naming the first file that would stop the server: TLS files that do not
    load, a token file (by the setting that names it) that cannot be read or holds none."""
    if tls is not None:
        tls.check("TLS (--tls-cert-file, INFERGRAPH_TLS_*)", server=True)
    if node_tls is not None:
        node_tls.check("node TLS (INFERGRAPH_NODE_TLS_*)", server=False)
    for setting, path in token_files.items():
        if path:
            try:
                BearerTokens(path)
            except ValueError as exc:
                raise ValueError(f"{setting}: {exc}") from None
