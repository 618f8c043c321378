"""``infergraph operator``: keep a cluster's GraphDeployments running (kopf: ``[operator]``).

Runs in the cluster from deploy/operator.yaml, or from a laptop against the current kubeconfig
context (``infergraph operator -n models``), which is the quickest way to try a change to it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from infergraph.cli.server_process import log_handler
from infergraph.kube.options import INGRESS_KINDS, RenderOptions
from infergraph.settings import LOG_FORMATS, log_format_from_env

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "operator",
        help="run the Kubernetes operator that reconciles GraphDeployments",
        description="Reconcile GraphDeployments (and, with --seldon-compat, "
        "SeldonDeployments): apply exactly what `infergraph render` prints, with server-side "
        "apply and owner references, delete the children a spec no longer has, and write "
        "status (state, conditions, replicas, address). Needs `pip install "
        "'infergraph[operator]'`. Credentials come from --kubeconfig, $KUBECONFIG, "
        "~/.kube/config or the pod's service account, in that order.",
        epilog="Examples:\n  infergraph operator                      # every namespace\n"
        "  infergraph operator -n models --seldon-compat\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        metavar="NS",
        help="watch only this namespace (repeatable; default: $INFERGRAPH_WATCH_NAMESPACES, "
        "comma-separated, else the whole cluster)",
    )
    p.add_argument(
        "--seldon-compat",
        action="store_true",
        default=env("INFERGRAPH_SELDON_COMPAT", "").lower() in ("1", "true", "yes"),
        help="also reconcile machinelearning.seldon.io SeldonDeployments (migration mode; "
        "do not run Seldon's own operator on the same resources)",
    )
    p.add_argument(
        "--controller-id",
        default=env("INFERGRAPH_CONTROLLER_ID") or None,
        metavar="ID",
        help="handle only resources labelled infergraph.io/controller-id=ID "
        "(seldon.io/controller-id for SeldonDeployments); without it, only unlabelled ones",
    )
    p.add_argument(
        "--ingress",
        choices=INGRESS_KINDS,
        default=env("INFERGRAPH_INGRESS", "none"),
        help="who splits traffic, as for `infergraph render` (default none: the orchestrator; "
        "or $INFERGRAPH_INGRESS)",
    )
    p.add_argument(
        "--image-prefix",
        default=env("INFERGRAPH_IMAGE_PREFIX", ""),
        metavar="P",
        help="registry/path of the runtime image, as for `infergraph render`",
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        metavar="FILE",
        help="default: $KUBECONFIG, else ~/.kube/config, else the pod's service account",
    )
    p.add_argument("--context", default=None, help="kubeconfig context (default: the current)")
    p.add_argument(
        "--resync",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="reconcile every deployment this often, whatever the events (default 600)",
    )
    p.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        metavar="URL",
        help="kopf's liveness endpoint; 'none' turns it off",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="text lines (default, or $INFERGRAPH_LOG_FORMAT) or json: one object a line "
        "with time, level, logger and message",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log at DEBUG, with every API request and watch event",
    )
    p.set_defaults(command=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        log_format = args.log_format or log_format_from_env(os.environ)
    except ValueError as exc:
        print(f"infergraph operator: error: {exc}", file=sys.stderr)
        return 2
    try:
        from infergraph.kube import operator
    except ImportError as exc:
        print(
            f"infergraph operator needs kopf ({exc.name} is missing): "
            "pip install 'infergraph[operator]'",
            file=sys.stderr,
        )
        return 2
    from infergraph.kube import kubeconfig

    namespaces = args.namespace or [
        ns.strip()
        for ns in os.environ.get("INFERGRAPH_WATCH_NAMESPACES", "").split(",")
        if ns.strip()
    ]
    options = operator.OperatorOptions(
        namespaces=tuple(namespaces),
        seldon_compat=args.seldon_compat,
        controller_id=args.controller_id,
        render=RenderOptions(ingress=args.ingress, image_prefix=args.image_prefix),
        kubeconfig=args.kubeconfig,
        context=args.context,
        resync_seconds=args.resync,
        liveness=None if args.liveness == "none" else args.liveness,
    )
    try:
        kubeconfig.load(args.kubeconfig, args.context)
    except kubeconfig.KubeconfigError as exc:
        print(f"infergraph operator: {exc}", file=sys.stderr)
        return 2
    # This process is the operator: configuring logging here touches no one else's.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        handlers=[log_handler(log_format)],
    )
    if not args.verbose:
        # One line per change is the operator's own (infergraph.operator); these would add a
        # line per request, per watch event and per liveness probe.
        for chatty in ("httpx", "kopf.objects", "aiohttp.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    import asyncio

    asyncio.run(operator.run(options))
    return 0
