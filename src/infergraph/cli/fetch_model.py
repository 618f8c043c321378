"""``infergraph fetch-model URI DIR``: download a model, as a Kubernetes init container does.

Seldon's operator puts a storage initializer in front of every model server; this is
infergraph's, so a pod needs no other image. It is also handy by hand: fetch once, then
point ``modelUri`` at the folder. Failures are one line on stderr and exit status 1, so
the pod's events say what was wrong (missing object, bad scheme, missing extra).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infergraph.errors import InferGraphError
from infergraph.servers.storage import download
from infergraph.settings import ComponentSettings

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fetch-model",
        help="download a model (s3://, gs://, http(s)://, file://) into a folder",
        description="Download the model at URI into DIR (created if needed): an s3:// or "
        "gs:// prefix recursively, an http(s):// file (archives are unpacked), or a copy "
        "of a local path. The Kubernetes init container of a prepackaged server runs this. "
        "S3 credentials and endpoint come from the AWS environment variables "
        "(AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for MinIO and the like).",
        epilog="Example:\n  infergraph fetch-model s3://models/sklearn/iris /mnt/models",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("uri", metavar="URI", help="where the model is")
    p.add_argument("dir", metavar="DIR", help="the folder to put it in, e.g. /mnt/models")
    p.set_defaults(command=run)
    return p


def run(args: argparse.Namespace) -> int:
    settings = ComponentSettings.from_env(annotations={})
    try:
        dest = download(args.uri, args.dir, s3_endpoint_url=settings.s3_endpoint_url)
    except (InferGraphError, OSError) as exc:
        print(f"infergraph fetch-model: error: {exc}", file=sys.stderr)
        return 1
    count = sum(1 for p in dest.rglob("*") if p.is_file())
    print(f"infergraph fetch-model: {count} file(s) in {dest}", file=sys.stderr)
    return 0
