"""``infergraph build DIR -t IMAGE``: what ``s2i build`` did for Seldon, on infergraph's image."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from infergraph.kube.build import (
    BUILDERS,
    DEFAULT_BASE,
    BuildError,
    BuildPlan,
    dockerfile,
    read_model_folder,
    run_build,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build",
        help="build a model image from a Seldon s2i source folder",
        description="Build an image from a model's source folder, as Seldon's s2i builder "
        "did: the folder goes to /microservice, its requirements.txt is installed, its "
        ".s2i/environment (MODEL_NAME, SERVICE_TYPE, PERSISTENCE, API_TYPE) becomes the "
        "image's env, and the image runs `infergraph microservice`. The builder is podman, "
        "buildah or docker, the first found. Podman and buildah read CONTAINERS_CONF from "
        "the environment.",
        epilog="Examples:\n  infergraph build ./my-model -t registry.example.com/my-model:1\n"
        "  infergraph build ./my-model --dockerfile-only > Dockerfile",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="DIR", help="the model's source folder")
    p.add_argument("-t", "--tag", metavar="IMAGE", help="name of the image to build")
    p.add_argument(
        "--base",
        default=DEFAULT_BASE,
        metavar="IMAGE",
        help=f"the infergraph runtime image to build on (default {DEFAULT_BASE})",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set or override a variable of .s2i/environment (repeatable)",
    )
    p.add_argument(
        "--wheels",
        metavar="DIR",
        help="install requirements.txt from this folder of wheels only (no package index): "
        "for builds with no network",
    )
    p.add_argument(
        "--dockerfile-only",
        action="store_true",
        help="print the Dockerfile (build context: DIR) and build nothing",
    )
    p.add_argument("--builder", choices=BUILDERS, help="which builder (default: the first found)")
    p.add_argument("--runtime", metavar="NAME", help="OCI runtime of podman or buildah, e.g. runc")
    p.add_argument("--network", metavar="MODE", help="network of the build's RUN steps, e.g. host")
    p.set_defaults(command=run)
    return p


def _fail(message: str) -> int:
    print(f"infergraph build: error: {message}", file=sys.stderr)
    return 2


def _overrides(pairs: list[str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            return None
        out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    overrides = _overrides(args.env)
    if overrides is None:
        return _fail("--env takes KEY=VALUE, e.g. --env MODEL_NAME=MyModel")
    try:
        model = read_model_folder(args.folder, overrides)
    except BuildError as exc:
        return _fail(exc.message)
    for warning in model.warnings:
        print(f"infergraph build: warning: {warning}", file=sys.stderr)
    if args.dockerfile_only:
        wheels = None
        if args.wheels and model.requirements:
            inside = Path(args.wheels).resolve()
            if not inside.is_relative_to(model.path.resolve()):
                return _fail(
                    "with --dockerfile-only the build context is DIR, so --wheels must be a "
                    "folder inside DIR"
                )
            wheels = inside.relative_to(model.path.resolve()).as_posix()
        sys.stdout.write(dockerfile(model, args.base, wheels=wheels))
        return 0
    if not args.tag:
        return _fail("name the image to build with -t IMAGE (or print it with --dockerfile-only)")
    plan = BuildPlan(
        model,
        args.tag,
        base=args.base,
        wheels=Path(args.wheels) if args.wheels else None,
        builder=args.builder,
        runtime=args.runtime,
        network=args.network,
    )

    def say(line: str) -> None:
        print(f"infergraph build: {line}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="infergraph-build-") as work:
        try:
            code = run_build(plan, Path(work), say)
        except (BuildError, OSError) as exc:
            return _fail(str(exc))
    if code != 0:
        say(f"the builder failed (exit status {code})")
        return 1
    say(f"built {args.tag}")
    return 0
