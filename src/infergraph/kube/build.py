"""``infergraph build``: a Seldon s2i model folder made into an image on the runtime image.

Seldon Core v1 users make model images with ``s2i build DIR seldonio/seldon-core-s2i-python3
IMAGE``: the folder is copied to ``/microservice``, its ``requirements.txt`` installed, and
its ``.s2i/environment`` (``MODEL_NAME``, ``SERVICE_TYPE``, ``PERSISTENCE``, ``API_TYPE``)
becomes the image's env, which the image's start script hands to the microservice. This
module writes the Dockerfile that does the same on top of the infergraph runtime image and
runs whichever image builder is installed, so the folders and their manifests move over
unchanged.

The image's command is ``infergraph microservice``, which reads ``MODEL_NAME`` and
``SERVICE_TYPE`` from the env at start-up, as Seldon's start script did: a pod's own env
still wins over the image's. Requirements are installed at build time from PyPI, or from
a folder of wheels (``wheels``) with no index at all, for builds with no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infergraph._version import __version__
from infergraph.errors import InferGraphError, LoadError
from infergraph.graph.spec.model_sources import S2I_ENVIRONMENT, read_environment_file
from infergraph.settings import SERVICE_TYPES

__all__ = [
    "BUILDERS",
    "DEFAULT_BASE",
    "SERVICE_TYPES",
    "BuildError",
    "BuildPlan",
    "ModelFolder",
    "build_command",
    "dockerfile",
    "find_builder",
    "read_model_folder",
    "run_build",
]

DEFAULT_BASE = f"localhost/infergraph:{__version__}"
"""The runtime image ``scripts/build-runtime-image.sh`` (or ``docker build`` of the
repository's Dockerfile) tags."""
BUILDERS = ("podman", "buildah", "docker")
"""Image builders in the order they are looked for: the daemonless ones first, since they
need no service running, then Docker."""
MICROSERVICE_DIR = "/microservice"
RUNTIME_USER = "8888"
"""The runtime image's user: Seldon's default user id, numeric for ``runAsNonRoot``."""
_WHEELS_IN_IMAGE = "/tmp/infergraph-wheels"


class BuildError(InferGraphError):
    """``infergraph build`` cannot go on: a bad folder, a missing builder or base image."""


@dataclass(frozen=True)
class ModelFolder:
    """A model's source folder, as s2i reads it."""

    path: Path
    env: dict[str, str]
    """The image's env: ``.s2i/environment``, then the ``--env`` overrides."""
    requirements: bool
    """Whether ``requirements.txt`` names anything to install (comments do not count)."""
    warnings: tuple[str, ...] = ()

    @property
    def model_name(self) -> str:
        return self.env["MODEL_NAME"]


def _requirement_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror or exc}") from exc
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _module_warning(folder: Path, model_name: str) -> str | None:
    """A warning when MODEL_NAME's module is not in the folder (it may be installed by the
    requirements, e.g. ``infergraph.servers.SKLearnServer``, so this is no error)."""
    parts = model_name.split(".")
    module = parts[0] if len(parts) == 1 else ".".join(parts[:-1])
    head = module.split(".")[0]
    if (folder / f"{module.replace('.', '/')}.py").is_file() or (folder / head).is_dir():
        return None
    return (
        f"MODEL_NAME={model_name}: no {module.replace('.', '/')}.py in {folder}; the image "
        "will only start if the requirements or the base image provide that module"
    )


def read_model_folder(
    folder: str | Path, overrides: Mapping[str, str] | None = None
) -> ModelFolder:
    """Read ``folder`` as s2i would: ``.s2i/environment`` (optional if ``overrides`` give
    ``MODEL_NAME``) and ``requirements.txt``; :class:`BuildError` says what is wrong."""
    path = Path(folder)
    if not path.exists():
        raise BuildError(f"no such folder: {path}")
    if not path.is_dir():
        raise BuildError(f"{path} is not a folder: give the model's source folder")
    env_file = path / S2I_ENVIRONMENT
    env: dict[str, str] = {}
    if env_file.is_file():
        try:
            env = read_environment_file(env_file)
        except LoadError as exc:
            raise BuildError(exc.message) from exc
    env |= dict(overrides or {})
    if not env.get("MODEL_NAME"):
        found = "has no MODEL_NAME" if env_file.is_file() else "does not exist"
        raise BuildError(
            f"{env_file} {found}: put MODEL_NAME=YourClass (the module of the same name, or "
            "module.Class) in it, as s2i expects, or pass --env MODEL_NAME=YourClass"
        )
    service_type = env.get("SERVICE_TYPE", "")
    if service_type and service_type.upper() not in SERVICE_TYPES:
        raise BuildError(
            f"SERVICE_TYPE={service_type} is not one of {', '.join(SERVICE_TYPES)} "
            f"(from {env_file if 'SERVICE_TYPE' not in (overrides or {}) else '--env'})"
        )
    requirements = path / "requirements.txt"
    has_requirements = requirements.is_file() and bool(_requirement_lines(requirements))
    warning = _module_warning(path, env["MODEL_NAME"])
    return ModelFolder(path, env, has_requirements, (warning,) if warning else ())


