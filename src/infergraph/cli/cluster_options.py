"""The options every command that reads a cluster shares, as kubectl spells them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from infergraph.kube import kubeconfig
from infergraph.kube.api import Api, ApiError

__all__ = ["add_cluster_options", "connect", "with_cluster"]

NO_CLUSTER = 2


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        default=None,
        metavar="NS",
        help="namespace of the deployment (default: the kubeconfig context's, else 'default')",
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        metavar="FILE",
        help="default: $KUBECONFIG, else ~/.kube/config, else the pod's service account",
    )
    p.add_argument("--context", default=None, help="kubeconfig context (default: the current)")


def connect(args: argparse.Namespace) -> tuple[Api, str]:
    """The API and the namespace ``args`` name. Raises KubeconfigError."""
    connection = kubeconfig.load(args.kubeconfig, args.context)
    return Api(kubeconfig.client(connection)), args.namespace or connection.namespace


def with_cluster(command: str, args: argparse.Namespace, body: Callable[[Api, str], int]) -> int:
    """Run ``body`` against the cluster; a missing cluster or a refused call is one line on
    stderr and exit status 2, never a traceback."""
    try:
        api, namespace = connect(args)
    except kubeconfig.KubeconfigError as exc:
        print(f"infergraph {command}: {exc}", file=sys.stderr)
        return NO_CLUSTER
    try:
        with api.client:
            return body(api, namespace)
    except ApiError as exc:
        print(f"infergraph {command}: {exc}", file=sys.stderr)
        return NO_CLUSTER
