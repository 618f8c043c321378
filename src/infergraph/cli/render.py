"""``infergraph render FILE.yaml``: the Kubernetes manifests of a deployment, on stdout.

For GitOps (commit the output, let Argo CD or Flux apply it) and for review (diff what a
spec change does to the cluster). The output is deterministic, byte for byte, so a diff
shows only real changes. Problems are printed like ``infergraph validate`` prints them, as
``FILE:LINE: path: message`` on stderr, never as a traceback (exit status 1; 2 for an
unreadable file).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from infergraph.graph.spec import Problem, SourceDocument, SpecError, SpecUnreadable, read_documents
from infergraph.kube.manifest import to_yaml
from infergraph.kube.options import INGRESS_KINDS, RenderOptions
from infergraph.kube.render import render

__all__ = ["add_parser", "render_file", "run"]

OK, INVALID, UNREADABLE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "render",
        help="write the Kubernetes manifests of a deployment to stdout",
        description="Write the Kubernetes objects that run a SeldonDeployment or "
        "GraphDeployment (Deployments, Services, HPAs, PDBs, KEDA ScaledObjects, and Istio "
        "or Gateway API routes) as multi-document YAML to stdout, named and labelled as "
        "Seldon's operator names them. The same input always gives the same bytes. "
        "Problems are printed as FILE:LINE: path: message; exit status 0 rendered, "
        "1 invalid, 2 unreadable.",
        epilog="Example:\n  infergraph render examples/bandit/deployment.yaml "
        "--namespace models | kubectl apply -f -",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="YAML file; '-' reads stdin")
    p.add_argument(
        "--namespace",
        default=None,
        metavar="NS",
        help="namespace of every object (default: "
        "the resource's metadata.namespace, else 'default')",
    )
    p.add_argument(
        "--ingress",
        choices=INGRESS_KINDS,
        default="none",
        help="who splits traffic and mirrors to the shadow: infergraph's router (none, the "
        "default), an Istio VirtualService + DestinationRules, or a Gateway API HTTPRoute",
    )
    p.add_argument(
        "--image-prefix",
        default="",
        metavar="P",
        help="registry/path of the infergraph runtime image, which becomes P + "
        "'infergraph:<version>' (e.g. ghcr.io/acme/)",
    )
    p.add_argument(
        "--skip-other-kinds",
        action="store_true",
        help="ignore documents of other kinds instead of reporting them",
    )
    p.set_defaults(command=run)
    return p


def run(args: argparse.Namespace) -> int:
    options = RenderOptions(
        namespace=args.namespace, ingress=args.ingress, image_prefix=args.image_prefix
    )
    return render_file(args.file, options, sys.stdout, sys.stderr, args.skip_other_kinds)


def render_file(
    name: str, options: RenderOptions, out: TextIO, err: TextIO, skip_other_kinds: bool = False
) -> int:
    """Render every deployment in file ``name`` to ``out``; return the exit status."""
    try:
        if name == "-":
            text = sys.stdin.read() + "\n"  # a newline makes any input text, not a path
            documents = read_documents(text, skip_other_kinds=skip_other_kinds, name="<stdin>")
        else:
            documents = read_documents(name, skip_other_kinds=skip_other_kinds)
    except SpecUnreadable as exc:
        print(f"infergraph render: {exc.message}", file=err)
        return UNREADABLE
    except SpecError as exc:
        _print_problems(name, exc.problems, err)
        return INVALID
    if not documents:
        print(f"infergraph render: {name}: no SeldonDeployment or GraphDeployment found", file=err)
        return INVALID
    objects: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for document in documents:
        try:
            objects += render(document.deployment, options)
        except SpecError as exc:
            problems += _located(document, exc.problems)
    if problems:
        _print_problems(name, problems, err)
        return INVALID
    out.write(to_yaml(objects))
    return OK


def _located(document: SourceDocument, problems: list[Problem]) -> list[Problem]:
    return [document.locate(problem) for problem in problems]


def _print_problems(name: str, problems: list[Problem], err: TextIO) -> None:
    for problem in sorted(problems, key=lambda p: (p.document or 0, p.line or 0)):
        where = f"{name}:{problem.line}" if problem.line is not None else name
        print(f"{where}: {problem}", file=err)
