"""``--path DIR`` and ``--image IMAGE=DIR``: where the containers' Python code lives here.

Shared by ``serve``, which imports the classes from those folders, and ``validate``, which
checks that every container gets a ``MODEL_NAME`` from them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["IMAGE_HELP", "add_image_option", "image_mapping"]

IMAGE_HELP = (
    "the source folder of the containers using IMAGE (an exact repo/name:tag, or "
    "repo/name for every tag): their classes are imported from DIR, and DIR/.s2i/environment "
    "gives MODEL_NAME to those that set none; repeatable"
)


def image_mapping(text: str) -> tuple[str, str]:
    """``IMAGE=DIR`` -> (IMAGE, DIR), DIR being an existing folder."""
    image, sep, folder = text.partition("=")
    image, folder = image.strip(), folder.strip()
    if not sep or not image or not folder:
        raise argparse.ArgumentTypeError(
            f"expected IMAGE=DIR (e.g. seldonio/iris:1.0=models/iris), got {text!r}"
        )
    if not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {folder} is not a folder")
    return image, folder


class _ImageAction(argparse.Action):
    """Collects ``--image`` values into one ``{image: folder}`` dict."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, tuple)  # image_mapping's (image, folder)
        image, folder = values
        images = dict(getattr(namespace, self.dest, None) or {})
        if images.get(image, folder) != folder:
            parser.error(f"--image {image}: given twice, with {images[image]} and {folder}")
        images[image] = folder
        setattr(namespace, self.dest, images)


def add_image_option(parser: argparse.ArgumentParser) -> None:
    """``--image IMAGE=DIR``, repeatable, into ``args.images`` (None when not given)."""
    parser.add_argument(
        "--image",
        dest="images",
        metavar="IMAGE=DIR",
        type=image_mapping,
        action=_ImageAction,
        default=None,
        help=IMAGE_HELP,
    )
