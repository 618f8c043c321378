"""The ``infergraph`` command."""

from __future__ import annotations

import argparse
import sys

from infergraph._version import __version__
from infergraph.cli import (
    build,
    crd,
    describe,
    fetch_model,
    logs,
    microservice,
    operator,
    render,
    serve,
    trace,
    validate,
)

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infergraph",
        description="Serve machine-learning models as inference graphs "
        "(Seldon Core v1 compatible).",
    )
    parser.add_argument("--version", action="version", version=f"infergraph {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    microservice.add_parser(subparsers)
    serve.add_parser(subparsers)
    trace.add_parser(subparsers)
    validate.add_parser(subparsers)
    render.add_parser(subparsers)
    fetch_model.add_parser(subparsers)
    build.add_parser(subparsers)
    crd.add_parser(subparsers)
    operator.add_parser(subparsers)
    describe.add_parser(subparsers)
    logs.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    return int(args.command(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
