"""``infergraph validate FILE...``: check deployment manifests before they reach a cluster.

The point is a fast, offline answer in CI or an editor: every problem of every file at
once, one per line as ``FILE:LINE: path: message``, and an exit status a script can test
(0 valid, 1 invalid, 2 unreadable). It never prints a traceback: a user's mistake is a
message, not a crash.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from infergraph.cli.source_options import add_image_option
from infergraph.graph.spec import (
    Problem,
    SpecError,
    SpecUnreadable,
    count_nodes,
    read_documents,
    validate,
)
from infergraph.graph.spec.model_sources import ModelSources
from infergraph.graph.spec.serve_checks import check_serve

__all__ = ["add_parser", "run"]

OK, INVALID, UNREADABLE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "validate",
        help="check SeldonDeployment / GraphDeployment manifests",
        description="Check SeldonDeployment and GraphDeployment manifests offline: types, "
        "Seldon's admission rules and graph checks. With --path or --image, also what "
        "'infergraph serve' with the same options needs on this machine: every container "
        "gets a MODEL_NAME (its env, or its source folder's .s2i/environment) unless a "
        "built-in or prepackaged server runs the node, and every local modelUri exists. "
        "Prints every problem with its file, line and field path. Exit status: 0 valid, "
        "1 invalid, 2 unreadable file or YAML syntax error.",
        epilog="Example:\n  infergraph validate examples/bandit/deployment.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML file; '-' reads stdin")
    p.add_argument(
        "--skip-other-kinds",
        action="store_true",
        help="ignore documents of other kinds (a Service next to the deployment) "
        "instead of reporting them",
    )
    p.add_argument(
        "--path",
        default=None,
        metavar="DIR",
        help="check as 'infergraph serve --path DIR' would run it: DIR/.s2i/environment gives "
        "MODEL_NAME to containers that set none",
    )
    add_image_option(p)
    p.set_defaults(command=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Check each file in turn; the exit status is the worst file's."""
    status = OK
    sources = None
    if args.path is not None or args.images:
        sources = ModelSources.of(args.path or ".", args.images)
    for name in args.files:
        status = max(
            status, check_file(name, args.skip_other_kinds, sys.stdout, sys.stderr, sources)
        )
    return status


def check_file(
    name: str,
    skip_other_kinds: bool,
    out: TextIO,
    err: TextIO,
    sources: ModelSources | None = None,
) -> int:
    """Check one file and print its result; return its exit status. With ``sources``, also
    what ``infergraph serve`` needs on this machine (:func:`check_serve`)."""
    try:
        if name == "-":
            # A trailing newline makes even empty or one-line input count as text, not a path.
            text = sys.stdin.read() + "\n"
            documents = read_documents(text, skip_other_kinds=skip_other_kinds, name="<stdin>")
        else:
            documents = read_documents(name, skip_other_kinds=skip_other_kinds)
    except SpecUnreadable as exc:
        print(exc.message, file=err)
        return UNREADABLE
    except SpecError as exc:
        _print_problems(name, exc.problems, out)
        return INVALID
    if not documents:
        print(f"{name}: no SeldonDeployment or GraphDeployment found", file=out)
        return INVALID
    problems = [doc.locate(p) for doc in documents for p in validate(doc.deployment)]
    if sources is not None:
        problems += [
            doc.locate(p) for doc in documents for p in check_serve(doc.deployment, sources)
        ]
    if problems:
        _print_problems(name, problems, out)
        return INVALID
    predictors = [p for doc in documents for p in doc.deployment.spec.predictors]
    nodes = sum(count_nodes(p.graph) for p in predictors)
    counts = ", ".join(
        _plural(n, word)
        for n, word in ((len(documents), "deployment"), (len(predictors), "predictor"))
    )
    print(f"{name}: ok ({counts}, {_plural(nodes, 'node')})", file=out)
    return OK


def _print_problems(name: str, problems: list[Problem], out: TextIO) -> None:
    ordered = sorted(problems, key=lambda p: (p.document or 0, p.line or 0))
    for problem in ordered:
        where = f"{name}:{problem.line}" if problem.line is not None else name
        print(f"{where}: {problem}", file=out)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