def _quote(value: str) -> str:
    """A Dockerfile ``ENV``/``LABEL`` value, taken literally (no ``$`` expansion)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def dockerfile(
    model: ModelFolder, base: str, *, source: str = ".", wheels: str | None = None
) -> str:
    """The Dockerfile of the model image. ``source`` is where the model folder is in the
    build context, ``wheels`` where the folder of wheels is (None: install from PyPI)."""
    src = source.rstrip("/") or "."
    lines = [
        f"# Written by `infergraph build` {__version__}: what Seldon's s2i Python builder",
        "# made of a model folder, on the infergraph runtime image.",
        f"FROM {base}",
        "USER root",
    ]
    if model.requirements:
        lines.append(f"COPY {src}/requirements.txt {MICROSERVICE_DIR}/requirements.txt")
        install = f"pip install --no-cache-dir -r {MICROSERVICE_DIR}/requirements.txt"
        if wheels is not None:
            lines.append(f"COPY {wheels.rstrip('/')}/ {_WHEELS_IN_IMAGE}/")
            install = (
                f"pip install --no-cache-dir --no-index --find-links {_WHEELS_IN_IMAGE} "
                f"-r {MICROSERVICE_DIR}/requirements.txt && rm -rf {_WHEELS_IN_IMAGE}"
            )
        lines.append(f"RUN {install}")
    lines += [
        f"COPY --chown={RUNTIME_USER}:{RUNTIME_USER} {src}/ {MICROSERVICE_DIR}/",
        f"USER {RUNTIME_USER}",
        f"WORKDIR {MICROSERVICE_DIR}",
        "ENV " + " \\\n    ".join(f"{key}={_quote(value)}" for key, value in model.env.items()),
        f"LABEL io.infergraph.model-name={_quote(model.model_name)}",
        "# infergraph microservice reads MODEL_NAME and SERVICE_TYPE from the env, as",
        "# Seldon's start script passed them on: a pod's env still overrides the image's",
        'ENTRYPOINT ["infergraph"]',
        'CMD ["microservice"]',
    ]
    return "\n".join(lines) + "\n"


def find_builder(
    preferred: str | None = None, which: Callable[[str], str | None] = shutil.which
) -> str:
    """The builder to run: ``preferred`` if given (it must be installed), else the first of
    :data:`BUILDERS` on ``PATH``."""
    names = (preferred,) if preferred else BUILDERS
    for name in names:
        if which(name):
            return name
    if preferred:
        raise BuildError(f"--builder {preferred}: {preferred} is not on PATH; install it")
    raise BuildError(
        "no image builder found on PATH: install podman (apt-get install podman, brew install "
        "podman), buildah or docker, or write the Dockerfile with --dockerfile-only and build "
        "it elsewhere"
    )


def build_command(
    builder: str,
    *,
    tag: str,
    dockerfile_path: Path,
    context: Path,
    runtime: str | None = None,
    network: str | None = None,
) -> list[str]:
    """The command line that builds the image."""
    if runtime is not None and builder == "docker":
        raise BuildError("--runtime is an option of podman and buildah, not of docker build")
    argv = [builder]
    if runtime is not None and builder == "podman":
        argv += ["--runtime", runtime]  # podman's global option: the RUN steps use it
    argv.append("build")
    if runtime is not None and builder == "buildah":
        argv += ["--runtime", runtime]
    if network is not None:
        argv += ["--network", network]
    return [*argv, "-t", tag, "-f", str(dockerfile_path), str(context)]


@dataclass(frozen=True)
class BuildPlan:
    """Everything one ``infergraph build`` does, decided before anything runs."""

    model: ModelFolder
    tag: str
    base: str = DEFAULT_BASE
    wheels: Path | None = None
    """A folder of wheels the requirements are installed from, with no package index."""
    builder: str | None = None
    runtime: str | None = None
    network: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    """The builder's env (``CONTAINERS_CONF`` and the like pass through)."""


def _stage(plan: BuildPlan, work: Path) -> tuple[Path, str]:
    """The build context and the Dockerfile text. Without wheels the context is the folder
    itself; with wheels it is a copy next to the wheels (a context holds both)."""
    if plan.wheels is None or not plan.model.requirements:
        return plan.model.path, dockerfile(plan.model, plan.base)
    if not plan.wheels.is_dir():
        raise BuildError(f"--wheels {plan.wheels}: no such folder")
    context = work / "context"
    ignore = shutil.ignore_patterns(".git", "__pycache__", "*.pyc")
    shutil.copytree(plan.model.path, context / "model", ignore=ignore, symlinks=True)
    shutil.copytree(plan.wheels, context / "wheels")
    return context, dockerfile(plan.model, plan.base, source="model", wheels="wheels")


def _base_is_missing(builder: str, base: str, env: Mapping[str, str]) -> bool:
    """Whether a ``localhost/`` base image (which no registry serves) is absent."""
    if not base.startswith("localhost/") or builder not in ("podman", "buildah"):
        return False
    check = (
        [builder, "image", "exists", base]
        if builder == "podman"
        else [builder, "inspect", "--type", "image", base]
    )
    done = subprocess.run(check, env=dict(env), capture_output=True, check=False)
    return done.returncode != 0


def run_build(
    plan: BuildPlan,
    work: Path,
    say: Callable[[str], None],
    which: Callable[[str], str | None] = shutil.which,
) -> int:
    """Write the Dockerfile under ``work`` and run the builder; its exit status."""
    builder = find_builder(plan.builder, which)
    if _base_is_missing(builder, plan.base, plan.env):
        raise BuildError(
            f"the base image {plan.base} is not on this machine: build it with "
            "scripts/build-runtime-image.sh (or `docker build -t IMAGE .` in the infergraph "
            "repository), or name another with --base"
        )
    context, text = _stage(plan, work)
    path = work / "Dockerfile"
    path.write_text(text, encoding="utf-8")
    argv = build_command(
        builder,
        tag=plan.tag,
        dockerfile_path=path,
        context=context,
        runtime=plan.runtime,
        network=plan.network,
    )
    say(f"Dockerfile ({path}):\n{text.rstrip()}")
    say("running: " + " ".join(argv))
    return subprocess.run(argv, env=dict(plan.env), check=False).returncode
