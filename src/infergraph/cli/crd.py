"""``infergraph crd``: print the CustomResourceDefinition the operator needs.

The CRD is generated, never written by hand, so that the cluster checks a manifest with the
same rules as ``infergraph validate``. This command is how ``deploy/crd.yaml`` is made, and
how a cluster admin gets the CRD of exactly the infergraph version they run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infergraph.kube.crd import GRAPH_DEPLOYMENT, SELDON_DEPLOYMENT, crd_yaml

__all__ = ["add_parser", "run"]

_KINDS = {names.kind: names for names in (GRAPH_DEPLOYMENT, SELDON_DEPLOYMENT)}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "crd",
        help="print the GraphDeployment CustomResourceDefinition (YAML)",
        description="Print the apiextensions.k8s.io/v1 CustomResourceDefinition of "
        "GraphDeployment (infergraph.io/v1), generated from the models 'infergraph validate' "
        "uses; e.g. 'infergraph crd | kubectl apply --server-side -f -'. With --kind "
        "SeldonDeployment, the same schema under Seldon Core v1's group and versions, for a "
        "cluster without Seldon Core installed (it replaces Seldon's own CRD).",
        epilog="Examples:\n  infergraph crd | kubectl apply -f -\n"
        "  infergraph crd --kind SeldonDeployment > seldondeployments-crd.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--kind",
        choices=sorted(_KINDS),
        default=GRAPH_DEPLOYMENT.kind,
        help="which resource (default: %(default)s)",
    )
    p.set_defaults(command=run)
    return p


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(crd_yaml(_KINDS[args.kind]))
    return 0
