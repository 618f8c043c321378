"""Where a container's Python code lives on this machine, and the env its image would carry.

A Seldon s2i build copies a model's source folder into an image and turns the folder's
``.s2i/environment`` (``MODEL_NAME``, ``SERVICE_TYPE``, ``PERSISTENCE``, ``API_TYPE``) into
the image's env, so a SeldonDeployment usually names only the image. ``infergraph serve``
has the source folder instead of the image: ``--path DIR`` is the folder of every container,
``--image IMAGE=DIR`` the folder of the containers that use IMAGE. The folder's
``.s2i/environment`` is read for a container that sets no ``MODEL_NAME`` itself, and the
container's own env wins over the file, as a pod's env wins over its image's.

Seldon's prebuilt router images (``seldonio/mab_epsilon_greedy``, ...) carry no source
folder: without ``MODEL_NAME`` and without an ``--image`` mapping they stay the built-in
router that does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infergraph.errors import LoadError
from infergraph.graph.spec.kube_types import Container

__all__ = [
    "S2I_ENVIRONMENT",
    "SELDON_ROUTER_IMAGES",
    "ContainerSource",
    "ModelSources",
    "image_builtin",
    "image_name",
    "read_environment_file",
]

S2I_ENVIRONMENT = Path(".s2i") / "environment"
"""Where an s2i source folder keeps the env of the image built from it."""

SELDON_ROUTER_IMAGES = {
    "seldonio/mab_epsilon_greedy": "EPSILON_GREEDY",
    "seldonio/mab_thompson_sampling": "THOMPSON_SAMPLING",
}
"""Seldon's prebuilt router images, served by the built-in router with the same parameters."""


def image_name(image: str) -> str:
    """``image`` without its tag or digest: ``host:5000/ml/iris:1.0`` -> ``host:5000/ml/iris``."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def image_builtin(image: str | None) -> str | None:
    """The built-in implementation behind one of Seldon's router images, or None."""
    if not image:
        return None
    name = image_name(image)
    for known, implementation in SELDON_ROUTER_IMAGES.items():
        if name == known or name.endswith("/" + known):
            return implementation
    return None


def read_environment_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines, as s2i reads them: blank lines and ``#`` comments are skipped,
    the value is everything after the first ``=``, taken literally (no quotes removed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise LoadError(
                f"{path}:{number}: {raw.strip()!r} is not a KEY=VALUE line "
                "(s2i's environment file holds one variable a line, e.g. MODEL_NAME=MyModel)"
            )
        env[key.strip()] = value.strip()
    return env


@dataclass(frozen=True)
class ContainerSource:
    """What a container runs as on this machine."""

    folder: Path
    """The folder its Python class is imported from (and, with ``--processes``, its cwd)."""
    env: dict[str, str]
    """Its env: the container's own over the folder's ``.s2i/environment``."""
    environment_file: Path | None = None
    """The ``.s2i/environment`` that was read, if one was."""
    mapped: bool = False
    """Whether ``--image`` chose the folder (else it is the ``--path`` folder)."""
    builtin: str | None = None
    """The built-in implementation that serves it instead (one of Seldon's router images)."""

    @property
    def model_name(self) -> str:
        """Its ``MODEL_NAME``; empty when nothing gives one."""
        return self.env.get("MODEL_NAME", "")


@dataclass(frozen=True)
class ModelSources:
    """The source folders of a deployment's containers: one default, and one per image."""

    default: Path = Path(".")
    """The folder of containers whose image has no mapping (``--path``)."""
    images: Mapping[str, Path] = field(default_factory=dict)
    """Folders by image (``--image``): an exact ``repo/name:tag``, or a name without a tag,
    which then stands for every tag of that image."""

    @classmethod
    def of(
        cls, path: str | Path = ".", images: Mapping[str, str | Path] | None = None
    ) -> ModelSources:
        """From the ``--path`` and ``--image`` options."""
        return cls(Path(path), {image: Path(folder) for image, folder in (images or {}).items()})

    def folder(self, image: str | None) -> tuple[Path, bool]:
        """The folder of a container using ``image``, and whether ``--image`` chose it."""
        if image:
            for key in (image, image_name(image)):
                if key in self.images:
                    return self.images[key], True
        return self.default, False

    def unused(self, images: set[str]) -> list[str]:
        """The ``--image`` keys that match none of ``images`` (a likely typo)."""
        names = images | {image_name(image) for image in images}
        return sorted(key for key in self.images if key not in names)

    def resolve(self, container: Container) -> ContainerSource:
        """What ``container`` runs as: its folder, its env, or the built-in it stands for."""
        own = {e.name: e.value for e in container.env if e.value is not None}
        folder, mapped = self.folder(container.image)
        if own.get("MODEL_NAME"):
            return ContainerSource(folder, own, mapped=mapped)
        builtin = None if mapped else image_builtin(container.image)
        if builtin is not None:
            return ContainerSource(folder, own, builtin=builtin)
        path = folder / S2I_ENVIRONMENT
        if not path.is_file():
            return ContainerSource(folder, own, mapped=mapped)
        return ContainerSource(folder, read_environment_file(path) | own, path, mapped)

    def explain_missing(self, container: Container, source: ContainerSource) -> str:
        """Why ``container`` has no ``MODEL_NAME`` and how to give it one, for messages."""
        file = source.folder / S2I_ENVIRONMENT
        found = "has none" if source.environment_file is not None else "does not exist"
        image = container.image or "<image>"
        return (
            f"container {container.name!r} (image {container.image or 'not set'}) has no env "
            f"MODEL_NAME and {file} {found}; infergraph serve runs the Python class MODEL_NAME "
            f"names (Module or module.Class), as Seldon's s2i images do: set env MODEL_NAME "
            f"on the container, put MODEL_NAME=... in {file}, or point serve at the image's "
            f"source folder with --image {image}=DIR"
        )
